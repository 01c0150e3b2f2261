{{ staging_incremental(['entry_id']) }}
-- One row per points-ledger entry (entry_id), signed.
with

entries as (
    {{ raw_latest('loyalty_points', ['entry_id']) }}
),

final as (
    select
        entry_id,
        customer_id,
        ts as entry_at,
        points,
        reason,
        order_ref,
        _loaded_at,
        _file_id
    from entries
)

select * from final
