{{ staging_incremental(['order_id']) }}
-- One row per order: its latest version (updated_at), then the latest delivery.
with

orders as (
    {{ raw_latest('online_orders', ['order_id'], ['r.updated_at desc']) }}
),

final as (
    select
        order_id,
        updated_at,
        customer_id,
        ordered_at,
        channel,
        device,
        status,
        coupon_code,
        payment.method as payment_method,
        payment.installment_months as installment_months,
        _loaded_at,
        _file_id
    from orders
)

select * from final
