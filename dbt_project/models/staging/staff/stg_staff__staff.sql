-- One row per staff member (sales rep or agent): the latest delivery wins. Names stay in raw.
with

staff as (
    {{ raw_latest('staff', ['staff_id']) }}
),

final as (
    select
        staff_id,
        role,
        team,
        region,
        hired_at
    from staff
)

select * from final
