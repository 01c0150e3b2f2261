{{ cube_by_difference_config('cube_sales_spec') }}
{#-
    Grain: one row per grouping set × combination of kept dimension values. Kept by difference
    (macros/cubes/cube_difference.sql) over its rows (cube_sales_spec). orders counts each
    order with positive net sales once per cell, without count(distinct): in sets without
    category its first positive line, in sets with category its first positive line in each
    category. The sums roll up by GROUPING SETS, the distinct buyers by one GROUP BY per set
    (cube_signed_per_set).
-#}
{%- set dimensions = ['month', 'sales_channel', 'category', 'region', 'pyramid_tier'] -%}
{%- set grouping_sets = [
    [],
    ['month'], ['sales_channel'], ['category'], ['region'], ['pyramid_tier'],
    ['month', 'sales_channel'], ['month', 'category'], ['month', 'region'], ['month', 'pyramid_tier'],
    ['sales_channel', 'category'], ['sales_channel', 'region'], ['sales_channel', 'pyramid_tier'],
    ['category', 'region'], ['category', 'pyramid_tier'], ['region', 'pyramid_tier'],
    ['month', 'sales_channel', 'category'], ['month', 'sales_channel', 'pyramid_tier'],
    ['month', 'region', 'pyramid_tier'],
    dimensions,
] -%}

with

{{ cube_signed_rows_ctes() }}

sums as (
    select
        {{ dimensions | join(', ') }},
        {{ cube_grouping_flags(dimensions) }}
        sum(sign * net_sales_krw) as net_sales_krw,
        sum(sign * gross_sales_krw) as gross_sales_krw,
        sum(sign * discount_krw) as discount_krw,
        sum(sign * cost_krw) as cost_krw,
        sum(sign * margin_krw) as margin_krw,
        sum(sign * units) as units,
        sum(sign * sales_lines) as sales_lines,
        sum(sign * order_sales) as order_sales,
        sum(sign * order_category_sales) as order_category_sales,
    from signed_rows
    group by {{ cube_grouping_sets(grouping_sets) }}
),

buyers_per_set as (
    {{ cube_signed_per_set(
        dimensions, grouping_sets, {'buyers': cube_distinct('case when is_buyer = 1 then customer_id end')},
    ) }}
),

aggregated as (
    select
        sums.*,
        buyers_per_set.buyers,
    from sums
    left join buyers_per_set
        on {{ cube_per_set_matches('buyers_per_set', 'sums', dimensions) }}
),

cells as (
    select
        {{ cube_dimension_columns(dimensions) }}
        net_sales_krw,
        gross_sales_krw,
        discount_krw,
        cost_krw,
        margin_krw,
        units,
        sales_lines,
        case when _rolled_category = 1 then order_sales else order_category_sales end as orders,
        buyers,
    from aggregated
),

merged as (
    {{ cube_merged(
        'cells',
        cube_cell_columns(dimensions),
        ['net_sales_krw', 'gross_sales_krw', 'discount_krw', 'cost_krw', 'margin_krw', 'units',
         'sales_lines', 'orders', 'buyers'],
        'sales_lines',
    ) }}
),

final as (
    select
        {%- for column in cube_cell_columns(dimensions) %}
        {{ column }},
        {%- endfor %}
        cast(coalesce(net_sales_krw, 0) as bigint) as net_sales_krw,
        cast(coalesce(gross_sales_krw, 0) as bigint) as gross_sales_krw,
        cast(coalesce(discount_krw, 0) as bigint) as discount_krw,
        cast(coalesce(cost_krw, 0) as bigint) as cost_krw,
        cast(coalesce(margin_krw, 0) as bigint) as margin_krw,
        cast(coalesce(units, 0) as bigint) as units,
        cast(sales_lines as bigint) as sales_lines,
        cast(orders as bigint) as orders,
        cast(buyers as bigint) as buyers,
    from merged
)

select * from final
