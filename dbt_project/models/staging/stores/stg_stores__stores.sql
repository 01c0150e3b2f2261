-- One row per store: its row in the latest delivery that lists it.
with

stores as (
    {{ raw_latest('stores', ['store_id']) }}
),

final as (
    select
        store_id,
        store_name,
        region,
        city,
        format as store_format,
        opened_at
    from stores
)

select * from final
