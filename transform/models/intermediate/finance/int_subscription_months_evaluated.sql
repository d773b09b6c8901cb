-- One row per subscription and calendar month in which it counts towards MRR.
-- The current month is the state right now (contract section 4). Past months are the state at
-- the month's last instant, read from the captured history; before a subscription's first
-- captured version, it is taken as active from `started_at` with that version's plan.
-- Soft-deleted users stop counting from `deleted_at`.
-- Incremental: a run recomputes the newest month already built and every month since, for
-- the subscriptions whose subscription, user or plan was synced since the last run (all of
-- them on the first run of a new month; see mrr_window). A pre-hook deletes those rows and
-- the run appends them again (mrr_incremental_config).
{{ mrr_incremental_config() }}

-- The subscriptions to recompute are also read from (changed_subscription_ids):
-- depends_on: {{ ref('dim_plans') }}
{%- set window = mrr_window() %}

with

{% if window.changed_since is not none -%}
changed_subscriptions as (

    {{ changed_subscription_ids(window.changed_since) }}

),

{% endif -%}
versions as (

    select * from {{ ref('int_subscription_versions_captured') }}
    {% if window.changed_since is not none %}
        where subscription_id in (select subscription_id from changed_subscriptions)
    {% endif %}

),

current_subscriptions as (

    select * from {{ ref('dim_subscriptions') }}
    {% if window.changed_since is not none %}
        where subscription_id in (select subscription_id from changed_subscriptions)
    {% endif %}

),

users as (

    select user_id, deleted_at from {{ ref('dim_users') }}

),

months as (

    select distinct
        month_start_date,
        cast({{ dbt.dateadd('month', 1, 'month_start_date') }} as date) as next_month_start_date

    from {{ ref('dim_date') }}
    where
        date_day <= {{ utc_today() }}
        {% if is_incremental() %}
            and month_start_date >= {{ window.recompute_from }}
        {% endif %}

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

versioned_segments as (

    select subscription_id, user_id, plan_id, status, annual_value, valid_from, valid_to
    from ordered_versions

    union all

    select subscription_id, user_id, plan_id, status, annual_value, valid_from, valid_to
    from backfilled

),

segments as (

    -- Only active time counts; an open segment runs to the far future, which keeps the
    -- month join a plain range join.
    select
        subscription_id,
        user_id,
        plan_id,
        annual_value,
        valid_from,
        coalesce(valid_to, cast('9999-12-31' as {{ dbt.type_timestamp() }})) as active_until

    from versioned_segments
    where status = 'active'

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
            segments.valid_from < months.next_month_start_date
            and segments.active_until >= months.next_month_start_date
    left join users on segments.user_id = users.user_id
    where
        months.month_start_date < (select current_month.month_start_date from current_month)
        and (users.deleted_at is null or users.deleted_at >= months.next_month_start_date)

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

-- Keyed by (subscription_id, month): a hashed surrogate key would cost a hash per row on every
-- run and nothing reads it. `_synced_until` is the newest subscription sync this run saw: the
-- next run recomputes what was synced since.
select
    unioned.subscription_id,
    unioned.user_id,
    unioned.plan_id,
    unioned.annual_value,
    unioned.month,
    (select max(synced._airbyte_extracted_at) from {{ ref('dim_subscriptions') }} as synced)
        as _synced_until

from unioned
where unioned.plan_id is not null
-- A full build writes the rows in month order: an incremental run's window (its newest months)
-- then lies in the table's last row groups, so its reads skip the others and its deletes
-- rewrite only those.
{% if not is_incremental() %}
    order by unioned.month
{% endif %}
