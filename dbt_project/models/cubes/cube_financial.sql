{{ config(materialized='table', schema='cubes') }}
{#-
    Grain: one row per grouping set × combination of kept dimension values.
    fct_customer_month has one row per customer and month (tested), so in the sets that keep
    month a plain count is the distinct customers. The sets without month count customers
    across months in a second query over customer_cells: one row per customer and combination
    of the other dimensions (a customer who moves or changes tier or band lies in several).
-#}
{%- set dimensions = ['month', 'pyramid_tier', 'region', 'credit_grade_band'] -%}
{%- set monthly_sets = [
    ['month'], ['month', 'pyramid_tier'], ['month', 'region'], ['month', 'credit_grade_band'],
    ['month', 'pyramid_tier', 'region'], ['month', 'pyramid_tier', 'credit_grade_band'],
    dimensions,
] -%}
{%- set overall_sets = [
    [], ['pyramid_tier'], ['region'], ['credit_grade_band'],
    ['pyramid_tier', 'region'], ['pyramid_tier', 'credit_grade_band'], ['region', 'credit_grade_band'],
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

customer_cells as (
    select
        customer_id,
        pyramid_tier,
        region,
        credit_grade_band,
        sum(revenue_krw) as revenue_krw,
        sum(cogs_krw) as cogs_krw,
        sum(cost_to_serve_krw) as cost_to_serve_krw,
        sum(profit_krw) as profit_krw,
        {{ dbt.bool_or('is_delinquent') }} as is_delinquent,
    from base
    group by customer_id, pyramid_tier, region, credit_grade_band
),

aggregated as (
    select
        {{ dimensions | join(', ') }},
        {{ cube_grouping_flags(dimensions) }}
        sum(revenue_krw) as revenue_krw,
        sum(cogs_krw) as cogs_krw,
        sum(cost_to_serve_krw) as cost_to_serve_krw,
        sum(profit_krw) as profit_krw,
        count(*) as customers,
        count(case when is_delinquent then 1 end) as delinquent_customers,
    from base
    group by {{ cube_grouping_sets(monthly_sets) }}

    union all

    select
        cast(null as {{ dbt.type_string() }}) as month,
        pyramid_tier,
        region,
        credit_grade_band,
        {{ cube_grouping_flags(dimensions, rolled_up=['month']) }}
        sum(revenue_krw) as revenue_krw,
        sum(cogs_krw) as cogs_krw,
        sum(cost_to_serve_krw) as cost_to_serve_krw,
        sum(profit_krw) as profit_krw,
        count(distinct customer_id) as customers,
        count(distinct case when is_delinquent then customer_id end) as delinquent_customers,
    from customer_cells
    group by {{ cube_grouping_sets(overall_sets) }}
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
