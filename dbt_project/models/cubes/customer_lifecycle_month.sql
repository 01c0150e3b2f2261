{{ config(materialized='table', schema='cubes') }}
{#-
    Grain: one row per customer × month in which the customer is active (MARTS.md: at least
    one purchase in the 365 days up to the month's as-of date).

    The month's as-of date is its last day, or the last day with sales data for the running
    month. A purchase is an order of the customer with positive net sales (returns, cancelled
    and returned online orders are not purchases). The churn label needs the 90 days after the
    as-of date: while that window is still open (it reaches past the last day of data)
    is_churned and is_retained are NULL, not false.
-#}
{%- set active_days = var('active_window_days', 365) -%}
{%- set churn_days = var('churn_window_days', 90) -%}

with

sales as (
    select * from {{ ref('fct_sales') }}
),

customers as (
    select * from {{ ref('dim_customer') }}
),

purchases as (
    select
        customer_id,
        order_id,
        min(date_day) as purchase_date,
    from sales
    where customer_id is not null
    group by customer_id, order_id
    having sum(net_sales_krw) > 0
),

data_span as (
    select
        min(date_day) as data_start_date,
        max(date_day) as data_end_date,
    from sales
),

months as (
    select
        strftime(series.month_start, '%Y-%m') as month,
        cast(series.month_start as date) as month_start,
        least(cast(last_day(series.month_start) as date), data_span.data_end_date) as as_of_date,
        data_span.data_end_date,
    from data_span
    cross join generate_series(
        cast(date_trunc('month', data_span.data_start_date) as timestamp),
        cast(data_span.data_end_date as timestamp),
        interval 1 month
    ) as series (month_start)
),

first_purchases as (
    select
        customer_id,
        min(purchase_date) as first_purchase_date,
    from purchases
    group by customer_id
),

monthly_purchases as (
    select
        customer_id,
        strftime(purchase_date, '%Y-%m') as month,
        count(*) as purchases,
        min(purchase_date) as first_in_month,
        max(purchase_date) as last_in_month,
    from purchases
    group by customer_id, strftime(purchase_date, '%Y-%m')
),

customer_months as (
    select
        first_purchases.customer_id,
        first_purchases.first_purchase_date,
        months.month,
        months.month_start,
        months.as_of_date,
        months.data_end_date,
        coalesce(monthly_purchases.purchases, 0) as purchases,
        max(monthly_purchases.last_in_month) over (
            partition by first_purchases.customer_id order by months.month_start
            rows between unbounded preceding and current row
        ) as last_purchase_date,
        min(monthly_purchases.first_in_month) over (
            partition by first_purchases.customer_id order by months.month_start
            rows between 1 following and unbounded following
        ) as next_purchase_date,
    from first_purchases
    inner join months
        on months.month_start >= cast(date_trunc('month', first_purchases.first_purchase_date) as date)
    left join monthly_purchases
        on first_purchases.customer_id = monthly_purchases.customer_id
        and months.month = monthly_purchases.month
),

current_customers as (
    select
        customer_id,
        customer_key,
        pyramid_tier,
        relationship_stage,
        signup_channel,
        closed_at,
    from customers
    where is_current
),

flagged as (
    select
        customer_months.*,
        current_customers.customer_key,
        coalesce(cast(current_customers.pyramid_tier as varchar), 'unknown') as pyramid_tier,
        coalesce(cast(current_customers.relationship_stage as varchar), 'unknown') as relationship_stage,
        coalesce(cast(current_customers.signup_channel as varchar), 'unknown') as signup_channel,
        current_customers.closed_at,
        date_diff('day', customer_months.last_purchase_date, customer_months.as_of_date)
            < {{ active_days }} as is_active,
        strftime(customer_months.first_purchase_date, '%Y-%m') = customer_months.month as is_new,
        customer_months.as_of_date + {{ churn_days }} <= customer_months.data_end_date as churn_window_closed,
        (
            customer_months.next_purchase_date is null
            or customer_months.next_purchase_date > customer_months.as_of_date + {{ churn_days }}
            or coalesce(
                current_customers.closed_at > customer_months.as_of_date
                and current_customers.closed_at <= customer_months.as_of_date + {{ churn_days }},
                false
            )
        ) as lapses,
    from customer_months
    left join current_customers on customer_months.customer_id = current_customers.customer_id
),

final as (
    select
        customer_id,
        coalesce(customer_key, -1) as customer_key,
        month,
        month_start,
        as_of_date,
        pyramid_tier,
        relationship_stage,
        signup_channel,
        first_purchase_date,
        last_purchase_date,
        next_purchase_date,
        purchases,
        is_new,
        churn_window_closed,
        case when churn_window_closed then lapses end as is_churned,
        case when churn_window_closed then not lapses end as is_retained,
    from flagged
    where is_active
)

select * from final
