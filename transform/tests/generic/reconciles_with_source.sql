{#- Nothing is lost: rows in raw = rows in the staging model + rows quarantined from that table. -#}
{% test reconciles_with_source(model, source_table) %}

with

raw_rows as (

    select count(*) as row_count from {{ source('postgres_airbyte', source_table) }}

),

staged_rows as (

    select count(*) as row_count from {{ model }}

),

quarantined_rows as (

    select count(*) as row_count
    from {{ ref('stg_postgres_airbyte__quarantined_rows') }}
    where source_table = '{{ source_table }}'

)

select
    raw_rows.row_count as raw_count,
    staged_rows.row_count as staged_count,
    quarantined_rows.row_count as quarantined_count
from raw_rows
cross join staged_rows
cross join quarantined_rows
where raw_rows.row_count <> staged_rows.row_count + quarantined_rows.row_count

{% endtest %}
