{{ staging_incremental(['call_id']) }}
-- One row per call (call_id). The caller's phone only as a hash; the summary stays in raw.
with

calls as (
    {{ raw_latest('call_center', ['call_id']) }}
),

final as (
    select
        call_id,
        case
            when caller_phone is null or regexp_replace(caller_phone, '[^0-9]', '', 'g') = '' then null
            else md5(regexp_replace(caller_phone, '[^0-9]', '', 'g'))
        end as caller_phone_hash,
        customer_id,
        agent_id,
        started_at,
        ended_at,
        direction,
        reason,
        resolution,
        csat,
        _loaded_at,
        _file_id
    from calls
)

select * from final
