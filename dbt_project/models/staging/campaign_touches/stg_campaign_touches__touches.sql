{{ staging_incremental(['touch_id']) }}
-- One row per targeted customer and campaign (touch_id).
with

touches as (
    {{ raw_latest('campaign_touches', ['touch_id']) }}
),

final as (
    select
        touch_id,
        campaign_id,
        customer_id,
        assigned_group,
        sent_at,
        delivered = 'Y' as delivered,
        opened_at,
        clicked_at,
        unsubscribed_at,
        coalesce(cost_krw, 0) as cost_krw,
        _loaded_at,
        _file_id
    from touches
)

select * from final
