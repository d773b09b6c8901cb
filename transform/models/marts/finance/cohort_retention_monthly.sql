-- Monthly customer cohorts: a customer joins the cohort of the first month one of their
-- subscriptions counted towards MRR, and is retained in a later month if one still does.
with

subscription_months as (

    select * from {{ ref('int_subscription_months_evaluated') }}

),

customer_months as (

    select distinct user_id, month
    from subscription_months

),

cohorts as (

    select user_id, min(month) as cohort_month
    from customer_months
    group by user_id

),

retained as (

    select
        cohorts.cohort_month,
        {{ dbt.datediff('cohorts.cohort_month', 'customer_months.month', 'month') }} as months_since_cohort,
        count(*) as retained_customers

    from customer_months
    inner join cohorts on customer_months.user_id = cohorts.user_id
    group by 1, 2

),

sizes as (

    select cohort_month, count(*) as cohort_customers
    from cohorts
    group by cohort_month

)

select
    cast(retained.cohort_month as date) as cohort_month,
    cast(retained.months_since_cohort as integer) as months_since_cohort,
    cast(sizes.cohort_customers as bigint) as cohort_customers,
    cast(retained.retained_customers as bigint) as retained_customers,
    {{ safe_ratio('retained.retained_customers', 'sizes.cohort_customers') }} as retention_rate

from retained
inner join sizes on retained.cohort_month = sizes.cohort_month
