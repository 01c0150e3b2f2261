{#-
    Helpers shared by the OLAP cubes (models/cubes/). Owned by the cubes part of crmwh.

    A cube aggregates one `base` relation with GROUPING SETS, so every non-additive measure
    (count distinct, rates) is computed within its own grouping set. Where the grain makes one
    row one customer within a set (a customer × month relation in sets that keep month), a plain
    count gives the distinct customers at a fraction of count(distinct)'s cost (cube_financial,
    cube_customer_base).
    The macros below write the plumbing every cube repeats:

    - cube_grouping_sets(sets): the `group by grouping sets (...)` clause;
    - cube_grouping_flags(dimensions): one `_rolled_<dim>` flag per dimension (1 = rolled up);
    - cube_dimension_columns(dimensions): the published dimension columns ('ALL' when rolled
      up), then `grouping_level` (the rolled-up dimensions, comma separated in cube order,
      'none' at the finest level: MARTS.md's contract), `kept_dimensions` (its complement: the
      kept dimensions in cube order, 'ALL' for the grand total; `crmwh cube` keys on it) and
      `grouping_id` (bitmask, first dimension = most significant bit, bit set = rolled up;
      equals DuckDB's grouping(d1, ..., dn));
    - cube_dimension_list(dimensions, rolled, empty): the list behind those two columns;
    - cube_per_set(...) and cube_per_set_matches(...): measures computed by one plain GROUP BY
      per set, for the cube's cells to take by grouping_id and dimensions.
-#}

{% macro cube_grouping_sets(sets) -%}
    grouping sets (
        {%- for set in sets %}
        ({{ set | join(', ') }}){% if not loop.last %},{% endif %}
        {%- endfor %}
    )
{%- endmacro %}

{% macro cube_grouping_flags(dimensions) -%}
    {%- for dim in dimensions %}
        grouping({{ dim }}) as _rolled_{{ dim }},
    {%- endfor %}
        grouping({{ dimensions | join(', ') }}) as grouping_id,
{%- endmacro %}

{% macro cube_dimension_columns(dimensions) -%}
    {%- for dim in dimensions %}
        case when _rolled_{{ dim }} = 1 then 'ALL' else {{ dim }} end as {{ dim }},
    {%- endfor %}
        {{ cube_dimension_list(dimensions, 1, 'none') }} as grouping_level,
        {{ cube_dimension_list(dimensions, 0, 'ALL') }} as kept_dimensions,
        grouping_id,
{%- endmacro %}

{#- The dimensions whose _rolled_ flag equals `rolled`, comma separated in cube order, or `empty`. -#}
{% macro cube_dimension_list(dimensions, rolled, empty) -%}
    coalesce(
            nullif(
                concat_ws(
                    ','
                    {%- for dim in dimensions %},
                    case when _rolled_{{ dim }} = {{ rolled }} then '{{ dim }}' end
                    {%- endfor %}
                ),
                ''
            ),
            '{{ empty }}'
        )
{%- endmacro %}

{#- A dimension value as published: VARCHAR, a real NULL becomes 'unknown'. -#}
{% macro cube_dim(expression, name) -%}
    coalesce(cast({{ expression }} as varchar), 'unknown') as {{ name }}
{%- endmacro %}

{#- A set's grouping_id: the value cube_grouping_flags' grouping(d1, ..., dn) takes on its rows. -#}
{% macro cube_set_id(dimensions, set) -%}
    {%- set ns = namespace(id=0) -%}
    {%- for dim in dimensions -%}
    {%- if dim not in set %}{% set ns.id = ns.id + 2 ** loop.revindex0 %}{% endif -%}
    {%- endfor -%}
    {{ ns.id }}
{%- endmacro %}

{#- One plain GROUP BY per set of `sets` over `relation`, tagged with the set's grouping_id:
    for a cube's count(distinct) measures, which DuckDB computes far more slowly under GROUPING
    SETS (at L, cube_contacts' full build took 55-57 s with its distinct customers there and
    35-37 s with them here; its sums alone take 2 s under GROUPING SETS). `measures`: {name:
    aggregate expression}. `columns`: the dimensions `relation` holds (by default all of
    `dimensions`), NULL where the set rolls them up. -#}
{% macro cube_per_set(relation, dimensions, sets, measures, columns=none) -%}
    {%- set columns = columns if columns is not none else dimensions -%}
    {%- for set in sets %}
    select
        {%- for dim in columns %}
        {{ dim if dim in set else 'null' }} as {{ dim }},
        {%- endfor %}
        {{ cube_set_id(dimensions, set) }} as grouping_id,
        {%- for name, expression in measures.items() %}
        {{ expression }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    {%- if set %}
    group by {{ set | join(', ') }}
    {%- endif %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- The join condition of a cube_per_set relation `per_set` to the cells `cells`. -#}
{% macro cube_per_set_matches(per_set, cells, columns) -%}
    {{ per_set }}.grouping_id = {{ cells }}.grouping_id
    {%- for dim in columns %}
        and {{ per_set }}.{{ dim }} is not distinct from {{ cells }}.{{ dim }}
    {%- endfor %}
{%- endmacro %}
