{{ config(materialized='table', schema='cubes') }}
{#-
    Grain: one row per grouping set × combination of kept dimension values.
    campaign → campaign_channel and objective is a hierarchy: every grouping set that keeps
    campaign keeps its channel and objective too (they are attributes of the campaign).
-#}
{%- set dimensions = ['campaign', 'campaign_channel', 'objective', 'assigned_group', 'month'] -%}
{%- set grouping_sets = [
    [],
    ['assigned_group'],
    ['campaign_channel'], ['campaign_channel', 'assigned_group'],
    ['objective'], ['objective', 'assigned_group'],
    ['campaign_channel', 'objective'], ['campaign_channel', 'objective', 'assigned_group'],
    ['campaign', 'campaign_channel', 'objective'],
    ['campaign', 'campaign_channel', 'objective', 'assigned_group'],
    ['month'], ['month', 'assigned_group'],
    ['campaign_channel', 'month'], ['campaign_channel', 'assigned_group', 'month'],
    ['objective', 'month'], ['objective', 'assigned_group', 'month'],
    ['campaign', 'campaign_channel', 'objective', 'month'],
    dimensions,
] -%}

with

touches as (
    select * from {{ ref('fct_campaign_touches') }}
),

campaigns as (
    select * from {{ ref('dim_campaign') }}
),

base as (
    select
        {{ cube_dim('touches.campaign_id', 'campaign') }},
        {{ cube_dim('campaigns.campaign_channel', 'campaign_channel') }},
        {{ cube_dim('campaigns.objective', 'objective') }},
        {{ cube_dim('touches.assigned_group', 'assigned_group') }},
        {{ cube_dim('touches.month', 'month') }},
        touches.assigned_group as touch_group,
        coalesce(touches.delivered, false) as delivered,
        coalesce(touches.opened, false) as opened,
        coalesce(touches.clicked, false) as clicked,
        coalesce(touches.converted, false) as converted,
        coalesce(touches.attributed_sales_krw, 0) as attributed_sales_krw,
        coalesce(touches.cost_krw, 0) as cost_krw,
    from touches
    left join campaigns on touches.campaign_id = campaigns.campaign_id
),

aggregated as (
    select
        {{ dimensions | join(', ') }},
        {{ cube_grouping_flags(dimensions) }}
        count(*) as targeted,
        count(*) filter (where delivered) as delivered,
        count(*) filter (where opened) as opened,
        count(*) filter (where clicked) as clicked,
        count(*) filter (where converted) as converted,
        sum(attributed_sales_krw) as attributed_sales_krw,
        sum(cost_krw) as cost_krw,
        count(*) filter (where touch_group = 'treatment') as treatment_targeted,
        count(*) filter (where touch_group = 'treatment' and converted) as treatment_converted,
        count(*) filter (where touch_group = 'control') as control_targeted,
        count(*) filter (where touch_group = 'control' and converted) as control_converted,
    from base
    group by {{ cube_grouping_sets(grouping_sets) }}
),

final as (
    select
        {{ cube_dimension_columns(dimensions) }}
        targeted,
        delivered,
        opened,
        clicked,
        converted,
        cast(attributed_sales_krw as bigint) as attributed_sales_krw,
        cast(cost_krw as bigint) as cost_krw,
        treatment_targeted,
        treatment_converted,
        control_targeted,
        control_converted,
        round(converted / nullif(targeted, 0), 4) as conversion_rate,
        round((attributed_sales_krw - cost_krw) / nullif(cost_krw, 0), 4) as roi,
        case
            when _rolled_assigned_group = 1
                then round(
                    treatment_converted / nullif(treatment_targeted, 0)
                    - control_converted / nullif(control_targeted, 0),
                    4
                )
        end as uplift,
    from aggregated
)

select * from final
