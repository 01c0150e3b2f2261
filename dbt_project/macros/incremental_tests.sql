{#- Data tests of an incremental model check the rows its run wrote from new data, not the
    whole table again: the rows whose _loaded_at is past the model's high-water mark before
    the run. Every such model records that mark (pre-hook record_high_water(), set for all
    models in dbt_project.yml) in ops.dbt_incremental_runs; the tests read it back through
    get_where_subquery, the hook dbt's generic tests call on the model they test. A first build
    or a full refresh records the beginning of time, so its tests check every row. Singular
    tests (the reconciliations) always check whole tables, and so do the tests of the cubes,
    which are incremental by difference, not by load (macros/cubes/cube_difference.sql). -#}

{% macro create_incremental_runs() -%}
    create schema if not exists ops;
    create table if not exists ops.dbt_incremental_runs (
        invocation_id {{ dbt.type_string() }},
        model {{ dbt.type_string() }},
        high_water {{ dbt.type_timestamp() }},
        recorded_at {{ dbt.type_timestamp() }}
    )
{%- endmacro %}

{% macro record_high_water() -%}
    {%- if config.get('materialized') == 'incremental' and not config.get('meta', {}).get('cube') -%}
    insert into ops.dbt_incremental_runs
    select
        '{{ invocation_id }}',
        '{{ this.identifier }}',
        {% if is_incremental() %}({{ loaded_high_water() }}){% else %}{{ beginning_of_time() }}{% endif %},
        {{ dbt.current_timestamp() }}
    {%- endif -%}
{%- endmacro %}

{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set model_name = incremental_model_name(relation) -%}
    {%- if model_name -%}
        {%- set since -%}
            _loaded_at > coalesce((
                select max(high_water) from ops.dbt_incremental_runs
                where invocation_id = '{{ invocation_id }}' and model = '{{ model_name }}'
            ), {{ beginning_of_time() }})
        {%- endset -%}
        {%- set where = '(' ~ where ~ ') and ' ~ since if where else since -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{#- The name of the incremental model `relation` is, or none. -#}
{% macro incremental_model_name(relation) -%}
    {%- if execute and relation.identifier is defined -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and node.config.materialized == 'incremental'
                and not node.config.meta.get('cube')
                and node.alias == relation.identifier and node.schema == relation.schema -%}
                {%- do return(node.alias) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do return(none) -%}
{%- endmacro %}
