-- D7's memory: each charge id's first (smallest) payment id among all raw payments, whatever
-- those rows' own fate. Incremental on the sync time: a run reads only the raw payments of its
-- lookback window, so the daily check of the day's payments never rescans the raw history.
-- A charge's first id can only go down as payments arrive (an id never changes charge), so a
-- run appends the charges it sees for the first time (the common case), and the pre-hook first
-- deletes the rare charge whose first id went down, which the run then appends again with the
-- window's smaller id. The result equals a full rebuild; no keyed delete+insert of the window.
-- `_synced_until` is bookkeeping for the window: the newest sync of the charge's payments when
-- its row was written (a later re-sync of one of them, e.g. a refund, leaves the row as it is).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        tmp_relation_type='transient',
        on_schema_change='sync_all_columns',
        pre_hook="{{ payment_charges_prepare() }}",
    )
}}

{% if is_incremental() %}
    -- The window's new and lowered charges, looked up once by the pre-hook.
    select charge_key, charge_id, first_payment_id, _synced_until
    from {{ payment_charges_window_relation() }}
{% else %}
    {{ payment_charges_in_window() }}
{% endif %}
