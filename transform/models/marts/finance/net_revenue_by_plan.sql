-- All-time net revenue per plan. A payment belongs to the plan its subscription has now
-- (contract: "the plan of its subscription at load time"). Every plan has a row.
with

{{ payments_with_plans() }},

revenue_by_plan as (

    select
        subscriptions.plan_id,
        sum(payments.net_revenue) as net_revenue,
        sum(case when payments.is_succeeded then 1 else 0 end) as succeeded_payments

    from payments
    inner join subscriptions on payments.subscription_id = subscriptions.subscription_id
    group by subscriptions.plan_id

)

select
    cast(plans.plan_name as varchar) as plan_name,
    cast(round(coalesce(revenue_by_plan.net_revenue, 0), 2) as decimal(14, 2)) as net_revenue,
    cast(coalesce(revenue_by_plan.succeeded_payments, 0) as bigint) as succeeded_payments

from plans
left join revenue_by_plan on plans.plan_id = revenue_by_plan.plan_id
