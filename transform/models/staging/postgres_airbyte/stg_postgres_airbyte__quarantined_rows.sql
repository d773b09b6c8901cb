-- Every raw row kept out of staging, with its table, id and reason: nothing is lost silently.
-- Only payments have rejection rules today (D5-D8); other tables pass every row through.
with

payments as (

    select * from {{ ref('base_postgres_airbyte__payments_checked') }}

),

quarantined as (

    select
        cast('payments' as varchar) as source_table,
        payment_id as source_id,
        cast(rejection_reason as varchar) as reason,
        _airbyte_extracted_at

    from payments
    where rejection_reason is not null

)

select * from quarantined
