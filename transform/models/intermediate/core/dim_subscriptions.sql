-- Subscriptions as they are now, with their plan resolved case-insensitively (D1) and the
-- annual value they are worth at current list prices.
-- Incremental: a run redoes the subscriptions synced in the lookback window and those whose
-- user or plan was (a deletion or a price change changes them too), and replaces only those
-- that came out different (changed_rows_only): synced again, or with other values from their
-- plan or user. A new column taken from a plan or user belongs in that comparison too.
{{
    config(
        materialized='incremental',
        unique_key='subscription_id',
        incremental_strategy='delete+insert',
        tmp_relation_type='transient',
    )
}}

{%- if is_incremental() %}
    {%- set lower_bound = incremental_lower_bound('_airbyte_extracted_at', var('payments_lookback_hours')) %}
{%- endif %}

with

{%- if is_incremental() %}
-- The subscriptions to redo: synced in the window, or whose user or plan was. Each condition reads
-- one table, so every one of them filters its own scan; joined first and tested after the join,
-- they would make every run read every subscription. The ids are collected first, so that the
-- staging view's conversions (time zones, D1-D3) run on those subscriptions alone: tested in
-- one filter above the view, the conditions made them run on every subscription (the query took
-- 0.12-0.21 s at 625,000 subscriptions; 0.03-0.05 s this way).
changed_subscriptions as (

    {{ changed_subscription_ids(lower_bound, ref('stg_postgres_airbyte__subscriptions')) }}

),
{%- endif %}

subscriptions as (

    select * from {{ ref('stg_postgres_airbyte__subscriptions') }}
    {% if is_incremental() %}
        where subscription_id in (select subscription_id from changed_subscriptions)
    {% endif %}

),

plans as (

    select * from {{ ref('dim_plans') }}

),

users as (

    select user_id, is_deleted from {{ ref('dim_users') }}

),

joined as (

    select
        subscriptions.subscription_id,
        subscriptions.user_id,
        plans.plan_id,
        plans.plan_name,
        subscriptions.plan_key,
        subscriptions.status,
        subscriptions.billing_period,
        subscriptions.payment_method,
        subscriptions.started_at,
        subscriptions.cancelled_at,
        coalesce(users.is_deleted, false) as is_user_deleted,
        subscriptions.status = 'active' and not coalesce(users.is_deleted, false) as is_recurring,
        -- Twelve months of revenue: exact in both billing periods, divided by 12 only in marts.
        case subscriptions.billing_period
            when 'monthly' then plans.monthly_price * 12
            when 'annual' then plans.annual_price
        end as annual_value,
        subscriptions.created_at,
        subscriptions.updated_at,
        subscriptions._airbyte_extracted_at

    from subscriptions
    left join plans on subscriptions.plan_key = plans.plan_key
    left join users on subscriptions.user_id = users.user_id

)

{% if is_incremental() %}
    {{ changed_rows_only('joined', 'subscription_id', compare=[
        '_airbyte_extracted_at', 'plan_id', 'plan_name', 'annual_value', 'is_user_deleted',
        'is_recurring',
    ]) }}
{% else %}
    select * from joined
{% endif %}
