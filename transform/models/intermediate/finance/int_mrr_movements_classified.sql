-- Each subscription's month-over-month change in recurring revenue, labelled:
--   new           first month it counts
--   reactivation  counts again after at least one month out
--   expansion     worth more than last month (same or new plan)
--   contraction   worth less than last month (same or new plan)
--   churn         counted last month, not this month (booked on last month's plan)
--   plan_change   last month's value moved from the old plan to the new one, so that every
--                 plan's MRR bridge closes; the plan_change rows of a month sum to zero.
-- Amounts are annual values (twelve months of revenue); marts divide by 12 once.
with

subscription_months as (

    select * from {{ ref('int_subscription_months_evaluated') }}

),

current_month as (

    select cast({{ dbt.date_trunc('month', utc_today()) }} as date) as month_start_date

),

sequenced as (

    select
        subscription_id,
        user_id,
        plan_id,
        annual_value,
        month,
        lag(month) over (partition by subscription_id order by month) as previous_month,
        lag(plan_id) over (partition by subscription_id order by month) as previous_plan_id,
        lag(annual_value) over (partition by subscription_id order by month) as previous_annual_value,
        lead(month) over (partition by subscription_id order by month) as next_month

    from subscription_months

),

flagged as (

    select
        *,
        previous_month = cast({{ dbt.dateadd('month', -1, 'month') }} as date) as was_active_last_month,
        cast({{ dbt.dateadd('month', 1, 'month') }} as date) as following_month

    from sequenced

),

starts as (

    select
        month,
        subscription_id,
        user_id,
        plan_id,
        case when previous_month is null then 'new' else 'reactivation' end as movement_type,
        annual_value as annual_value_change

    from flagged
    where not coalesce(was_active_last_month, false)

),

plan_changes_in as (

    select
        month,
        subscription_id,
        user_id,
        plan_id,
        'plan_change' as movement_type,
        previous_annual_value as annual_value_change

    from flagged
    where was_active_last_month and plan_id <> previous_plan_id

),

plan_changes_out as (

    select
        month,
        subscription_id,
        user_id,
        previous_plan_id as plan_id,
        'plan_change' as movement_type,
        -1 * previous_annual_value as annual_value_change

    from flagged
    where was_active_last_month and plan_id <> previous_plan_id

),

value_changes as (

    select
        month,
        subscription_id,
        user_id,
        plan_id,
        case
            when annual_value > previous_annual_value then 'expansion'
            else 'contraction'
        end as movement_type,
        annual_value - previous_annual_value as annual_value_change

    from flagged
    where was_active_last_month and annual_value <> previous_annual_value

),

churns as (

    select
        flagged.following_month as month,
        flagged.subscription_id,
        flagged.user_id,
        flagged.plan_id,
        'churn' as movement_type,
        -1 * flagged.annual_value as annual_value_change

    from flagged
    cross join current_month
    where
        (flagged.next_month is null or flagged.next_month > flagged.following_month)
        and flagged.following_month <= current_month.month_start_date

),

movements as (

    select * from starts
    union all
    select * from plan_changes_in
    union all
    select * from plan_changes_out
    union all
    select * from value_changes
    union all
    select * from churns

)

select
    month,
    subscription_id,
    user_id,
    plan_id,
    cast(movement_type as varchar) as movement_type,
    annual_value_change

from movements
