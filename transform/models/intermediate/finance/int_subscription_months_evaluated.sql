-- One row per subscription and calendar month in which it counts towards MRR.
-- The current month is the state right now (contract section 4). Past months are the state at
-- the month's last instant, read from the captured history; before a subscription's first
-- captured version, it is taken as active from `started_at` with that version's plan.
-- Soft-deleted users stop counting from `deleted_at`.
with

versions as (

    select * from {{ ref('int_subscription_versions_captured') }}

),

current_subscriptions as (

    select * from {{ ref('dim_subscriptions') }}

),

users as (

    select user_id, deleted_at from {{ ref('stg_postgres_airbyte__users') }}

),

months as (

    select distinct month_start_date
    from {{ ref('dim_date') }}
    where date_day <= {{ utc_today() }}

),

current_month as (

    select cast({{ dbt.date_trunc('month', utc_today()) }} as date) as month_start_date

),

ordered_versions as (

    select
        *,
        row_number() over (partition by subscription_id order by valid_from) as version_number,
        lead(valid_from) over (partition by subscription_id order by valid_from) as valid_to

    from versions

),

backfilled as (

    -- Before the first captured version, the subscription ran from started_at until it was
    -- cancelled or until the version was captured, whichever came first.
    select
        subscription_id,
        user_id,
        plan_id,
        'active' as status,
        annual_value,
        started_at as valid_from,
        case
            when cancelled_at is not null and cancelled_at < valid_from then cancelled_at
            else valid_from
        end as valid_to

    from ordered_versions
    where version_number = 1 and started_at < valid_from

),

segments as (

    select subscription_id, user_id, plan_id, status, annual_value, valid_from, valid_to
    from ordered_versions

    union all

    select subscription_id, user_id, plan_id, status, annual_value, valid_from, valid_to
    from backfilled

),

past_months as (

    select
        segments.subscription_id,
        segments.user_id,
        segments.plan_id,
        segments.annual_value,
        months.month_start_date as month

    from segments
    inner join months
        on
            segments.valid_from < {{ dbt.dateadd('month', 1, 'months.month_start_date') }}
            and (
                segments.valid_to is null
                or segments.valid_to >= {{ dbt.dateadd('month', 1, 'months.month_start_date') }}
            )
    left join users on segments.user_id = users.user_id
    where
        segments.status = 'active'
        and months.month_start_date < (select month_start_date from current_month)
        and (
            users.deleted_at is null
            or users.deleted_at >= {{ dbt.dateadd('month', 1, 'months.month_start_date') }}
        )

),

this_month as (

    select
        current_subscriptions.subscription_id,
        current_subscriptions.user_id,
        current_subscriptions.plan_id,
        current_subscriptions.annual_value,
        current_month.month_start_date as month

    from current_subscriptions
    cross join current_month
    where current_subscriptions.is_recurring

),

unioned as (

    select * from past_months
    union all
    select * from this_month

)

select
    {{ dbt.hash(dbt.concat(["cast(subscription_id as varchar)", "'|'", "cast(month as varchar)"])) }}
        as subscription_month_id,
    subscription_id,
    user_id,
    plan_id,
    annual_value,
    month

from unioned
where plan_id is not null
