{#- Views on DuckDB: a view whose SQL has not changed since it was created is left as it is.
    Staging views are otherwise dropped and re-created on every daily run for nothing. The
    view's comment records a hash of the SQL it was created from (DuckDB keeps the view's SQL
    only in a rewritten form, so the text itself cannot be compared). `--full-refresh`
    re-creates every view. Other adapters keep dbt's own view materialization. -#}
{% materialization view, adapter='duckdb' %}

    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set grant_config = config.get('grants') -%}
    {%- set definition = 'mdp-view-sql-md5:' ~ local_md5(sql) -%}

    {%- set unchanged = false -%}
    {%- if existing_relation is not none and existing_relation.is_view and not should_full_refresh() -%}
        {%- set lookup -%}
            select comment
            from duckdb_views()
            where
                database_name = '{{ target_relation.database }}'
                and schema_name = '{{ target_relation.schema }}'
                and view_name = '{{ target_relation.identifier }}'
        {%- endset -%}
        {%- set comments = run_query(lookup).columns[0].values() -%}
        {%- set unchanged = comments | length == 1 and comments[0] == definition -%}
    {%- endif -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if unchanged %}
        {% call statement('main') -%}
            select 1 as view_is_current
        {%- endcall %}
    {%- else %}
        {%- if existing_relation is not none and not existing_relation.is_view %}
            {{ adapter.drop_relation(existing_relation) }}
        {%- endif %}
        {% call statement('main') -%}
            {{ get_create_view_as_sql(target_relation, sql) | replace('create view', 'create or replace view', 1) }}
        {%- endcall %}
        {% call statement('record_definition') -%}
            comment on view {{ target_relation }} is '{{ definition }}'
        {%- endcall %}
    {%- endif %}

    {%- set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
    {%- do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
    {%- do persist_docs(target_relation, model) %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}
