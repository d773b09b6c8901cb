{#- The lower bound of an incremental run: the newest `column` already in `this`, minus the
    lookback. On DuckDB it is read first and inlined as a literal, so the filter reaches the
    raw table scan; Snowflake prunes with the scalar subquery as it is. -#}
{% macro incremental_lower_bound(column, lookback_hours) -%}
    {{ return(adapter.dispatch('incremental_lower_bound', 'mdp')(column, lookback_hours)) }}
{%- endmacro %}

{% macro default__incremental_lower_bound(column, lookback_hours) -%}
    (select {{ dbt.dateadd('hour', -1 * lookback_hours, 'max(' ~ column ~ ')') }} from {{ this }})
{%- endmacro %}

{% macro duckdb__incremental_lower_bound(column, lookback_hours) -%}
    {%- if execute -%}
        {%- set sql -%}
            select cast(max({{ column }}) - interval ({{ lookback_hours }}) hour as varchar) from {{ this }}
        {%- endset -%}
        {%- set value = run_query(sql).columns[0].values()[0] -%}
        {%- if value is none -%}
            cast('1970-01-01 00:00:00+00' as timestamptz)
        {%- else -%}
            cast('{{ value }}' as timestamptz)
        {%- endif -%}
    {%- else -%}
        cast('1970-01-01 00:00:00+00' as timestamptz)
    {%- endif -%}
{%- endmacro %}

{#- First month an incremental MRR run recomputes: the month before the newest one already
    built, so month-end states that changed since (late syncs, deletions) are redone. -#}
{% macro mrr_recompute_from(column='month') -%}
    {%- if execute -%}
        {%- set sql -%}
            select cast(cast({{ dbt.dateadd('month', -1, 'max(' ~ column ~ ')') }} as date) as varchar) from {{ this }}
        {%- endset -%}
        {%- set value = run_query(sql).columns[0].values()[0] -%}
        {%- if value is not none -%}
            cast('{{ value }}' as date)
        {%- else -%}
            cast('1970-01-01' as date)
        {%- endif -%}
    {%- else -%}
        cast('1970-01-01' as date)
    {%- endif -%}
{%- endmacro %}
