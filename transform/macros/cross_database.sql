{#- SQL that differs between DuckDB (local) and Snowflake (dev, prod). -#}

{#- A timestamptz as a UTC wall-clock timestamp without zone. -#}
{% macro to_utc(column) -%}
    {{ return(adapter.dispatch('to_utc', 'mdp')(column)) }}
{%- endmacro %}

{% macro default__to_utc(column) -%}
    cast(convert_timezone('UTC', {{ column }}) as timestamp_ntz)
{%- endmacro %}

{% macro duckdb__to_utc(column) -%}
    timezone('UTC', {{ column }})
{%- endmacro %}

{#- Today in UTC, whatever the session time zone. -#}
{% macro utc_today() -%}
    {{ return(adapter.dispatch('utc_today', 'mdp')()) }}
{%- endmacro %}

{% macro default__utc_today() -%}
    cast(convert_timezone('UTC', current_timestamp()) as date)
{%- endmacro %}

{% macro duckdb__utc_today() -%}
    cast(timezone('UTC', current_timestamp) as date)
{%- endmacro %}

{#- True when the whole string matches the pattern (patterns avoid backslashes on purpose). -#}
{% macro regex_full_match(expression, pattern) -%}
    {{ return(adapter.dispatch('regex_full_match', 'mdp')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regex_full_match(expression, pattern) -%}
    regexp_like({{ expression }}, '{{ pattern }}')
{%- endmacro %}

{% macro duckdb__regex_full_match(expression, pattern) -%}
    regexp_full_match({{ expression }}, '{{ pattern }}')
{%- endmacro %}

{#- Text to date with a strptime-style format; null when it does not parse. -#}
{% macro try_parse_date(expression, duckdb_format, snowflake_format) -%}
    {{ return(adapter.dispatch('try_parse_date', 'mdp')(expression, duckdb_format, snowflake_format)) }}
{%- endmacro %}

{% macro default__try_parse_date(expression, duckdb_format, snowflake_format) -%}
    try_to_date({{ expression }}, '{{ snowflake_format }}')
{%- endmacro %}

{% macro duckdb__try_parse_date(expression, duckdb_format, snowflake_format) -%}
    cast(try_strptime({{ expression }}, '{{ duckdb_format }}') as date)
{%- endmacro %}

{#- Epoch seconds (as text of digits) to a UTC date. -#}
{% macro epoch_seconds_to_date(expression) -%}
    {{ return(adapter.dispatch('epoch_seconds_to_date', 'mdp')(expression)) }}
{%- endmacro %}

{% macro default__epoch_seconds_to_date(expression) -%}
    cast(to_timestamp_ntz(cast({{ expression }} as bigint)) as date)
{%- endmacro %}

{% macro duckdb__epoch_seconds_to_date(expression) -%}
    cast(make_timestamp(cast({{ expression }} as bigint) * 1000000) as date)
{%- endmacro %}

{#- Hex SHA-256, used to keep a joinable fingerprint of personal data without the value. -#}
{% macro sha256_hex(expression) -%}
    {{ return(adapter.dispatch('sha256_hex', 'mdp')(expression)) }}
{%- endmacro %}

{% macro default__sha256_hex(expression) -%}
    sha2({{ expression }}, 256)
{%- endmacro %}

{% macro duckdb__sha256_hex(expression) -%}
    sha256({{ expression }})
{%- endmacro %}

{#- Integer division rounded half away from zero; exact on both engines. -#}
{% macro int_div_round(numerator, denominator) -%}
    {{ return(adapter.dispatch('int_div_round', 'mdp')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__int_div_round(numerator, denominator) -%}
    (sign({{ numerator }}) * floor((abs({{ numerator }}) * 2 + {{ denominator }}) / ({{ denominator }} * 2)))
{%- endmacro %}

{% macro duckdb__int_div_round(numerator, denominator) -%}
    (sign({{ numerator }}) * ((abs({{ numerator }}) * 2 + {{ denominator }}) // ({{ denominator }} * 2)))
{%- endmacro %}

{#- ISO day of week: Monday = 1 ... Sunday = 7. -#}
{% macro iso_day_of_week(expression) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'mdp')(expression)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(expression) -%}
    dayofweekiso({{ expression }})
{%- endmacro %}

{% macro duckdb__iso_day_of_week(expression) -%}
    isodow({{ expression }})
{%- endmacro %}

{#- The key D7 looks charge ids up by. DuckDB scans a 128-bit digest of the id several times
    faster than the text (two distinct ids share one with a probability of 2^-128 per pair);
    Snowflake compares the text itself. -#}
{% macro charge_key(expression) -%}
    {{ return(adapter.dispatch('charge_key', 'mdp')(expression)) }}
{%- endmacro %}

{% macro default__charge_key(expression) -%}
    {{ expression }}
{%- endmacro %}

{% macro duckdb__charge_key(expression) -%}
    md5_number({{ expression }})
{%- endmacro %}
