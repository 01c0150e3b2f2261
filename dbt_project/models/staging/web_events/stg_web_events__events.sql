{{ staging_incremental(['event_id']) }}
-- One row per clickstream event (event_id).
with

events as (
    {{ raw_latest('web_events', ['event_id']) }}
),

final as (
    select
        event_id,
        ts as event_at,
        anonymous_id,
        customer_id,
        session_id,
        channel,
        event_type,
        page,
        referrer_domain,
        utm_source,
        utm_medium,
        utm_campaign,
        device,
        _loaded_at,
        _file_id
    from events
)

select * from final
