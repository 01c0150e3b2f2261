-- The inputs whose newly loaded rows mark older days to rewrite (macros/incremental_window.sql).
{{ incremental_fact({
    'stg_pos_sales__lines': 'sold_at',
    'stg_online_orders__orders': 'ordered_at',
}, event_at='sold_at') }}
-- One row per sales line in any channel (store receipt line, online order line).
{%- set bounds = incremental_bounds() %}
with

sales_lines as (
    select * from {{ ref('int_sales_lines_unioned') }}
    {{- where_in_incremental_window('sold_at', bounds) }}
),

customer_versions as (
    select * from {{ ref('int_customers_versioned') }}
),

products as (
    select * from {{ ref('dim_product') }}
),

priced as (
    select
        sales_lines.*,
        products.product_key,
        products.unit_cost_krw as product_unit_cost_krw
    from sales_lines
    left join products
        on products.sku = sales_lines.sku
),

keyed as (
    select
        priced.*,
        customer_versions.customer_key
    from priced
    left join customer_versions
        on customer_versions.customer_id = priced.customer_id
        and priced.sold_at >= customer_versions.effective_from
        and priced.sold_at < customer_versions.valid_to
),

final as (
    select
        sales_line_id,
        order_id,
        line_no,
        sold_at,
        cast(sold_at as date) as date_day,
        {{ month_label('sold_at') }} as month,
        sales_channel,
        customer_id,
        coalesce(customer_key, -1) as customer_key,
        sku,
        coalesce(product_key, -1) as product_key,
        store_id,
        rep_id,
        qty,
        unit_price_krw,
        case when counts_as_sale then discount_krw else 0 end as discount_krw,
        case when counts_as_sale then qty * unit_price_krw else 0 end as gross_sales_krw,
        case when counts_as_sale then qty * unit_price_krw - discount_krw else 0 end as net_sales_krw,
        case when counts_as_sale then qty * coalesce(product_unit_cost_krw, 0) else 0 end as cost_krw,
        case
            when counts_as_sale then qty * unit_price_krw - discount_krw - qty * coalesce(product_unit_cost_krw, 0)
            else 0
        end as margin_krw,
        is_return,
        order_status,
        counts_as_sale,
        _loaded_at
    from keyed
)

{{ select_incremental_window('final', bounds) }}
