-- Monthly customer cohorts: a customer joins the cohort of the first month one of their
-- subscriptions counted towards MRR, and is retained in a later month if one still does.
-- Incremental by activity month, on the same window as the MRR models (pre-hook delete, then
-- append).
{{
    config(
        materialized='incremental',
        on_schema_change='fail',
        incremental_strategy='append',
        tmp_relation_type='transient',
        pre_hook="{% if is_incremental() %}delete from {{ this }} where activity_month >= {{ mrr_window('activity_month').recompute_from }}{% endif %}",
    )
}}

with

subscription_months as (

    select * from {{ ref('int_subscription_months_evaluated') }}

),

-- A customer's cohort is the first month one of their subscriptions counted, which is the
-- month of that subscription's `new` movement (each subscription has one, in its first counted
-- month): read from the movements, far fewer rows than every subscription-month. It assumes,
-- like the movements, that a subscription stays with the user it was created for.
cohorts as (

    select
        user_id,
        min(month) as cohort_month

    from {{ ref('int_mrr_movements_classified') }}
    where movement_type = 'new'
    group by user_id

),

customer_months as (

    select distinct
        user_id,
        month

    from subscription_months
    {% if is_incremental() %}
        where month >= {{ mrr_window('activity_month').recompute_from }}
    {% endif %}

),

retained as (

    select
        cohorts.cohort_month,
        customer_months.month as activity_month,
        count(*) as retained_customers

    from customer_months
    inner join cohorts on customer_months.user_id = cohorts.user_id
    group by cohorts.cohort_month, customer_months.month

),

sizes as (

    select
        cohort_month,
        count(*) as cohort_customers

    from cohorts
    group by cohort_month

)

select
    cast(retained.cohort_month as date) as cohort_month,
    cast(retained.activity_month as date) as activity_month,
    cast(
        {{ dbt.datediff('retained.cohort_month', 'retained.activity_month', 'month') }} as integer
    ) as months_since_cohort,
    cast(sizes.cohort_customers as bigint) as cohort_customers,
    cast(retained.retained_customers as bigint) as retained_customers,
    {{ safe_ratio('retained.retained_customers', 'sizes.cohort_customers') }} as retention_rate

from retained
inner join sizes on retained.cohort_month = sizes.cohort_month
