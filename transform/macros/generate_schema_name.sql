{#- Schemas are named exactly staging / intermediate / finance in every target: no target prefix. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

{#- dbt lists the schemas that exist before a run and creates the ones missing, naming the
    database quoted (`"analytics"`). dbt-duckdb 1.11 compares that name, quotes included, with
    the catalog's, so it found none and created all three schemas again on every run: about
    50 ms of each dbt invocation, a daily run's and each Airflow task's. The same query, with
    the quotes taken off the name. -#}
{% macro duckdb__list_schemas(database) -%}
    {% set sql %}
        select schema_name
        from system.information_schema.schemata
        {% if database is not none %}
            where lower(catalog_name) = '{{ database | replace('"', '') | lower }}'
        {% endif %}
    {% endset %}
    {{ return(run_query(sql)) }}
{%- endmacro %}
