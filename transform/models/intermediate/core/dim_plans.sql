with

plans as (

    select * from {{ ref('stg_postgres_airbyte__plans') }}

)

select
    plan_id,
    plan_name,
    plan_key,
    monthly_price,
    annual_price,
    currency,
    created_at,
    updated_at,
    _airbyte_extracted_at

from plans
