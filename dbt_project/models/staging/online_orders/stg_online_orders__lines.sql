{{ staging_incremental(['order_id']) }}
-- One row per line of an order's latest version (order_id, line_no).
with

orders as (
    select * from {{ ref('stg_online_orders__orders') }}
),

lines as (
    {{ raw_latest('online_order_lines', ['order_id', 'updated_at', 'line_no'], incremental_key=['order_id'], incremental_source='online_orders') }}
),

final as (
    select
        lines.order_id,
        lines.line_no,
        lines.sku,
        lines.qty,
        lines.unit_price as unit_price_krw,
        coalesce(lines.discount_amt, 0) as discount_krw,
        orders._loaded_at,
        lines._file_id
    from lines
    inner join orders
        on orders.order_id = lines.order_id
        and orders.updated_at = lines.updated_at
)

select * from final
