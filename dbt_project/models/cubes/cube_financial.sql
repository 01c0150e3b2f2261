{{ config(materialized='table', schema='cubes') }}
{#- Grain: one row per grouping set × combination of kept dimension values. -#}
{%- set dimensions = ['month', 'pyramid_tier', 'region', 'credit_grade_band'] -%}
{%- set grouping_sets = [
    [],
    ['month'], ['pyramid_tier'], ['region'], ['credit_grade_band'],
    ['month', 'pyramid_tier'], ['month', 'region'], ['month', 'credit_grade_band'],
    ['pyramid_tier', 'region'], ['pyramid_tier', 'credit_grade_band'], ['region', 'credit_grade_band'],
    ['month', 'pyramid_tier', 'region'], ['month', 'pyramid_tier', 'credit_grade_band'],
    dimensions,
] -%}

with

customer_months as (
    select * from {{ ref('fct_customer_month') }}
),

customers as (
    select * from {{ ref('dim_customer') }}
),

base as (
    select
        {{ cube_dim('customer_months.month', 'month') }},
        {{ cube_dim('customers.pyramid_tier', 'pyramid_tier') }},
        {{ cube_dim('customers.region', 'region') }},
        case
            when customer_months.credit_grade is null then 'unknown'
            when cast(customer_months.credit_grade as integer) <= 3 then 'prime (1-3)'
            when cast(customer_months.credit_grade as integer) <= 6 then 'near_prime (4-6)'
            else 'subprime (7-10)'
        end as credit_grade_band,
        customer_months.customer_id,
        customer_months.revenue_krw,
        customer_months.cogs_krw,
        customer_months.cost_to_serve_krw,
        customer_months.profit_krw,
        coalesce(customer_months.days_past_due, 0) >= {{ var('delinquent_days_past_due', 30) }} as is_delinquent,
    from customer_months
    left join customers on customer_months.customer_key = customers.customer_key
),

aggregated as (
    select
        {{ dimensions | join(', ') }},
        {{ cube_grouping_flags(dimensions) }}
        sum(revenue_krw) as revenue_krw,
        sum(cogs_krw) as cogs_krw,
        sum(cost_to_serve_krw) as cost_to_serve_krw,
        sum(profit_krw) as profit_krw,
        count(distinct customer_id) as customers,
        count(distinct case when is_delinquent then customer_id end) as delinquent_customers,
    from base
    group by {{ cube_grouping_sets(grouping_sets) }}
),

final as (
    select
        {{ cube_dimension_columns(dimensions) }}
        cast(coalesce(revenue_krw, 0) as bigint) as revenue_krw,
        cast(coalesce(cogs_krw, 0) as bigint) as cogs_krw,
        cast(coalesce(cost_to_serve_krw, 0) as bigint) as cost_to_serve_krw,
        cast(coalesce(profit_krw, 0) as bigint) as profit_krw,
        customers,
        delinquent_customers,
    from aggregated
)

select * from final
