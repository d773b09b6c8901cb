-- Net revenue per plan and calendar month of `paid_at` (UTC), for every month and plan that
-- has at least one accepted payment; failed and refunded payments count 0.
-- Summed from the billing-period mart, which sums every payment once for all the revenue marts.
with

by_billing_period as (

    select * from {{ ref('revenue_and_mrr_by_billing_period') }}

),

monthly as (

    select
        month as revenue_month,
        plan_name,
        sum(net_revenue) as net_revenue

    from by_billing_period
    where payments > 0
    group by month, plan_name

)

select
    cast(revenue_month as date) as revenue_month,
    cast(plan_name as varchar) as plan_name,
    cast(net_revenue as decimal(14, 2)) as net_revenue

from monthly
