{{ config(materialized='table', schema='cubes') }}
{#-
    Grain: one row per cube × dimension or measure, rendered from each cube's `meta.cube`
    (models/cubes/_cubes.yml) so the published file describes its own cubes.
-#}
{%- set rows = [] -%}
{%- if execute -%}
    {%- for node in graph.nodes.values() | sort(attribute='name') -%}
        {%- set cube = node.config.meta.get('cube') if node.resource_type == 'model' else none -%}
        {%- if cube -%}
            {%- for dim in cube.dimensions -%}
                {%- do rows.append([node.name, 'dimension', dim, loop.index, none, '']) -%}
            {%- endfor -%}
            {%- for measure in cube.measures -%}
                {%- do rows.append([node.name, 'measure', measure.name, loop.index, measure.additive, measure.get('description', '')]) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}

with

catalog (cube, kind, name, position, additive, description) as (
{%- if rows %}
    values
    {%- for row in rows %}
        (
            '{{ row[0] }}', '{{ row[1] }}', '{{ row[2] }}', {{ row[3] }},
            {{ 'null' if row[4] is none else ('true' if row[4] else 'false') }},
            '{{ row[5] | replace("'", "''") }}'
        ){% if not loop.last %},{% endif %}
    {%- endfor %}
{%- else %}
    select null, null, null, null, null, null where false
{%- endif %}
),

final as (
    select
        cast(cube as varchar) as cube,
        cast(kind as varchar) as kind,
        cast(name as varchar) as name,
        cast(position as integer) as position,
        cast(additive as boolean) as additive,
        cast(description as varchar) as description,
    from catalog
)

select * from final
