{#- The CTEs the net revenue marts start from: payments, each subscription's plan now, and the
    plans (contract: a payment belongs to "the plan of its subscription at load time"). -#}
{% macro payments_with_plans() -%}
payments as (

    select * from {{ ref('fct_payments') }}

),

subscriptions as (

    select subscription_id, plan_id from {{ ref('dim_subscriptions') }}

),

plans as (

    select * from {{ ref('dim_plans') }}

)
{%- endmacro %}
