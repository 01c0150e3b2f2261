-- Reconciliation (cubes): at every grouping level of cube_sales, the additive measures summed
-- over the level's rows equal the fct_sales totals, and the grand total's distinct counts
-- (orders, buyers) equal those of fct_sales. Returns one row per mismatch.

with

sales as (
    select * from {{ ref('fct_sales') }}
),

cube as (
    select * from {{ ref('cube_sales') }}
),

fact_totals as (
    select
        cast(coalesce(sum(net_sales_krw), 0) as bigint) as net_sales_krw,
        cast(coalesce(sum(gross_sales_krw), 0) as bigint) as gross_sales_krw,
        cast(coalesce(sum(discount_krw), 0) as bigint) as discount_krw,
        cast(coalesce(sum(cost_krw), 0) as bigint) as cost_krw,
        cast(coalesce(sum(margin_krw), 0) as bigint) as margin_krw,
        cast(coalesce(sum(qty), 0) as bigint) as units,
        count(*) as sales_lines,
        count(distinct case when net_sales_krw > 0 then order_id end) as orders,
        count(distinct case when net_sales_krw > 0 then customer_id end) as buyers,
    from sales
),

level_totals as (
    select
        grouping_level,
        sum(net_sales_krw) as net_sales_krw,
        sum(gross_sales_krw) as gross_sales_krw,
        sum(discount_krw) as discount_krw,
        sum(cost_krw) as cost_krw,
        sum(margin_krw) as margin_krw,
        sum(units) as units,
        sum(sales_lines) as sales_lines,
    from cube
    group by grouping_level
),

additive_mismatches as (
    select
        level_totals.grouping_level,
        'additive measures' as check_name,
    from level_totals
    cross join fact_totals
    where level_totals.net_sales_krw <> fact_totals.net_sales_krw
        or level_totals.gross_sales_krw <> fact_totals.gross_sales_krw
        or level_totals.discount_krw <> fact_totals.discount_krw
        or level_totals.cost_krw <> fact_totals.cost_krw
        or level_totals.margin_krw <> fact_totals.margin_krw
        or level_totals.units <> fact_totals.units
        or level_totals.sales_lines <> fact_totals.sales_lines
),

grand_total_mismatches as (
    select
        'month,sales_channel,category,region,pyramid_tier' as grouping_level,
        'grand total distinct counts' as check_name,
    from fact_totals
    left join cube on cube.kept_dimensions = 'ALL'
    where cube.orders is distinct from fact_totals.orders
        or cube.buyers is distinct from fact_totals.buyers
        or cube.net_sales_krw is distinct from fact_totals.net_sales_krw
        or cube.month <> 'ALL'
        or cube.sales_channel <> 'ALL'
        or cube.category <> 'ALL'
        or cube.region <> 'ALL'
        or cube.pyramid_tier <> 'ALL'
),

monthly_buyers as (
    select
        month,
        count(distinct case when net_sales_krw > 0 then customer_id end) as buyers,
        count(distinct case when net_sales_krw > 0 then order_id end) as orders,
    from sales
    group by month
),

month_level_mismatches as (
    select
        'sales_channel,category,region,pyramid_tier' as grouping_level,
        'distinct counts per month: ' || coalesce(monthly_buyers.month, cube.month) as check_name,
    from monthly_buyers
    full outer join (select * from cube where kept_dimensions = 'month') as cube
        on coalesce(monthly_buyers.month, 'unknown') = cube.month
    where cube.buyers is distinct from monthly_buyers.buyers
        or cube.orders is distinct from monthly_buyers.orders
)

select * from additive_mismatches
union all
select * from grand_total_mismatches
union all
select * from month_level_mismatches
