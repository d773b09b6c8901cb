-- All-time net revenue per plan. A payment belongs to the plan its subscription has now
-- (contract: "the plan of its subscription at load time"). Every plan has a row.
-- Summed from the billing-period mart, which sums every payment once for all the revenue marts.
with

plans as (

    select plan_name from {{ ref('dim_plans') }}

),

by_billing_period as (

    select * from {{ ref('revenue_and_mrr_by_billing_period') }}

),

revenue_by_plan as (

    select
        plan_name,
        sum(net_revenue) as net_revenue,
        sum(succeeded_payments) as succeeded_payments

    from by_billing_period
    group by plan_name

)

select
    cast(plans.plan_name as varchar) as plan_name,
    cast(coalesce(revenue_by_plan.net_revenue, 0) as decimal(14, 2)) as net_revenue,
    cast(coalesce(revenue_by_plan.succeeded_payments, 0) as bigint) as succeeded_payments

from plans
left join revenue_by_plan on plans.plan_name = revenue_by_plan.plan_name
