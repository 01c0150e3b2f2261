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
    - cube_dimension_list(dimensions, rolled, empty): the list behind those two columns.
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
