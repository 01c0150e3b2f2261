{#- Grain: one row per day. The MetricFlow time spine (see _time_spine.yml), read from the
    conformed date dimension so metrics and marts share one calendar. -#}
{{ config(materialized='table', schema='semantic') }}

with

dates as (
    select * from {{ ref('dim_date') }}
),

final as (
    select
        cast(date_day as date) as date_day,
    from dates
)

select * from final
