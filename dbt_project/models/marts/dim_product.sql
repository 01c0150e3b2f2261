-- One row per product (sku) plus the -1 unknown member.
with

products as (
    select * from {{ ref('stg_products__products') }}
),

known as (
    select
        {{ hash_key(['sku']) }} as product_key,
        sku,
        product_name,
        category,
        subcategory,
        brand,
        unit_cost_krw,
        list_price_krw
    from products
),

unknown_member as (
    select
        cast(-1 as bigint) as product_key,
        'unknown' as sku,
        'unknown' as product_name,
        'unknown' as category,
        'unknown' as subcategory,
        'unknown' as brand,
        cast(null as bigint) as unit_cost_krw,
        cast(null as bigint) as list_price_krw
),

final as (
    select * from known
    union all
    select * from unknown_member
)

select * from final
