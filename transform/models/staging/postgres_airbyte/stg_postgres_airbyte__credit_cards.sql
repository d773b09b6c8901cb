-- The card number keeps only its last 4 digits.
with

source as (

    select * from {{ source('postgres_airbyte', 'credit_cards') }}

),

renamed as (

    select
        id as credit_card_id,
        user_id,
        right(replace(replace(card_number, ' ', ''), '-', ''), 4) as card_number_last4,
        lower(trim(card_type)) as card_type,
        trim(expiry) as expiry,
        {{ to_utc('created_at') }} as created_at,
        {{ to_utc('updated_at') }} as updated_at,
        _airbyte_extracted_at

    from source

)

select * from renamed
