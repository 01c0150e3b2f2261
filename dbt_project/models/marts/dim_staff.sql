-- One row per staff member (sales rep or call-center agent) plus the -1 unknown member.
with

staff as (
    select * from {{ ref('stg_staff__staff') }}
),

known as (
    select
        {{ hash_key(['staff_id']) }} as staff_key,
        staff_id,
        role,
        team,
        region,
        hired_at
    from staff
),

unknown_member as (
    select
        cast(-1 as bigint) as staff_key,
        'unknown' as staff_id,
        'unknown' as role,
        'unknown' as team,
        'unknown' as region,
        cast(null as date) as hired_at
),

final as (
    select * from known
    union all
    select * from unknown_member
)

select * from final
