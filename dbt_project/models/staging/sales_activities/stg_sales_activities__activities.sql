{{ staging_incremental(['activity_id']) }}
-- One row per sales-rep activity (activity_id). The note stays in raw.
with

activities as (
    {{ raw_latest('sales_activities', ['activity_id']) }}
),

final as (
    select
        activity_id,
        rep_id,
        customer_id,
        ts as activity_at,
        activity_type,
        outcome,
        duration_min,
        _loaded_at,
        _file_id
    from activities
)

select * from final
