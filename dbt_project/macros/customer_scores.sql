{#- The mining outputs as seen by dbt. mining.customer_scores is written by the scoring run
    (mining/), after the first build; until it exists every customer is 'unscored'.
    Returns a select of (customer_id, pyramid_tier, relationship_stage): the scores when the
    table exists, else an empty set of the same shape, so callers coalesce to 'unscored'.
    Cubes and the tier/stage dimensions use the same macro. -#}
{% macro customer_scores_relation() -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.get_relation(database=target.database, schema='mining', identifier='customer_scores')) }}
{%- endmacro %}

{% macro customer_scores_select() -%}
    {%- set scores = customer_scores_relation() -%}
    {%- if scores is not none -%}
    select
        customer_id,
        cast(pyramid_tier as {{ dbt.type_string() }}) as pyramid_tier,
        cast(relationship_stage as {{ dbt.type_string() }}) as relationship_stage
    from {{ scores }}
    {%- else -%}
    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as pyramid_tier,
        cast(null as {{ dbt.type_string() }}) as relationship_stage
    where 1 = 0
    {%- endif -%}
{%- endmacro %}
