{{ staging_incremental(['response_id']) }}
-- One row per survey response (response_id). The comment stays in raw.
with

responses as (
    {{ raw_latest('surveys', ['response_id']) }}
),

final as (
    select
        response_id,
        customer_id,
        survey_type,
        responded_at,
        score,
        touchpoint,
        _loaded_at,
        _file_id
    from responses
)

select * from final
