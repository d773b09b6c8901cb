-- Slowly changing history of subscriptions (SCD2 by `updated_at`): the raw layer keeps only
-- the latest row per id, so each run appends the versions it has not seen. `full_refresh`
-- is off because history, once lost, cannot be rebuilt from the source.
{{
    config(
        materialized='incremental',
        unique_key='subscription_version_id',
        incremental_strategy='delete+insert',
        tmp_relation_type='transient',
        full_refresh=false,
    )
}}

with

subscriptions as (

    select * from {{ ref('dim_subscriptions') }}

    {% if is_incremental() %}
        where _airbyte_extracted_at >= {{ incremental_lower_bound('_airbyte_extracted_at', var('payments_lookback_hours')) }}
    {% endif %}

),

versions as (

    select
        {{ dbt.hash(dbt.concat(["cast(subscription_id as varchar)", "'|'", "cast(updated_at as varchar)"])) }}
            as subscription_version_id,
        subscription_id,
        user_id,
        plan_id,
        status,
        billing_period,
        annual_value,
        started_at,
        cancelled_at,
        updated_at as valid_from,
        _airbyte_extracted_at

    from subscriptions

)

select * from versions
