{#- Schemas are exactly staging / intermediate / marts / cubes / snapshots: BI tools and the
    mining code address them by these names, so the target schema is never prefixed. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
