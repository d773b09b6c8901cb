-- The calendar: one row per day from var('date_spine_start') to a year past today, independent
-- of when data happened to load.
-- A view: a few thousand rows computed in milliseconds whenever it is read, always up to today,
-- and nothing to rebuild on a daily run.
{{ config(materialized='view') }}
{%- set start_date = var('date_spine_start') %}
{%- set day_count -%}
    {{ dbt.datediff("cast('" ~ start_date ~ "' as date)", utc_today(), 'day') }} + {{ var('date_spine_days_ahead') }}
{%- endset %}

with

days as (

    {{ date_spine(start_date, day_count) }}

),

described as (

    select
        date_day,
        cast(extract(year from date_day) as integer) as year_number,
        cast(extract(quarter from date_day) as integer) as quarter_number,
        cast(extract(month from date_day) as integer) as month_number,
        cast(extract(day from date_day) as integer) as day_of_month,
        cast({{ iso_day_of_week('date_day') }} as integer) as iso_day_of_week,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
        cast({{ dbt.last_day('date_day', 'month') }} as date) as month_end_date,
        cast({{ dbt.date_trunc('quarter', 'date_day') }} as date) as quarter_start_date,
        cast({{ dbt.date_trunc('year', 'date_day') }} as date) as year_start_date,
        {{ iso_day_of_week('date_day') }} in (6, 7) as is_weekend,
        date_day = cast({{ dbt.last_day('date_day', 'month') }} as date) as is_month_end

    from days

)

select * from described
