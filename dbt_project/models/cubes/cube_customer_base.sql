{{ config(materialized='table', schema='cubes') }}
{#-
    Grain: one row per grouping set × combination of kept dimension values.
    month is kept in every grouping set: active, churned and retained are stocks at the
    month's as-of date and have no meaning summed over months (see the YAML). So every cell
    lies within one month, where customer_lifecycle_month has one row per customer (tested):
    plain counts are the distinct customers, without the cost of count(distinct).
-#}
{%- set dimensions = ['month', 'pyramid_tier', 'relationship_stage', 'signup_channel'] -%}
{%- set grouping_sets = [
    ['month'],
    ['month', 'pyramid_tier'], ['month', 'relationship_stage'], ['month', 'signup_channel'],
    ['month', 'pyramid_tier', 'relationship_stage'], ['month', 'pyramid_tier', 'signup_channel'],
    ['month', 'relationship_stage', 'signup_channel'],
    dimensions,
] -%}

with

lifecycle as (
    select * from {{ ref('customer_lifecycle_month') }}
),

aggregated as (
    select
        {{ dimensions | join(', ') }},
        {{ cube_grouping_flags(dimensions) }}
        count(*) as active,
        count(case when is_new then 1 end) as new,
        count(case when is_churned then 1 end) as churned,
        count(case when is_retained then 1 end) as retained,
        bool_and(churn_window_closed) as churn_window_closed,
    from lifecycle
    group by {{ cube_grouping_sets(grouping_sets) }}
),

final as (
    select
        {{ cube_dimension_columns(dimensions) }}
        active,
        new,
        case when churn_window_closed then churned end as churned,
        case when churn_window_closed then retained end as retained,
        case when churn_window_closed then round(retained / nullif(active, 0), 4) end as retention_rate,
        case when churn_window_closed then round(churned / nullif(active, 0), 4) end as churn_rate,
    from aggregated
)

select * from final
