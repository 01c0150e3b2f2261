-- One row per sales line in any channel: POS receipt lines (returns are negative lines) and
-- the lines of each online order's latest version, with whether the line counts as a sale.
-- A POS order is <store>-<receipt>: receipt numbers restart in every store.
with

pos_lines as (
    select * from {{ ref('stg_pos_sales__lines') }}
),

orders as (
    select * from {{ ref('stg_online_orders__orders') }}
),

order_lines as (
    select * from {{ ref('stg_online_orders__lines') }}
),

store_sales as (
    select
        {{ dbt.concat(["'pos-'", 'store_id', "'-'", 'receipt_no', "'-'", dbt.cast('line_no', api.Column.translate_type('string'))]) }} as sales_line_id,
        {{ dbt.concat(['store_id', "'-'", 'receipt_no']) }} as order_id,
        line_no,
        sold_at,
        'store' as sales_channel,
        customer_id,
        sku,
        store_id,
        rep_id,
        qty,
        unit_price_krw,
        discount_krw,
        qty < 0 as is_return,
        case when qty < 0 then 'returned' else 'completed' end as order_status,
        true as counts_as_sale,
        _loaded_at
    from pos_lines
),

online_sales as (
    select
        {{ dbt.concat(["'online-'", 'order_lines.order_id', "'-'", dbt.cast('order_lines.line_no', api.Column.translate_type('string'))]) }} as sales_line_id,
        order_lines.order_id,
        order_lines.line_no,
        orders.ordered_at as sold_at,
        orders.channel as sales_channel,
        orders.customer_id,
        order_lines.sku,
        cast(null as {{ dbt.type_string() }}) as store_id,
        cast(null as {{ dbt.type_string() }}) as rep_id,
        order_lines.qty,
        order_lines.unit_price_krw,
        order_lines.discount_krw,
        orders.status = 'returned' as is_return,
        orders.status as order_status,
        orders.status = 'paid' as counts_as_sale,
        order_lines._loaded_at
    from order_lines
    inner join orders
        on orders.order_id = order_lines.order_id
),

final as (
    select * from store_sales
    union all
    select * from online_sales
)

select * from final
