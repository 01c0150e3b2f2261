{{ config(materialized='table', schema='cubes') }}
{#-
    Grain: one row per grouping set × combination of kept dimension values.
    orders counts each order with positive net sales once per cell, without count(distinct):
    an order lies in one month, channel and customer version (fct_sales' test same_within),
    so its first positive line (is_order_sale) stands for it in every set without category;
    its lines can span categories, so sets with category count its first positive line in
    each category (is_order_category_sale).
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

sales as (
    select * from {{ ref('fct_sales') }}
),

customers as (
    select * from {{ ref('dim_customer') }}
),

products as (
    select * from {{ ref('dim_product') }}
),

base as (
    select
        {{ cube_dim('sales.month', 'month') }},
        {{ cube_dim('sales.sales_channel', 'sales_channel') }},
        {{ cube_dim('products.category', 'category') }},
        {{ cube_dim('customers.region', 'region') }},
        {{ cube_dim('customers.pyramid_tier', 'pyramid_tier') }},
        sales.sales_line_id,
        sales.order_id,
        sales.customer_id,
        sales.qty,
        sales.gross_sales_krw,
        sales.discount_krw,
        sales.net_sales_krw,
        sales.cost_krw,
        sales.margin_krw,
    from sales
    left join customers on sales.customer_key = customers.customer_key
    left join products on sales.product_key = products.product_key
),

flagged as (
    select
        *,
        case when net_sales_krw > 0 and row_number() over (
            partition by order_id, net_sales_krw > 0 order by sales_line_id
        ) = 1 then 1 else 0 end as is_order_sale,
        case when net_sales_krw > 0 and row_number() over (
            partition by order_id, category, net_sales_krw > 0 order by sales_line_id
        ) = 1 then 1 else 0 end as is_order_category_sale,
    from base
),

aggregated as (
    select
        {{ dimensions | join(', ') }},
        {{ cube_grouping_flags(dimensions) }}
        sum(net_sales_krw) as net_sales_krw,
        sum(gross_sales_krw) as gross_sales_krw,
        sum(discount_krw) as discount_krw,
        sum(cost_krw) as cost_krw,
        sum(margin_krw) as margin_krw,
        sum(qty) as units,
        count(*) as sales_lines,
        sum(is_order_sale) as order_sales,
        sum(is_order_category_sale) as order_category_sales,
        count(distinct case when net_sales_krw > 0 then customer_id end) as buyers,
    from flagged
    group by {{ cube_grouping_sets(grouping_sets) }}
),

final as (
    select
        {{ cube_dimension_columns(dimensions) }}
        cast(coalesce(net_sales_krw, 0) as bigint) as net_sales_krw,
        cast(coalesce(gross_sales_krw, 0) as bigint) as gross_sales_krw,
        cast(coalesce(discount_krw, 0) as bigint) as discount_krw,
        cast(coalesce(cost_krw, 0) as bigint) as cost_krw,
        cast(coalesce(margin_krw, 0) as bigint) as margin_krw,
        cast(coalesce(units, 0) as bigint) as units,
        sales_lines,
        cast(case when _rolled_category = 1 then order_sales else order_category_sales end as bigint) as orders,
        buyers,
    from aggregated
)

select * from final
