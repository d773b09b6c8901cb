-- One row per accepted payment. Incremental on the sync time: each run re-reads the rows
-- synced within the lookback window, so late syncs and updates (refunds) replace earlier
-- versions by payment_id. A row is replaced only when its raw row was synced again: every
-- column here derives from that row (D7 and D8 only decide whether it is accepted).
{{
    config(
        materialized='incremental',
        unique_key='payment_id',
        incremental_strategy='delete+insert',
        tmp_relation_type='transient',
        on_schema_change='append_new_columns',
    )
}}

with

payments as (

    select * from {{ ref('stg_postgres_airbyte__payments') }}

    {% if is_incremental() %}
        where _airbyte_extracted_at >= {{ incremental_lower_bound('_airbyte_extracted_at', var('payments_lookback_hours')) }}
    {% endif %}

),

final as (

    select
        payment_id,
        subscription_id,
        user_id,
        charge_id,
        status,
        status = 'succeeded' as is_succeeded,
        amount,
        discount_amount,
        cast(
            case when status = 'succeeded' then amount - discount_amount else 0 end
            as decimal(14, 2)
        ) as net_revenue,
        currency,
        paid_at,
        cast(paid_at as date) as paid_date,
        cast({{ dbt.date_trunc('month', 'paid_at') }} as date) as paid_month,
        updated_at,
        _airbyte_extracted_at

    from payments

)

{% if is_incremental() %}
    {{ changed_rows_only('final', 'payment_id', compare=['_airbyte_extracted_at']) }}
{% else %}
    select * from final
{% endif %}
