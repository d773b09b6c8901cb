-- How current the marts are, as one row in the schema the reporting role reads: the newest
-- sync of the payments they include, and when the dbt run that built them started. It
-- depends on every other mart, so it is built only after they all were: a run where one of them
-- fails skips it, and the row keeps describing the last successful run.
-- depends_on: {{ ref('net_revenue_by_plan') }}
-- depends_on: {{ ref('mrr_by_plan') }}
-- depends_on: {{ ref('monthly_net_revenue_by_plan') }}
-- depends_on: {{ ref('saas_metrics_monthly') }}
-- depends_on: {{ ref('cohort_retention_monthly') }}
-- depends_on: {{ ref('revenue_and_mrr_by_billing_period') }}
with

payments as (

    select * from {{ ref('fct_payments') }}

),

loaded as (

    select
        -- The conversion is monotonic: converting the newest value, not every row, reads
        -- one column of fct_payments instead of converting millions of values.
        {{ to_utc('max(_airbyte_extracted_at)') }} as last_loaded_at,
        max(paid_at) as last_paid_at

    from payments

)

select
    cast(loaded.last_loaded_at as {{ dbt.type_timestamp() }}) as last_loaded_at,
    cast(loaded.last_paid_at as {{ dbt.type_timestamp() }}) as last_paid_at,
    -- Each Airflow task is its own dbt invocation: this one starts after every mart's.
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
        as marts_built_at,
    cast({{ dbt.date_trunc('month', 'loaded.last_loaded_at') }} as date) as current_month,
    cast(
        {{ dbt.dateadd('month', -1, dbt.date_trunc('month', 'loaded.last_loaded_at')) }} as date
    ) as last_complete_month

from loaded
