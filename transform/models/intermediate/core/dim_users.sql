-- Customers. The email leaves staging only as a SHA-256 fingerprint and its domain.
-- Incremental on the sync time: users change rarely but are many.
{{
    config(
        materialized='incremental',
        unique_key='user_id',
        incremental_strategy='delete+insert',
        tmp_relation_type='transient',
    )
}}

with

users as (

    select * from {{ ref('stg_postgres_airbyte__users') }}

    {% if is_incremental() %}
        where _airbyte_extracted_at >= {{ incremental_lower_bound('_airbyte_extracted_at', var('payments_lookback_hours')) }}
    {% endif %}

)

select
    user_id,
    user_uid,
    {{ sha256_hex('email') }} as email_sha256,
    {{ dbt.split_part('email', "'@'", -1) }} as email_domain,
    is_email_valid,
    date_of_birth,
    country,
    is_deleted,
    deleted_at,
    created_at,
    updated_at,
    _airbyte_extracted_at

from users
