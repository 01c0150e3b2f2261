-- One row per campaign plus the -1 unknown member.
with

campaigns as (
    select * from {{ ref('stg_campaigns__campaigns') }}
),

known as (
    select
        {{ hash_key(['campaign_id']) }} as campaign_key,
        campaign_id,
        campaign_name,
        campaign_channel,
        objective,
        start_date,
        end_date,
        budget_krw,
        unit_cost_krw,
        control_share
    from campaigns
),

unknown_member as (
    select
        cast(-1 as bigint) as campaign_key,
        'unknown' as campaign_id,
        'unknown' as campaign_name,
        'unknown' as campaign_channel,
        'unknown' as objective,
        cast(null as date) as start_date,
        cast(null as date) as end_date,
        cast(null as bigint) as budget_krw,
        cast(null as bigint) as unit_cost_krw,
        cast(null as double) as control_share
),

final as (
    select * from known
    union all
    select * from unknown_member
)

select * from final
