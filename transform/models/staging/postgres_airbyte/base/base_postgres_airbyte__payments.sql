-- Row-level cleaning of payments (D1, D2, D4, D12) and the row-level rejection reasons (D5, D6).
-- Rejections that need other rows (D7, D8) are decided in base_postgres_airbyte__payments_checked.
with

source as (

    select * from {{ source('postgres_airbyte', 'payments') }}

),

amount_stripped as (

    select
        *,
        -- D4: drop spaces, then a leading USD and a leading $ sign (elsewhere they make the
        -- amount unparseable, as in the contract).
        regexp_replace(upper(replace(amount, ' ', '')), '^(USD)?[$]?', '') as amount_stripped

    from source

),

amount_normalised as (

    select
        *,
        -- D4: a comma followed by 1-2 final digits is the decimal point.
        case
            when {{ regex_full_match('amount_stripped', '^-?[0-9]+,[0-9]{1,2}$') }}
                then replace(amount_stripped, ',', '.')
            else amount_stripped
        end as amount_text

    from amount_stripped

),

amount_parsed as (

    select
        *,
        case
            when {{ regex_full_match('amount_text', '^-?[0-9]+([.][0-9]+)?$') }}
                then try_cast(amount_text as decimal(12, 2))
        end as amount_value,
        lower(trim(status)) as status_lower

    from amount_normalised

),

renamed as (

    select
        id as payment_id,
        subscription_id,
        user_id,
        -- An identifier, kept as written: D7 compares it exactly (it is not a D1 column).
        charge_id,
        amount_value as amount,
        -- D12
        cast(coalesce(discount_amount, 0) as decimal(10, 2)) as discount_amount,
        lower(trim(currency)) as currency,
        -- D2
        case
            when status_lower in ('succeeded', 'success', 'successful', 'paid') then 'succeeded'
            when status_lower in ('failed', 'failure', 'fail') then 'failed'
            when status_lower in ('refunded', 'refund') then 'refunded'
            else status_lower
        end as status,
        {{ to_utc('paid_at') }} as paid_at,
        {{ to_utc('created_at') }} as created_at,
        {{ to_utc('updated_at') }} as updated_at,
        _airbyte_extracted_at,
        case
            -- D5
            when amount_value is null then 'unparseable_amount'
            -- D6
            when amount_value < 0 then 'negative_amount'
        end as amount_rejection_reason

    from amount_parsed

)

select * from renamed
