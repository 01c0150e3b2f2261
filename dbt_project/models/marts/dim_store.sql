-- One row per store plus the -1 unknown member (online sales carry store_key -1).
with

stores as (
    select * from {{ ref('stg_stores__stores') }}
),

known as (
    select
        {{ hash_key(['store_id']) }} as store_key,
        store_id,
        store_name,
        region,
        city,
        store_format,
        opened_at
    from stores
),

unknown_member as (
    select
        cast(-1 as bigint) as store_key,
        'unknown' as store_id,
        'unknown' as store_name,
        'unknown' as region,
        'unknown' as city,
        'unknown' as store_format,
        cast(null as date) as opened_at
),

final as (
    select * from known
    union all
    select * from unknown_member
)

select * from final
