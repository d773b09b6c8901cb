-- Customers. The email leaves staging only as a SHA-256 fingerprint and its domain.
with

users as (

    select * from {{ ref('stg_postgres_airbyte__users') }}

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
    updated_at

from users
