with

source as (

    select * from {{ source('postgres_airbyte', 'plans') }}

),

renamed as (

    select
        id as plan_id,
        trim(name) as plan_name,
        lower(trim(name)) as plan_key,
        cast(monthly_price as decimal(10, 2)) as monthly_price,
        cast(annual_price as decimal(10, 2)) as annual_price,
        lower(trim(currency)) as currency,
        {{ to_utc('created_at') }} as created_at,
        {{ to_utc('updated_at') }} as updated_at,
        _airbyte_extracted_at

    from source

)

select * from renamed
