-- Every raw payment with its rejection reason, if any. The rules that need other rows (an
-- earlier payment with the same charge id, D7; the subscription table, D8) are why this
-- staging model joins. Reasons are checked in contract order: D5, D6, D7, D8.
with

payments as (

    select * from {{ ref('base_postgres_airbyte__payments') }}

),

subscriptions as (

    select id as subscription_id from {{ source('postgres_airbyte', 'subscriptions') }}

),

checked as (

    select
        payments.*,
        case
            when payments.amount_rejection_reason is not null
                then payments.amount_rejection_reason
            when exists (
                select 1
                from payments as earlier
                where
                    earlier.charge_id = payments.charge_id
                    and earlier.payment_id < payments.payment_id
            ) then 'duplicate_charge'
            when not exists (
                select 1
                from subscriptions
                where subscriptions.subscription_id = payments.subscription_id
            ) then 'orphan_subscription'
        end as rejection_reason

    from payments

)

select * from checked
