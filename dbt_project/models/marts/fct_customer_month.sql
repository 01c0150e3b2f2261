-- One row per customer and calendar month from the signup month to the last month with data
-- (or the month the account closed): a periodic snapshot for time-series analysis.
with

customer_versions as (
    select * from {{ ref('int_customers_versioned') }}
),

calendar as (
    select * from {{ ref('dim_date') }}
),

sales as (
    select * from {{ ref('fct_sales') }}
),

contacts as (
    select * from {{ ref('fct_contacts') }}
),

feedback as (
    select * from {{ ref('fct_feedback') }}
),

finance as (
    select * from {{ ref('stg_finance_monthly__customer_months') }}
),

points as (
    select * from {{ ref('stg_loyalty_points__entries') }}
),

months as (
    select distinct
        month,
        month_start,
        cast({{ dbt.dateadd('month', 1, 'month_start') }} as date) as next_month_start
    from calendar
),

last_month as (
    select max(month_start) as month_start
    from (
        select max(date_day) as month_start from sales
        union all
        select max(date_day) from contacts
        union all
        select max(cast(valid_from as date)) from customer_versions
    ) as data_days
),

activity as (
    select customer_id, date_day from sales where customer_id is not null
    union all
    select customer_id, date_day from contacts where customer_id is not null
    union all
    select customer_id, date_day from feedback where customer_id is not null
),

activity_bounds as (
    select
        customer_id,
        min(date_day) as first_day,
        max(date_day) as last_day
    from activity
    group by customer_id
),

customer_bounds as (
    select
        customer_id,
        min(coalesce(signup_date, cast(valid_from as date))) as first_day,
        max(case when is_current and status = 'closed' then coalesce(closed_at, cast(valid_from as date)) end) as closed_day
    from customer_versions
    group by customer_id
),

-- A customer's months run from signup (or an earlier first activity) to the last month with
-- data, or for a closed account to its closing month (or a later last activity: a return).
customers as (
    select
        customer_bounds.customer_id,
        case
            when activity_bounds.first_day < customer_bounds.first_day then activity_bounds.first_day
            else customer_bounds.first_day
        end as first_day,
        case
            when customer_bounds.closed_day is null then null
            when activity_bounds.last_day > customer_bounds.closed_day then activity_bounds.last_day
            else customer_bounds.closed_day
        end as closed_day
    from customer_bounds
    left join activity_bounds
        on activity_bounds.customer_id = customer_bounds.customer_id
),

customer_months as (
    select
        customers.customer_id,
        months.month,
        months.month_start,
        months.next_month_start
    from customers
    cross join last_month
    inner join months
        on months.next_month_start > customers.first_day
        and months.month_start <= last_month.month_start
        and (customers.closed_day is null or months.month_start <= customers.closed_day)
),

sales_months as (
    select
        customer_id,
        month,
        count(distinct case
            when counts_as_sale and not is_return
                then {{ dbt.concat(['sales_channel', "'-'", "coalesce(store_id, '')", "'-'", 'order_id']) }}
        end) as purchases,
        cast(sum(net_sales_krw) as bigint) as net_sales_krw,
        cast(sum(margin_krw) as bigint) as margin_krw,
        cast(sum(cost_krw) as bigint) as cost_krw
    from sales
    where customer_id is not null
    group by customer_id, month
),

contact_months as (
    select
        customer_id,
        month,
        count(*) as contacts,
        count(case when contact_channel = 'call_center' then 1 end) as contacts_call_center,
        count(case when contact_channel in ('web', 'app') then 1 end) as contacts_web,
        count(case when source = 'campaign_touches' then 1 end) as contacts_campaign,
        count(case when is_complaint then 1 end) as complaints
    from contacts
    where customer_id is not null
    group by customer_id, month
),

feedback_months as (
    select
        customer_id,
        month,
        avg(case when feedback_type = 'nps' then cast(score as double) end) as nps,
        avg(case when feedback_type = 'csat' then cast(score as double) end) as csat
    from feedback
    where customer_id is not null
    group by customer_id, month
),

points_months as (
    select
        customer_id,
        {{ month_label('entry_at') }} as month,
        cast(sum(points) as bigint) as points
    from points
    group by customer_id, {{ month_label('entry_at') }}
),

early_points as (
    select
        points_months.customer_id,
        cast(sum(points_months.points) as bigint) as points
    from points_months
    inner join customers
        on customers.customer_id = points_months.customer_id
    where points_months.month < {{ month_label('customers.first_day') }}
    group by points_months.customer_id
),

keyed as (
    select
        customer_months.*,
        customer_versions.customer_key
    from customer_months
    left join customer_versions
        on customer_versions.customer_id = customer_months.customer_id
        and customer_versions.effective_from < cast(customer_months.next_month_start as timestamp)
        and customer_versions.valid_to >= cast(customer_months.next_month_start as timestamp)
),

final as (
    select
        keyed.customer_id,
        coalesce(keyed.customer_key, -1) as customer_key,
        keyed.month,
        keyed.month_start,
        coalesce(sales_months.purchases, 0) as purchases,
        coalesce(sales_months.net_sales_krw, 0) as net_sales_krw,
        coalesce(sales_months.margin_krw, 0) as margin_krw,
        coalesce(finance.revenue_krw, 0) as revenue_krw,
        coalesce(finance.cogs_krw, sales_months.cost_krw, 0) as cogs_krw,
        coalesce(finance.cost_to_serve_krw, 0) as cost_to_serve_krw,
        coalesce(sales_months.net_sales_krw, 0)
            - coalesce(finance.cogs_krw, sales_months.cost_krw, 0)
            - coalesce(finance.cost_to_serve_krw, 0) as profit_krw,
        finance.customer_id is not null as has_finance,
        coalesce(contact_months.contacts, 0) as contacts,
        coalesce(contact_months.contacts_call_center, 0) as contacts_call_center,
        coalesce(contact_months.contacts_web, 0) as contacts_web,
        coalesce(contact_months.contacts_campaign, 0) as contacts_campaign,
        coalesce(contact_months.complaints, 0) as complaints,
        feedback_months.nps,
        feedback_months.csat,
        finance.credit_grade,
        finance.days_past_due,
        -- Entries dated before the customer's first month count in the first month.
        cast(sum(coalesce(points_months.points, 0)) over (
            partition by keyed.customer_id
            order by keyed.month_start
            rows between unbounded preceding and current row
        ) + coalesce(early_points.points, 0) as bigint) as points_balance
    from keyed
    left join sales_months
        on sales_months.customer_id = keyed.customer_id
        and sales_months.month = keyed.month
    left join contact_months
        on contact_months.customer_id = keyed.customer_id
        and contact_months.month = keyed.month
    left join feedback_months
        on feedback_months.customer_id = keyed.customer_id
        and feedback_months.month = keyed.month
    left join finance
        on finance.customer_id = keyed.customer_id
        and finance.month = keyed.month
    left join points_months
        on points_months.customer_id = keyed.customer_id
        and points_months.month = keyed.month
    left join early_points
        on early_points.customer_id = keyed.customer_id
)

select * from final
