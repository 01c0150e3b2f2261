{{ config(materialized='table', schema='cubes') }}
{#- Grain: one row per grouping set × combination of kept dimension values. -#}
{%- set dimensions = ['month', 'contact_channel', 'reason', 'resolution', 'pyramid_tier'] -%}
{%- set grouping_sets = [
    [],
    ['month'], ['contact_channel'], ['reason'], ['resolution'], ['pyramid_tier'],
    ['month', 'contact_channel'], ['month', 'reason'], ['month', 'resolution'], ['month', 'pyramid_tier'],
    ['contact_channel', 'reason'], ['contact_channel', 'resolution'], ['contact_channel', 'pyramid_tier'],
    ['reason', 'resolution'], ['reason', 'pyramid_tier'],
    ['month', 'contact_channel', 'reason'], ['month', 'contact_channel', 'resolution'],
    ['month', 'contact_channel', 'pyramid_tier'],
    dimensions,
] -%}

with

contacts as (
    select * from {{ ref('fct_contacts') }}
),

customers as (
    select * from {{ ref('dim_customer') }}
),

base as (
    select
        {{ cube_dim('contacts.month', 'month') }},
        {{ cube_dim('contacts.contact_channel', 'contact_channel') }},
        {{ cube_dim('contacts.reason', 'reason') }},
        {{ cube_dim('contacts.resolution', 'resolution') }},
        {{ cube_dim('customers.pyramid_tier', 'pyramid_tier') }},
        contacts.contact_id,
        contacts.customer_id,
        contacts.duration_s,
        contacts.cost_krw,
        coalesce(contacts.is_complaint, false) as is_complaint,
    from contacts
    left join customers on contacts.customer_key = customers.customer_key
),

aggregated as (
    select
        {{ dimensions | join(', ') }},
        {{ cube_grouping_flags(dimensions) }}
        count(*) as contacts,
        count(distinct customer_id) as customers,
        count(duration_s) as timed_contacts,
        sum(duration_s) as duration_s,
        sum(cost_krw) as cost_krw,
        count(*) filter (where is_complaint) as complaints,
    from base
    group by {{ cube_grouping_sets(grouping_sets) }}
),

final as (
    select
        {{ cube_dimension_columns(dimensions) }}
        contacts,
        customers,
        timed_contacts,
        cast(coalesce(duration_s, 0) as bigint) as duration_s,
        round(duration_s / nullif(timed_contacts, 0), 1) as avg_duration_s,
        cast(coalesce(cost_krw, 0) as bigint) as cost_krw,
        complaints,
        round(complaints / nullif(contacts, 0), 4) as complaint_rate,
    from aggregated
)

select * from final
