-- Account number and IBAN keep only their last 4 characters.
with

source as (

    select * from {{ source('postgres_airbyte', 'banks') }}

),

renamed as (

    select
        id as bank_account_id,
        user_id,
        lower(trim(bank_name)) as bank_name,
        right(trim(account_number), 4) as account_number_last4,
        right(replace(iban, ' ', ''), 4) as iban_last4,
        trim(routing_number) as routing_number,
        upper(trim(swift_bic)) as swift_bic,
        {{ to_utc('created_at') }} as created_at,
        {{ to_utc('updated_at') }} as updated_at,
        _airbyte_extracted_at

    from source

)

select * from renamed
