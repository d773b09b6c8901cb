-- Personal data stays here: password and social insurance number are dropped, names are
-- dropped, the phone number keeps its last 4 digits, the email is cleaned (D9, D10).
with

source as (

    select * from {{ source('postgres_airbyte', 'users') }}

),

cleaned as (

    select
        *,
        lower(trim(email)) as email_cleaned,
        trim(date_of_birth) as date_of_birth_text

    from source

),

renamed as (

    select
        id as user_id,
        cast(uid as varchar) as user_uid,
        case when email_cleaned like '%@%' then email_cleaned end as email,
        coalesce(email_cleaned like '%@%', false) as is_email_valid,
        right(trim(phone), 4) as phone_last4,
        coalesce(
            {{ try_parse_date('date_of_birth_text', '%Y-%m-%d', 'YYYY-MM-DD') }},
            {{ try_parse_date('date_of_birth_text', '%Y/%m/%d', 'YYYY/MM/DD') }},
            {{ try_parse_date('date_of_birth_text', '%d.%m.%Y', 'DD.MM.YYYY') }},
            case
                when {{ regex_full_match('date_of_birth_text', '^-?[0-9]{1,11}$') }}
                    then {{ epoch_seconds_to_date('date_of_birth_text') }}
            end
        ) as date_of_birth,
        lower(trim(country)) as country,
        {{ to_utc('deleted_at') }} as deleted_at,
        deleted_at is not null as is_deleted,
        {{ to_utc('created_at') }} as created_at,
        {{ to_utc('updated_at') }} as updated_at,
        _airbyte_extracted_at

    from cleaned

)

select * from renamed
