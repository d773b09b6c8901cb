-- Company-wide monthly SaaS metrics.
--   arr                   twelve months of the recurring revenue counted this month
--   logo_churn_rate       subscriptions churned / subscriptions active last month
--   revenue_churn_rate    (churned + contraction MRR) / last month's MRR (gross MRR churn)
--   grr                   (last MRR - churned - contraction) / last MRR
--   nrr                   (last MRR - churned - contraction + expansion) / last MRR
--   arpu                  MRR / customers (users) with at least one counted subscription
--   discount_rate         discounts / gross amount of succeeded payments paid this month
with

by_plan as (

    select * from {{ ref('mrr_by_plan') }}

),

cohorts as (

    select * from {{ ref('cohort_retention_monthly') }}

),

movements as (

    select * from {{ ref('int_mrr_movements_classified') }}

),

-- The month's payments, summed once per month, plan and billing period by the billing-period
-- mart. It counts the payments of subscriptions with a known plan: a subscription whose plan
-- matches none fails stg_postgres_airbyte__subscriptions' relationships test, and dbt then
-- builds no mart from it.
by_billing_period as (

    select * from {{ ref('revenue_and_mrr_by_billing_period') }}

),

totals as (

    select
        month,
        sum(arr) as annual_value,
        sum(active_subscriptions) as active_subscriptions,
        sum(new_mrr) as new_mrr,
        sum(expansion_mrr) as expansion_mrr,
        sum(contraction_mrr) as contraction_mrr,
        sum(churned_mrr) as churned_mrr,
        sum(reactivation_mrr) as reactivation_mrr

    from by_plan
    group by month

),

customers as (

    -- Every counted customer is in exactly one cohort, so the cohorts add up to the month.
    select
        activity_month as month,
        sum(retained_customers) as active_customers

    from cohorts
    group by activity_month

),

churned as (

    select month, count(*) as churned_subscriptions
    from movements
    where movement_type = 'churn'
    group by month

),

paid as (

    select
        month,
        sum(succeeded_amount) as gross_amount,
        sum(discount_amount) as discount_amount,
        sum(net_revenue) as net_revenue

    from by_billing_period
    group by month

),

combined as (

    select
        totals.month,
        {{ money_divide('totals.annual_value', 12) }} as mrr,
        cast(totals.annual_value as decimal(14, 2)) as arr,
        totals.active_subscriptions,
        coalesce(customers.active_customers, 0) as active_customers,
        totals.new_mrr,
        totals.expansion_mrr,
        totals.contraction_mrr,
        totals.churned_mrr,
        totals.reactivation_mrr,
        coalesce(churned.churned_subscriptions, 0) as churned_subscriptions,
        coalesce(paid.gross_amount, 0) as gross_amount,
        coalesce(paid.discount_amount, 0) as discount_amount,
        coalesce(paid.net_revenue, 0) as net_revenue

    from totals
    left join customers on totals.month = customers.month
    left join churned on totals.month = churned.month
    left join paid on totals.month = paid.month

),

with_previous as (

    select
        *,
        lag(mrr) over (order by month) as previous_mrr,
        lag(active_subscriptions) over (order by month) as previous_active_subscriptions

    from combined

)

select
    cast(month as date) as month,
    cast(mrr as decimal(14, 2)) as mrr,
    cast(arr as decimal(14, 2)) as arr,
    cast(active_subscriptions as bigint) as active_subscriptions,
    cast(active_customers as bigint) as active_customers,
    cast(new_mrr as decimal(14, 2)) as new_mrr,
    cast(expansion_mrr as decimal(14, 2)) as expansion_mrr,
    cast(contraction_mrr as decimal(14, 2)) as contraction_mrr,
    cast(churned_mrr as decimal(14, 2)) as churned_mrr,
    cast(reactivation_mrr as decimal(14, 2)) as reactivation_mrr,
    cast(churned_subscriptions as bigint) as churned_subscriptions,
    {{ safe_ratio('churned_subscriptions', 'coalesce(previous_active_subscriptions, 0)') }} as logo_churn_rate,
    {{ safe_ratio('churned_mrr + contraction_mrr', 'coalesce(previous_mrr, 0)') }} as revenue_churn_rate,
    {{ safe_ratio('previous_mrr - churned_mrr - contraction_mrr', 'coalesce(previous_mrr, 0)') }} as grr,
    {{ safe_ratio('previous_mrr - churned_mrr - contraction_mrr + expansion_mrr', 'coalesce(previous_mrr, 0)') }}
        as nrr,
    case
        when active_customers = 0 then null
        else {{ money_divide('mrr', 'active_customers') }}
    end as arpu,
    cast(net_revenue as decimal(14, 2)) as net_revenue,
    {{ safe_ratio('discount_amount', 'gross_amount') }} as discount_rate

from with_previous
