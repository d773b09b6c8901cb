{#- One row per day from `start_date` for `day_count` days, in plain SQL so it runs on every
    engine without a package: five cross-joined digit tables give up to 100,000 days. -#}
{% macro date_spine(start_date, day_count) -%}
    {%- set digits -%}
        (select 0 as d union all select 1 union all select 2 union all select 3 union all select 4
         union all select 5 union all select 6 union all select 7 union all select 8 union all select 9)
    {%- endset -%}
    select
        cast({{ dbt.dateadd('day', 'day_number', "cast('" ~ start_date ~ "' as date)") }} as date) as date_day
    from (
        select
            d1.d + d2.d * 10 + d3.d * 100 + d4.d * 1000 + d5.d * 10000 as day_number
        from {{ digits }} as d1
        cross join {{ digits }} as d2
        cross join {{ digits }} as d3
        cross join {{ digits }} as d4
        cross join {{ digits }} as d5
    ) as numbers
    where day_number < {{ day_count }}
{%- endmacro %}
