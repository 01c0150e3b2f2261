{#- Data tests of an incremental model check the rows its run wrote from new data, not the
    whole table again: the rows whose _loaded_at is past the model's high-water mark before
    the run. Every such model records that mark (pre-hook record_high_water(), set for all
    models in dbt_project.yml) in ops.dbt_incremental_runs; the tests read it back through
    get_where_subquery, the hook dbt's generic tests call on the model they test. A first build
    or a full refresh records the beginning of time, so its tests check every row. Singular
    tests (the reconciliations) always check whole tables, and so do the tests of the cubes,
    which are incremental by difference, not by load (macros/cubes/cube_difference.sql).

    The mark moves on only past rows that passed: at the end of each invocation
    (mark_incremental_runs, on-run-end) a model's row says whether the model ran and its data
    tests passed. After a run that failed, or built without its tests, the next run records the
    same mark again, so a rerun or retry tests the rejected rows again instead of letting them
    through. -#}

{% macro create_incremental_runs() -%}
    {%- do run_query('create schema if not exists ops') -%}
    {%- do run_query(
        'create table if not exists ops.dbt_incremental_runs ('
        ~ 'invocation_id ' ~ dbt.type_string() ~ ', model ' ~ dbt.type_string()
        ~ ', high_water ' ~ dbt.type_timestamp() ~ ', recorded_at ' ~ dbt.type_timestamp()
        ~ ', passed ' ~ dbt.type_boolean() ~ ')'
    ) -%}
    {#- a table made before `passed` existed gains it -#}
    {%- set runs = api.Relation.create(database=target.database, schema='ops', identifier='dbt_incremental_runs', type='table') -%}
    {%- if 'passed' not in (adapter.get_columns_in_relation(runs) | map(attribute='name') | list) -%}
        {%- do alter_relation_add_remove_columns(runs, [api.Column('passed', dbt.type_boolean())], none) -%}
    {%- endif -%}
    {%- do adapter.commit() -%}
    select 1  {#- the hook's own statement: the work is done above #}
{%- endmacro %}

{#- Is a model with this materialization and meta incremental by load, the kind whose tests
    check the rows past its mark? (The cubes are incremental by difference.) -#}
{% macro incremental_by_load(materialized, meta) -%}
    {{ return(materialized == 'incremental' and not (meta or {}).get('cube')) }}
{%- endmacro %}

{% macro record_high_water() -%}
    {%- if incremental_by_load(config.get('materialized'), config.get('meta')) -%}
    insert into ops.dbt_incremental_runs (invocation_id, model, high_water, recorded_at)
    select
        '{{ invocation_id }}',
        '{{ this.identifier }}',
        {% if is_incremental() -%}
        coalesce(({{ unverified_high_water(this.identifier) }}), ({{ loaded_high_water() }})),
        {%- else -%}
        {{ beginning_of_time() }},
        {%- endif %}
        {{ dbt.current_timestamp() }}
    {%- endif -%}
{%- endmacro %}

{#- The mark the model's previous run recorded when that run did not pass (see above), else
    NULL. -#}
{% macro unverified_high_water(model) -%}
    select case when coalesce(passed, false) then null else high_water end
    from ops.dbt_incremental_runs
    where model = '{{ model }}'
    order by recorded_at desc
    limit 1
{%- endmacro %}

{#- on-run-end: `passed` for each incremental model of this invocation: true when the model
    ran, its data tests ran in the invocation (unless it has none) and each of them that ran
    passed or warned. A selection may leave out a test with another parent (the cubes'
    reconciliations are built after scoring); a build without tests verifies nothing. -#}
{% macro mark_incremental_runs(results) -%}
    {%- set status = {} -%}
    {%- for result in results -%}
        {%- do status.update({result.node.unique_id: result.status | string}) -%}
    {%- endfor -%}
    {%- set passed = [] -%}
    {%- for result in results
        if result.node.resource_type == 'model'
        and incremental_by_load(result.node.config.materialized, result.node.config.meta) -%}
        {%- set check = namespace(ok=status[result.node.unique_id] == 'success', tests=0, ran=0) -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'test' and result.node.unique_id in node.depends_on.nodes -%}
            {%- set check.tests = check.tests + 1 -%}
            {%- if node.unique_id in status -%}
                {%- set check.ran = check.ran + 1 -%}
                {%- set check.ok = check.ok and status[node.unique_id] in ['pass', 'warn'] -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if check.ok and (check.ran > 0 or check.tests == 0) -%}
            {%- do passed.append("'" ~ result.node.alias ~ "'") -%}
        {%- endif -%}
    {%- endfor -%}
    update ops.dbt_incremental_runs
    set passed = {{ ('model in (' ~ (passed | join(', ')) ~ ')') if passed else 'false' }}
    where invocation_id = '{{ invocation_id }}'
{%- endmacro %}

{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set model_name = incremental_model_name(relation) -%}
    {%- if model_name -%}
        {%- set since = '_loaded_at > (' ~ recorded_high_water(model_name) ~ ')' -%}
        {%- set where = '(' ~ where ~ ') and ' ~ since if where else since -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{#- SQL: the mark record_high_water() recorded for `model` in this invocation (the beginning of
    time if none). Its data tests and post-hooks read it: the table's own mark has moved on by
    then. -#}
{% macro recorded_high_water(model) -%}
    coalesce((
        select max(high_water) from ops.dbt_incremental_runs
        where invocation_id = '{{ invocation_id }}' and model = '{{ model }}'
    ), {{ beginning_of_time() }})
{%- endmacro %}

{#- The name of the incremental model `relation` is, or none. -#}
{% macro incremental_model_name(relation) -%}
    {%- if execute and relation.identifier is defined -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and node.alias == relation.identifier
                and node.schema == relation.schema
                and incremental_by_load(node.config.materialized, node.config.meta) -%}
                {%- do return(node.alias) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do return(none) -%}
{%- endmacro %}
