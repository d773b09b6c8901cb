with

source as (

    select * from {{ source('postgres_airbyte', 'subscriptions') }}

),

canonical as (

    select
        *,
        lower(trim(status)) as status_lower,
        lower(trim(billing_period)) as billing_period_lower

    from source

),

renamed as (

    select
        id as subscription_id,
        user_id,
        -- D1: matched to plans.name case-insensitively downstream.
        lower(trim(plan)) as plan_key,
        -- D2
        case
            when status_lower in ('canceled', 'cancelled') then 'cancelled'
            else status_lower
        end as status,
        -- D3
        case
            when billing_period_lower in ('annual', 'yearly', 'annually') then 'annual'
            else billing_period_lower
        end as billing_period,
        lower(trim(payment_method)) as payment_method,
        {{ to_utc('started_at') }} as started_at,
        {{ to_utc('cancelled_at') }} as cancelled_at,
        {{ to_utc('created_at') }} as created_at,
        {{ to_utc('updated_at') }} as updated_at,
        _airbyte_extracted_at

    from canonical

)

select * from renamed
