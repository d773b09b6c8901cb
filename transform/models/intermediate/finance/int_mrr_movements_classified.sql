-- Each subscription's month-over-month change in recurring revenue, labelled:
--   new           first month it counts
--   reactivation  counts again after at least one month out
--   expansion     worth more than last month (same or new plan)
--   contraction   worth less than last month (same or new plan)
--   churn         counted last month, not this month (booked on last month's plan)
--   plan_change   last month's value moved from the old plan to the new one, so that every
--                 plan's MRR bridge closes; the plan_change rows of a month sum to zero.
-- Amounts are annual values (twelve months of revenue); marts divide by 12 once.
-- Incremental on the same window as int_subscription_months_evaluated: the newest month built
-- and every month since, for the subscriptions synced since the last run (pre-hook delete,
-- then append).
{{ mrr_incremental_config() }}

-- The subscriptions to recompute are read from (changed_subscription_ids):
-- depends_on: {{ ref('dim_subscriptions') }}, {{ ref('dim_users') }}, {{ ref('dim_plans') }}
{%- set window = mrr_window() %}
{%- set recompute_from = window.recompute_from %}

-- The month CTEs read the model directly rather than through one shared CTE: DuckDB
-- materialises a CTE used more than once, and the month filters would then no longer reach
-- the table scan.
with

{% if window.changed_since is not none -%}
changed_subscriptions as (

    {{ changed_subscription_ids(window.changed_since) }}

),

{% endif -%}
current_month as (

    select cast({{ dbt.date_trunc('month', utc_today()) }} as date) as month_start_date

),

this_month as (

    select subscription_id, user_id, plan_id, annual_value, month
    from {{ ref('int_subscription_months_evaluated') }}
    {% if is_incremental() %}
        where
            month >= {{ recompute_from }}
            {% if window.changed_since is not none %}
                and subscription_id in (select subscription_id from changed_subscriptions)
            {% endif %}
    {% endif %}

),

first_months as (

    {% if is_incremental() %}
        -- A subscription's first counted month is the month of its `new` movement: months
        -- before the window are read from the movements already built, not from every month
        -- the subscription has counted in.
        select
            counted.subscription_id,
            min(counted.month) as first_month

        from (
            select built.subscription_id, built.month
            from {{ this }} as built
            where
                built.movement_type = 'new'
                and built.month < {{ recompute_from }}
                and built.subscription_id in (select this_month.subscription_id from this_month)

            union all

            select this_month.subscription_id, this_month.month
            from this_month
        ) as counted
        group by counted.subscription_id
    {% else %}
        select
            subscription_id,
            min(month) as first_month

        from {{ ref('int_subscription_months_evaluated') }}
        group by subscription_id
    {% endif %}

),

last_month as (

    select
        subscription_months.subscription_id,
        subscription_months.user_id,
        subscription_months.plan_id,
        subscription_months.annual_value,
        cast({{ dbt.dateadd('month', 1, 'subscription_months.month') }} as date) as month

    from {{ ref('int_subscription_months_evaluated') }} as subscription_months
    cross join current_month
    where
        subscription_months.month < current_month.month_start_date
        {% if is_incremental() %}
            and subscription_months.month >= cast({{ dbt.dateadd('month', -1, recompute_from) }} as date)
            {% if window.changed_since is not none %}
                and subscription_months.subscription_id in (
                    select changed_subscriptions.subscription_id from changed_subscriptions
                )
            {% endif %}
        {% endif %}

),

compared as (

    select
        coalesce(this_month.month, last_month.month) as month,
        coalesce(this_month.subscription_id, last_month.subscription_id) as subscription_id,
        coalesce(this_month.user_id, last_month.user_id) as user_id,
        this_month.plan_id,
        this_month.annual_value,
        last_month.plan_id as previous_plan_id,
        last_month.annual_value as previous_annual_value,
        this_month.subscription_id is not null as is_counted,
        last_month.subscription_id is not null as was_counted

    from this_month
    full outer join last_month
        on
            this_month.subscription_id = last_month.subscription_id
            and this_month.month = last_month.month

),

labelled as (

    select
        compared.*,
        first_months.first_month

    from compared
    left join first_months on compared.subscription_id = first_months.subscription_id

),

starts as (

    select
        month,
        subscription_id,
        user_id,
        plan_id,
        case when month = first_month then 'new' else 'reactivation' end as movement_type,
        annual_value as annual_value_change

    from labelled
    where is_counted and not was_counted

),

plan_changes_in as (

    select
        month,
        subscription_id,
        user_id,
        plan_id,
        'plan_change' as movement_type,
        previous_annual_value as annual_value_change

    from labelled
    where is_counted and was_counted and plan_id <> previous_plan_id

),

plan_changes_out as (

    select
        month,
        subscription_id,
        user_id,
        previous_plan_id as plan_id,
        'plan_change' as movement_type,
        -1 * previous_annual_value as annual_value_change

    from labelled
    where is_counted and was_counted and plan_id <> previous_plan_id

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

    from labelled
    where is_counted and was_counted and annual_value <> previous_annual_value

),

churns as (

    select
        month,
        subscription_id,
        user_id,
        previous_plan_id as plan_id,
        'churn' as movement_type,
        -1 * previous_annual_value as annual_value_change

    from labelled
    where was_counted and not is_counted

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

-- `_synced_until`: as in int_subscription_months_evaluated.
select
    movements.month,
    movements.subscription_id,
    movements.user_id,
    movements.plan_id,
    cast(movements.movement_type as varchar) as movement_type,
    movements.annual_value_change,
    (
        select max(evaluated._synced_until)
        from {{ ref('int_subscription_months_evaluated') }} as evaluated
    ) as _synced_until

from movements
-- A full build writes the rows in month order: an incremental run's window (its newest months)
-- then lies in the table's last row groups, so its reads skip the others and its deletes
-- rewrite only those.
{% if not is_incremental() %}
    order by movements.month
{% endif %}
