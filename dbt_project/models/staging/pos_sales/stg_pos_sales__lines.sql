{{ staging_incremental(['store_id', 'receipt_no', 'line_no']) }}
-- One row per receipt line (store_id, receipt_no, line_no); duplicates delivered twice collapse.
with

lines as (
    {{ raw_latest('pos_sales', ['store_id', 'receipt_no', 'line_no']) }}
),

final as (
    select
        store_id,
        receipt_no,
        line_no,
        sold_at,
        customer_id,
        sku,
        qty,
        unit_price as unit_price_krw,
        coalesce(discount_amt, 0) as discount_krw,
        pay_method,
        rep_id,
        _loaded_at,
        _file_id
    from lines
)

select * from final
