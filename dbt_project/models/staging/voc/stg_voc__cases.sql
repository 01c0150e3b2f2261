{{ staging_incremental(['voc_id']) }}
-- One row per VOC case (voc_id): its latest version (updated_at). The text stays in raw.
with

cases as (
    {{ raw_latest('voc', ['voc_id'], ['r.updated_at desc']) }}
),

final as (
    select
        voc_id,
        updated_at,
        customer_id,
        received_at,
        channel,
        voc_type,
        category,
        severity,
        status,
        resolved_at,
        coalesce(compensation_krw, 0) as compensation_krw,
        _loaded_at,
        _file_id
    from cases
)

select * from final
