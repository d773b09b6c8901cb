with

checked as (

    select * from {{ ref('base_postgres_airbyte__payments_checked') }}

),

accepted as (

    select
        payment_id,
        subscription_id,
        user_id,
        charge_id,
        amount,
        discount_amount,
        currency,
        status,
        paid_at,
        created_at,
        updated_at,
        _airbyte_extracted_at

    from checked
    where rejection_reason is null

)

select * from accepted
