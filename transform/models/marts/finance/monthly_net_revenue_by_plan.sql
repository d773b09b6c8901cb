-- Net revenue per plan and calendar month of `paid_at` (UTC), for every month and plan that
-- has at least one accepted payment; failed and refunded payments count 0.
with

{{ payments_with_plans() }},

monthly as (

    select
        payments.paid_month as revenue_month,
        plans.plan_name,
        sum(payments.net_revenue) as net_revenue

    from payments
    inner join subscriptions on payments.subscription_id = subscriptions.subscription_id
    inner join plans on subscriptions.plan_id = plans.plan_id
    group by payments.paid_month, plans.plan_name

)

select
    cast(revenue_month as date) as revenue_month,
    cast(plan_name as varchar) as plan_name,
    cast(round(net_revenue, 2) as decimal(14, 2)) as net_revenue

from monthly
