-- Net revenue and month-end MRR per month, plan and billing period, so that a month's net
-- revenue from monthly subscriptions can be set beside their MRR (contract section 1a: close
-- to it, less discounts, failures and refunds). Plans and billing periods are the
-- subscriptions' as they are now, as in the other marts; summed over billing periods, `mrr`
-- equals MRR_BY_PLAN's, to the cent. It is the one mart that sums every payment:
-- MONTHLY_NET_REVENUE_BY_PLAN and NET_REVENUE_BY_PLAN sum its rows (a few per month and plan),
-- which is exact, since every payment's net revenue already has two decimals.
with

payments as (

    select * from {{ ref('fct_payments') }}

),

-- The billing periods as small integers: grouping millions of joined rows by an integer is
-- many times faster than by the text (measured on DuckDB at 10M payments: 0.3 s against 3.5 s).
billing_periods as (

    select
        billing_period,
        row_number() over (order by billing_period) as billing_period_id

    from (select distinct billing_period from {{ ref('dim_subscriptions') }}) as distinct_periods

),

subscriptions as (

    select
        dim_subscriptions.subscription_id,
        dim_subscriptions.plan_id,
        billing_periods.billing_period_id

    from {{ ref('dim_subscriptions') }} as dim_subscriptions
    inner join billing_periods on dim_subscriptions.billing_period = billing_periods.billing_period

),

plans as (

    select plan_id, plan_name from {{ ref('dim_plans') }}

),

subscription_months as (

    select * from {{ ref('int_subscription_months_evaluated') }}

),

-- Every payment, summed per status first: four plain sums per group instead of seven
-- conditional ones over every payment (measured on DuckDB at 10M payments: 0.16-0.19 s against
-- 0.29 s). `paid` then splits the few rows per group by status. Net revenue stays fct_payments'
-- column; the other amounts are per status, as before. Amount less discount summed per status
-- equals the per-payment sum because an accepted payment always has both amounts (D5 rejects a
-- missing or unparseable amount; D12 makes a missing discount 0).
paid_by_status as (

    select
        payments.paid_month as month,
        subscriptions.plan_id,
        subscriptions.billing_period_id,
        payments.status,
        count(*) as payments,
        sum(payments.amount) as amount,
        sum(payments.discount_amount) as discount_amount,
        sum(payments.net_revenue) as net_revenue

    from payments
    inner join subscriptions on payments.subscription_id = subscriptions.subscription_id
    group by payments.paid_month, subscriptions.plan_id, subscriptions.billing_period_id, payments.status

),

paid as (

    select
        month,
        plan_id,
        billing_period_id,
        sum(payments) as payments,
        sum(case when status = 'succeeded' then payments else 0 end) as succeeded_payments,
        sum(net_revenue) as net_revenue,
        sum(case when status = 'succeeded' then amount else 0 end) as succeeded_amount,
        sum(case when status = 'succeeded' then discount_amount else 0 end) as discount_amount,
        sum(case when status = 'refunded' then amount - discount_amount else 0 end) as refunded_amount,
        sum(case when status = 'failed' then amount - discount_amount else 0 end) as failed_amount

    from paid_by_status
    group by month, plan_id, billing_period_id

),

recurring as (

    select
        subscription_months.month,
        subscription_months.plan_id,
        subscriptions.billing_period_id,
        sum(subscription_months.annual_value) as annual_value,
        count(*) as active_subscriptions

    from subscription_months
    inner join subscriptions on subscription_months.subscription_id = subscriptions.subscription_id
    group by subscription_months.month, subscription_months.plan_id, subscriptions.billing_period_id

),

combined as (

    select
        coalesce(recurring.month, paid.month) as month,
        coalesce(recurring.plan_id, paid.plan_id) as plan_id,
        coalesce(recurring.billing_period_id, paid.billing_period_id) as billing_period_id,
        coalesce(recurring.annual_value, 0) as annual_value,
        coalesce(recurring.active_subscriptions, 0) as active_subscriptions,
        coalesce(paid.payments, 0) as payments,
        coalesce(paid.succeeded_payments, 0) as succeeded_payments,
        coalesce(paid.net_revenue, 0) as net_revenue,
        coalesce(paid.succeeded_amount, 0) as succeeded_amount,
        coalesce(paid.discount_amount, 0) as discount_amount,
        coalesce(paid.refunded_amount, 0) as refunded_amount,
        coalesce(paid.failed_amount, 0) as failed_amount

    from recurring
    full outer join paid
        on
            recurring.month = paid.month
            and recurring.plan_id = paid.plan_id
            and recurring.billing_period_id = paid.billing_period_id

)

select
    cast(combined.month as date) as month,
    cast(plans.plan_name as varchar) as plan_name,
    cast(billing_periods.billing_period as varchar) as billing_period,
    {{ money_divide('combined.annual_value', 12) }} as mrr,
    cast(combined.active_subscriptions as bigint) as active_subscriptions,
    cast(combined.payments as bigint) as payments,
    cast(combined.succeeded_payments as bigint) as succeeded_payments,
    cast(round(combined.net_revenue, 2) as decimal(14, 2)) as net_revenue,
    cast(round(combined.succeeded_amount, 2) as decimal(14, 2)) as succeeded_amount,
    cast(round(combined.discount_amount, 2) as decimal(14, 2)) as discount_amount,
    cast(round(combined.refunded_amount, 2) as decimal(14, 2)) as refunded_amount,
    cast(round(combined.failed_amount, 2) as decimal(14, 2)) as failed_amount

from combined
inner join plans on combined.plan_id = plans.plan_id
inner join billing_periods on combined.billing_period_id = billing_periods.billing_period_id
