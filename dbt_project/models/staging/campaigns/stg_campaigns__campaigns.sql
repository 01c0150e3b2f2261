-- One row per campaign (campaign_id): the latest delivery wins.
with

campaigns as (
    {{ raw_latest('campaigns', ['campaign_id']) }}
),

final as (
    select
        campaign_id,
        campaign_name,
        channel as campaign_channel,
        objective,
        start_date,
        end_date,
        budget_krw,
        unit_cost_krw,
        control_share
    from campaigns
)

select * from final
