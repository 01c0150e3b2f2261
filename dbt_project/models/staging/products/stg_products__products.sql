-- One row per sku: its row in the latest catalogue delivery that lists it.
with

products as (
    {{ raw_latest('products', ['sku']) }}
),

final as (
    select
        sku,
        product_name,
        category,
        subcategory,
        brand,
        unit_cost as unit_cost_krw,
        list_price as list_price_krw,
        updated_at
    from products
)

select * from final
