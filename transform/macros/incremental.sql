{#- The lower bound of an incremental run: the newest `column` already in `this`, minus the
    lookback; everything when `this` has no value yet (e.g. a column added since). On DuckDB it
    is read first and inlined as a literal, so the filter reaches the raw table scan; Snowflake
    prunes with the scalar subquery as it is. -#}
{% macro incremental_lower_bound(column, lookback_hours) -%}
    {{ return(adapter.dispatch('incremental_lower_bound', 'mdp')(column, lookback_hours)) }}
{%- endmacro %}

{% macro default__incremental_lower_bound(column, lookback_hours) -%}
    (
        select coalesce(
            {{ dbt.dateadd('hour', -1 * lookback_hours, 'max(' ~ column ~ ')') }},
            cast('1970-01-01 00:00:00' as {{ dbt.type_timestamp() }})
        )
        from {{ this }}
    )
{%- endmacro %}

{% macro duckdb__incremental_lower_bound(column, lookback_hours) -%}
    {%- if execute -%}
        {%- set sql -%}
            select cast(max({{ column }}) - interval ({{ lookback_hours }}) hour as varchar) from {{ this }}
        {%- endset -%}
        {%- set value = run_query(sql).columns[0].values()[0] -%}
        {%- if value is none -%}
            cast('1970-01-01 00:00:00+00' as timestamptz)
        {%- else -%}
            cast('{{ value }}' as timestamptz)
        {%- endif -%}
    {%- else -%}
        cast('1970-01-01 00:00:00+00' as timestamptz)
    {%- endif -%}
{%- endmacro %}

{#- The window of an incremental run of the MRR models, read from `this` once, before the run
    deletes anything, so the pre-hook and the model agree on it:
    - `recompute_from`: the first month recomputed, the month before the newest one built, so
      month-end states that changed since (late syncs, deletions) are redone;
    - `changed_since`: a date; only the subscriptions whose subscription, user or plan row was
      synced since then are recomputed (the newest sync this table has seen, in
      `_synced_until`, minus the lookback, floored to the day). It is none, and every
      subscription is recomputed, when a month has turned since the last run (the month that
      was current becomes a past month, evaluated from the history), or when the table has no
      `_synced_until` yet. -#}
{% macro mrr_window(month_column='month') -%}
    {%- set window = {'recompute_from': "cast('1970-01-01' as date)", 'changed_since': none} -%}
    {%- if execute and is_incremental() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
        {%- set tracked = '_synced_until' in columns -%}
        {%- set sql -%}
            select
                cast(cast({{ dbt.dateadd('month', -1, 'max(' ~ month_column ~ ')') }} as date) as varchar),
                case
                    when max({{ month_column }}) >= cast({{ dbt.date_trunc('month', utc_today()) }} as date) then 1
                    else 0
                end,
                {% if tracked -%}
                    cast(cast({{ dbt.dateadd('hour', -1 * var('payments_lookback_hours'), 'max(_synced_until)') }} as date) as varchar)
                {%- else -%}
                    cast(null as varchar)
                {%- endif %}
            from {{ this }}
        {%- endset -%}
        {%- set row = run_query(sql).rows[0] -%}
        {%- if row[0] is not none -%}
            {%- do window.update({'recompute_from': "cast('" ~ row[0] ~ "' as date)"}) -%}
        {%- endif -%}
        {%- if row[0] is not none and row[1] == 1 and row[2] is not none -%}
            {%- do window.update({'changed_since': "cast('" ~ row[2] ~ "' as date)"}) -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(window) }}
{%- endmacro %}

{#- The ids of the subscriptions synced since `changed_since`, and of those whose user (a
    deletion) or plan (a price) was: what dim_subscriptions redoes (from the staging view) and an
    MRR run recomputes (from dim_subscriptions, the default). It selects ids only, so a view's
    conversions run on none of the rows it reads. -#}
{% macro changed_subscription_ids(changed_since, subscriptions=none) -%}
    select changed.subscription_id
    from {{ subscriptions if subscriptions is not none else ref('dim_subscriptions') }} as changed
    where
        changed._airbyte_extracted_at >= {{ changed_since }}
        or changed.user_id in (
            select changed_users.user_id
            from {{ ref('dim_users') }} as changed_users
            where changed_users._airbyte_extracted_at >= {{ changed_since }}
        )
        or changed.plan_key in (
            select changed_plans.plan_key
            from {{ ref('dim_plans') }} as changed_plans
            where changed_plans._airbyte_extracted_at >= {{ changed_since }}
        )
{%- endmacro %}

{#- The config both MRR models share: a pre-hook deletes what the run recomputes (see
    mrr_window), then the run appends it. A delete keyed on the new rows would scan the table
    a second time, and would miss a subscription that no longer counts. -#}
{% macro mrr_incremental_config() -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        tmp_relation_type='transient',
        on_schema_change='sync_all_columns',
        pre_hook="{{ mrr_delete_window() }}",
    ) }}
{%- endmacro %}

{#- The pre-hook of the MRR models: delete what this run recomputes. -#}
{% macro mrr_delete_window() -%}
    {%- if is_incremental() -%}
        {%- set window = mrr_window() -%}
        delete from {{ this }}
        where
            month >= {{ window.recompute_from }}
            {%- if window.changed_since is not none %}
                and subscription_id in ({{ changed_subscription_ids(window.changed_since) }})
            {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#- In an incremental run, keep only the rows of `relation` (a CTE) that are new or differ from
    the row already built with the same `key`, in the `compare` columns. A run
    re-reads its whole lookback window to absorb late syncs; replacing the rows that did not
    change would delete and rewrite them every day, and make the warehouse rewrite (vacuum)
    the row groups they sit in. -#}
{% macro changed_rows_only(relation, key, compare) -%}
    select {{ relation }}.*
    from {{ relation }}
    left join {{ this }} as built on {{ relation }}.{{ key }} = built.{{ key }}
    where
        built.{{ key }} is null
        {%- for column in compare %}
        or {{ relation }}.{{ column }} is distinct from built.{{ column }}
        {%- endfor %}
{%- endmacro %}

{#- D7's memory (base_postgres_airbyte__payment_charges): the charges of the raw payments in
    the run's window, each with its smallest payment id there; every raw payment in a full
    build. -#}
{% macro payment_charges_in_window() -%}
    {%- if is_incremental() and execute -%}
        {#- A memory built before `_synced_until` replaced `_airbyte_extracted_at` (same meaning)
            is read by its old column until the run syncs its columns. -#}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
        {%- set synced_column = '_synced_until' if '_synced_until' in columns else '_airbyte_extracted_at' -%}
    {%- else -%}
        {%- set synced_column = '_synced_until' -%}
    {%- endif %}
    select
        {{ charge_key('charge_id') }} as charge_key,
        charge_id,
        min(id) as first_payment_id,
        max(_airbyte_extracted_at) as _synced_until

    from {{ source('postgres_airbyte', 'payments') }}
    where
        charge_id is not null
        {% if is_incremental() %}
            and _airbyte_extracted_at >= {{ incremental_lower_bound(synced_column, var('payments_lookback_hours')) }}
        {% endif %}
    group by charge_id
{%- endmacro %}

{#- The pre-hook of D7's memory, in an incremental run: look the window's charges up in the
    memory once (new ones, and those whose first payment id the window lowers because a
    payment with a smaller id was synced late) into a temporary table that the run then reads,
    and delete the lowered ones, so the run appends them again with the smaller id. The lookup
    scans the memory's key column; doing it once, not in both the delete and the run, saves
    one such scan. The delete runs only when there is something to delete (rare). -#}
{% macro payment_charges_prepare() -%}
    {%- if is_incremental() -%}
        {%- set window_relation = payment_charges_window_relation() -%}
        {%- call statement('payment_charges_window') -%}
            create or replace temporary table {{ window_relation }} as
            select
                window_charges.charge_key,
                window_charges.charge_id,
                window_charges.first_payment_id,
                window_charges._synced_until,
                built.charge_key is not null as is_lowered
            from ({{ payment_charges_in_window() }}) as window_charges
            left join {{ this }} as built on window_charges.charge_key = built.charge_key
            where
                built.charge_key is null
                or window_charges.first_payment_id < built.first_payment_id
        {%- endcall -%}
        {%- if execute -%}
            {%- set lowered = run_query(
                'select count(*) from ' ~ window_relation ~ ' where is_lowered'
            ).columns[0].values()[0] -%}
            {%- if lowered > 0 -%}
                delete from {{ this }}
                where charge_key in (select charge_key from {{ window_relation }} where is_lowered)
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The temporary table payment_charges_prepare fills, in the session of the run. Unqualified:
    it lands in the session's schema, and fakesnow keeps temporary tables only there. -#}
{% macro payment_charges_window_relation() -%}
    {{ return(this.identifier ~ '__window') }}
{%- endmacro %}
