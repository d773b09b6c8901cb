{#- Month-over-month, per plan: mrr = previous mrr + new + expansion + reactivation
    - contraction - churned + plan changes. Each term is rounded on its own, hence the tolerance. -#}
{% test mrr_bridge_closes(model, tolerance=0.05) %}

with

bridged as (

    select
        month,
        plan_name,
        mrr,
        coalesce(lag(mrr) over (partition by plan_name order by month), 0)
        + new_mrr
        + expansion_mrr
        + reactivation_mrr
        - contraction_mrr
        - churned_mrr
        + plan_change_mrr as bridged_mrr

    from {{ model }}

)

select *
from bridged
where abs(mrr - bridged_mrr) > {{ tolerance }}

{% endtest %}
