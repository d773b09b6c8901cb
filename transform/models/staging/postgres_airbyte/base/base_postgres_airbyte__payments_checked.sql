-- Every raw payment with its rejection reason, if any. The rules that need other rows (an
-- earlier payment with the same charge id, D7; the subscription table, D8) are why this
-- staging model joins. Reasons are checked in contract order: D5, D6, D7, D8.
-- D7 looks the charge up in base_postgres_airbyte__payment_charges (each charge's first
-- payment id), not in the raw history. The payments are selected without a CTE: DuckDB
-- materialises a CTE that correlated subqueries refer to, which would clean every raw row
-- even when an incremental run asks for one day.
select
    payments.*,
    case
        when payments.amount_rejection_reason is not null
            then payments.amount_rejection_reason
        when exists (
            select 1
            from {{ ref('base_postgres_airbyte__payment_charges') }} as charges
            where
                charges.charge_key = {{ charge_key('payments.charge_id') }}
                and charges.first_payment_id < payments.payment_id
        ) then 'duplicate_charge'
        when not exists (
            select 1
            from {{ source('postgres_airbyte', 'subscriptions') }} as subscriptions
            where subscriptions.id = payments.subscription_id
        ) then 'orphan_subscription'
    end as rejection_reason

from {{ ref('base_postgres_airbyte__payments') }} as payments
