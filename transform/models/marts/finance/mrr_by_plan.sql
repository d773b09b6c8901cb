-- Monthly recurring revenue per plan and month, with its movements. Every plan has a row for
-- every month from the first month with MRR to the current month.
-- Bridge: mrr = previous mrr + new + expansion + reactivation - contraction - churned
--         + plan_change (net MRR moved in from other plans by plan changes).
with

subscription_months as (

    select * from {{ ref('int_subscription_months_evaluated') }}

),

movements as (

    select * from {{ ref('int_mrr_movements_classified') }}

),

plans as (

    select plan_id, plan_name from {{ ref('dim_plans') }}

),

months as (

    select distinct month_start_date as month
    from {{ ref('dim_date') }}
    where
        date_day <= {{ utc_today() }}
        and month_start_date >= coalesce(
            (select min(subscription_months.month) from subscription_months),
            cast({{ dbt.date_trunc('month', utc_today()) }} as date)
        )

),

grid as (

    select months.month, plans.plan_id, plans.plan_name
    from months
    cross join plans

),

recurring as (

    select
        month,
        plan_id,
        sum(annual_value) as annual_value,
        count(*) as active_subscriptions

    from subscription_months
    group by month, plan_id

),

moved as (

    select
        month,
        plan_id,
        sum(case when movement_type = 'new' then annual_value_change else 0 end) as new_value,
        sum(case when movement_type = 'expansion' then annual_value_change else 0 end) as expansion_value,
        sum(case when movement_type = 'contraction' then -1 * annual_value_change else 0 end)
            as contraction_value,
        sum(case when movement_type = 'churn' then -1 * annual_value_change else 0 end) as churned_value,
        sum(case when movement_type = 'reactivation' then annual_value_change else 0 end)
            as reactivation_value,
        sum(case when movement_type = 'plan_change' then annual_value_change else 0 end)
            as plan_change_value

    from movements
    group by month, plan_id

)

select
    cast(grid.month as date) as month,
    cast(grid.plan_name as varchar) as plan_name,
    {{ money_divide('coalesce(recurring.annual_value, 0)', 12) }} as mrr,
    cast(coalesce(recurring.active_subscriptions, 0) as bigint) as active_subscriptions,
    cast(round(coalesce(recurring.annual_value, 0), 2) as decimal(14, 2)) as arr,
    {{ money_divide('coalesce(moved.new_value, 0)', 12) }} as new_mrr,
    {{ money_divide('coalesce(moved.expansion_value, 0)', 12) }} as expansion_mrr,
    {{ money_divide('coalesce(moved.contraction_value, 0)', 12) }} as contraction_mrr,
    {{ money_divide('coalesce(moved.churned_value, 0)', 12) }} as churned_mrr,
    {{ money_divide('coalesce(moved.reactivation_value, 0)', 12) }} as reactivation_mrr,
    {{ money_divide('coalesce(moved.plan_change_value, 0)', 12) }} as plan_change_mrr

from grid
left join recurring on grid.month = recurring.month and grid.plan_id = recurring.plan_id
left join moved on grid.month = moved.month and grid.plan_id = moved.plan_id
