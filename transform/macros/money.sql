{#- Money arithmetic: exact decimals throughout, one half-away-from-zero rounding at the end. -#}

{#- A decimal money sum divided by a positive integer, as numeric(14,2).
    Works in whole cents so neither engine falls back to floating point. -#}
{% macro money_divide(money_expression, divisor) -%}
    cast(
        cast({{ int_div_round('cast((' ~ money_expression ~ ') * 100 as bigint)', divisor) }} as decimal(18, 0))
        * cast(0.01 as decimal(3, 2))
        as decimal(14, 2)
    )
{%- endmacro %}

{#- A ratio of two sums, as a decimal rate with 4 places; null when the denominator is 0. -#}
{% macro safe_ratio(numerator, denominator) -%}
    case
        when ({{ denominator }}) = 0 then null
        else cast(cast({{ numerator }} as double) / cast({{ denominator }} as double) as decimal(12, 4))
    end
{%- endmacro %}
