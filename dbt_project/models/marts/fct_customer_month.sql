{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ rewrite_customer_months() }}",
    )
}}
{%- set plan = customer_month_plan() %}
-- One row per customer and calendar month from the signup month to the last month with data
-- (or the month the account closed): a periodic snapshot for time-series analysis.
--
-- Incremental by month (macros/incremental_months.sql): a run deletes and writes again the
-- month in progress (and any newer), older months that received finance rows loaded after the
-- table's high-water mark, in older months the customers whose facts the facts' runs rewrote
-- there (macros/fact_rewrites.sql), and every month of the customers whose history may have
-- changed (a new version, a points entry, a span that moved, a balance that a points
-- correction changed: see customer_month_keys). Facts and finance are read for those rows
-- only, activity spans for the customers whose span can matter there, and a rewritten row's
-- points balance starts from the balance the table held before the month in progress. A full
-- build computes every row.
with

customer_versions as (
    select * from {{ ref('int_customers_versioned') }}
),

calendar as (
    select * from {{ ref('dim_date') }}
),

sales as (
    {{ select_rewritten(plan, ref('fct_sales'), 'date_day', 'day', 'customer_id', 'customer_id is not null') }}
),

contacts as (
    {{ select_rewritten(plan, ref('fct_contacts'), 'date_day', 'day', 'customer_id', 'customer_id is not null') }}
),

feedback as (
    {{ select_rewritten(plan, ref('fct_feedback'), 'date_day', 'day', 'customer_id', 'customer_id is not null') }}
),

-- The plan's customers' finance rows in other months, and its cells', were copied by the
-- pre-hook.
finance as (
    select * from {{ ref('stg_finance_monthly__customer_months') }}
    where {{ in_rewritten_months(plan, 'month', 'label') }}
    {%- if plan is not none %}
    union all
    select * from {{ rewrite_relation('finance') }}
    {%- endif %}
),

points as (
    select * from {{ ref('stg_loyalty_points__entries') }}
),
{%- if plan is not none %}

-- The balances of the rows the pre-hook deleted in older months, and of the month before the
-- month in progress, for customers whose points did not change (see customer_month_keys).
previous_balances as (
    select * from {{ rewrite_relation('balances') }}
    where not {{ keys_in(plan, 'customer_id') }}
),

start_base as (
    select customer_id, points_balance
    from previous_balances
    where month_start = cast({{ dbt.dateadd('month', -1, date_literal(plan.start)) }} as date)
),
{%- endif %}

-- Lineage only (staging drops _loaded_at): when each month's finance delivery and each
-- customer's points entries were loaded.
finance_loads as (
    select
        month,
        max(_loaded_at) as _loaded_at
    from {{ source('raw', 'finance_monthly') }}
    group by month
),

points_loads as (
    select
        customer_id,
        max(_loaded_at) as _loaded_at
    from {{ source('raw', 'loyalty_points') }}
    group by customer_id
),

months as (
    select distinct
        month,
        month_start,
        cast({{ dbt.dateadd('month', 1, 'month_start') }} as date) as next_month_start
    from calendar
),

data_end as (
    {{ customer_month_last_day('customer_versions', ref('fct_sales'), ref('fct_contacts')) }}
),

-- A customer's months run from signup (or an earlier first activity) to the last month with
-- data, or for a closed account to its closing month (or a later last activity: a return).
customers as (
    {{ customer_month_spans(
        'customer_versions', ref('fct_sales'), ref('fct_contacts'), ref('fct_feedback'),
        only=customer_month_span_customers(plan, 'customer_versions') if plan else none,
    ) }}
),

customer_loads as (
    select
        customer_id,
        max(_loaded_at) as _loaded_at
    from customer_versions
    group by customer_id
),

rewritten_months as (
    select * from months
    where {{ in_rewritten_months(plan, 'month_start', 'month_start') }}
),

-- Every customer in the rewritten months; the plan's customers in all their months; the
-- plan's cells (rows the table had, of customers whose span did not move).
customer_months as (
    select
        customers.customer_id,
        rewritten_months.month,
        rewritten_months.month_start,
        rewritten_months.next_month_start
    from customers
    cross join data_end
    inner join rewritten_months
        on rewritten_months.next_month_start > customers.first_day
        and rewritten_months.month_start <= data_end.last_day
        and (customers.closed_day is null or rewritten_months.month_start <= customers.closed_day)
    {%- if plan is not none %}
    union all
    select
        whole_customers.customer_id,
        months.month,
        months.month_start,
        months.next_month_start
    from (
        select * from customers where {{ keys_in(plan, 'customer_id') }}
    ) as whole_customers
    cross join data_end
    inner join months
        on months.next_month_start > whole_customers.first_day
        and months.month_start <= data_end.last_day
        and (whole_customers.closed_day is null or months.month_start <= whole_customers.closed_day)
    where not {{ in_rewritten_months(plan, 'months.month_start', 'month_start') }}
    {%- if plan.cell_months %}
    union all
    select
        cells.customer_id,
        months.month,
        months.month_start,
        months.next_month_start
    from {{ plan.cells_relation }} as cells
    inner join months
        on months.month_start = cells.month_start
    {%- endif %}
    {%- endif %}
),

sales_months as (
    select
        customer_id,
        month,
        count(distinct case when counts_as_sale and not is_return then order_id end) as purchases,
        cast(sum(net_sales_krw) as bigint) as net_sales_krw,
        cast(sum(margin_krw) as bigint) as margin_krw,
        cast(sum(cost_krw) as bigint) as cost_krw,
        max(_loaded_at) as sales_loaded_at
    from sales
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
        count(case when is_complaint then 1 end) as complaints,
        max(_loaded_at) as contacts_loaded_at
    from contacts
    group by customer_id, month
),

feedback_months as (
    select
        customer_id,
        month,
        avg(case when feedback_type = 'nps' then cast(score as double) end) as nps,
        avg(case when feedback_type = 'csat' then cast(score as double) end) as csat,
        max(_loaded_at) as feedback_loaded_at
    from feedback
    group by customer_id, month
),

finance_months as (
    select
        customer_id,
        month,
        true as has_finance,
        revenue_krw,
        cogs_krw,
        cost_to_serve_krw,
        credit_grade,
        days_past_due
    from finance
),

{#- The four per-month fact relations as one row per customer and month: one union and one
    (spilling) aggregate instead of four hash joins side by side in the final query, whose
    tables together outgrew DuckDB's memory at 1,000,000 customers. Each relation has at most
    one row per customer and month, so max() takes its value. #}
{%- set month_facts = {
    'sales_months': ['purchases', 'net_sales_krw', 'margin_krw', 'cost_krw', 'sales_loaded_at'],
    'contact_months': [
        'contacts', 'contacts_call_center', 'contacts_web', 'contacts_campaign', 'complaints',
        'contacts_loaded_at',
    ],
    'feedback_months': ['nps', 'csat', 'feedback_loaded_at'],
    'finance_months': [
        'has_finance', 'revenue_krw', 'cogs_krw', 'cost_to_serve_krw', 'credit_grade', 'days_past_due',
    ],
} %}
month_facts as (
    select
        customer_id,
        month,
        {%- for columns in month_facts.values() %}
        {%- set last_relation = loop.last %}
        {%- for column in columns %}
        max({{ column }}) as {{ column }}{{ ',' if not (last_relation and loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from (
        {%- for relation in month_facts %}
        select
            customer_id,
            month,
            {%- for other, columns in month_facts.items() %}
            {%- set last_relation = loop.last %}
            {%- for column in columns %}
            {{ column if other == relation else 'null' }} as {{ column }}{{ ',' if not (last_relation and loop.last) }}
            {%- endfor %}
            {%- endfor %}
        from {{ relation }}
        {{ 'union all' if not loop.last }}
        {%- endfor %}
    ) as facts
    group by customer_id, month
),

points_months as (
    select
        points.customer_id,
        cast({{ dbt.date_trunc('month', 'points.entry_at') }} as date) as month_start,
        sum(points.points) as points
    from points
    {%- if plan is not none %}
    -- Customers with a balance before the plan's start need the entries since only.
    left join start_base
        on start_base.customer_id = points.customer_id
    where points.entry_at >= cast({{ date_literal(plan.start) }} as timestamp)
        or start_base.customer_id is null
    {%- endif %}
    group by points.customer_id, cast({{ dbt.date_trunc('month', 'points.entry_at') }} as date)
),

-- The balance after each month with entries, valid until the next such month (from the
-- plan's start, for customers with a balance before it). Entries dated before the
-- customer's first month count in the first month.
points_balances as (
    select
        customer_id,
        month_start,
        coalesce(
            lead(month_start) over (partition by customer_id order by month_start),
            cast('9999-12-01' as date)
        ) as next_entries_month,
        sum(points) over (
            partition by customer_id
            order by month_start
            rows between unbounded preceding and current row
        ) as balance
    from points_months
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
        coalesce(month_facts.purchases, 0) as purchases,
        coalesce(month_facts.net_sales_krw, 0) as net_sales_krw,
        coalesce(month_facts.margin_krw, 0) as margin_krw,
        coalesce(month_facts.revenue_krw, 0) as revenue_krw,
        coalesce(month_facts.cogs_krw, month_facts.cost_krw, 0) as cogs_krw,
        coalesce(month_facts.cost_to_serve_krw, 0) as cost_to_serve_krw,
        coalesce(month_facts.net_sales_krw, 0)
            - coalesce(month_facts.cogs_krw, month_facts.cost_krw, 0)
            - coalesce(month_facts.cost_to_serve_krw, 0) as profit_krw,
        coalesce(month_facts.has_finance, false) as has_finance,
        coalesce(month_facts.contacts, 0) as contacts,
        coalesce(month_facts.contacts_call_center, 0) as contacts_call_center,
        coalesce(month_facts.contacts_web, 0) as contacts_web,
        coalesce(month_facts.contacts_campaign, 0) as contacts_campaign,
        coalesce(month_facts.complaints, 0) as complaints,
        month_facts.nps,
        month_facts.csat,
        month_facts.credit_grade,
        month_facts.days_past_due,
        {%- if plan is not none %}
        cast(case
            when previous_balances.points_balance is not null then previous_balances.points_balance
            when keyed.month_start >= {{ date_literal(plan.start) }}
                then coalesce(start_base.points_balance, 0) + coalesce(points_balances.balance, 0)
            else coalesce(points_balances.balance, 0)
        end as bigint) as points_balance,
        {%- else %}
        cast(coalesce(points_balances.balance, 0) as bigint) as points_balance,
        {%- endif %}
        -- The month's last day, or for the month in progress the last day with data.
        case
            when keyed.next_month_start > data_end.last_day then data_end.last_day
            else cast({{ dbt.dateadd('day', -1, 'keyed.next_month_start') }} as date)
        end as date_day,
        -- The latest load among the rows this row is computed from (the incremental high-water
        -- mark): the customer's versions and points entries, the month's facts, and the month's
        -- finance delivery (as a whole: it is rewritten as a whole).
        greatest(
            customer_loads._loaded_at,
            coalesce(points_loads._loaded_at, customer_loads._loaded_at),
            coalesce(month_facts.sales_loaded_at, customer_loads._loaded_at),
            coalesce(month_facts.contacts_loaded_at, customer_loads._loaded_at),
            coalesce(month_facts.feedback_loaded_at, customer_loads._loaded_at),
            coalesce(finance_loads._loaded_at, customer_loads._loaded_at)
        ) as _loaded_at
    from keyed
    cross join data_end
    inner join customer_loads
        on customer_loads.customer_id = keyed.customer_id
    left join month_facts
        on month_facts.customer_id = keyed.customer_id
        and month_facts.month = keyed.month
    left join finance_loads
        on finance_loads.month = keyed.month
    left join points_loads
        on points_loads.customer_id = keyed.customer_id
    left join points_balances
        on points_balances.customer_id = keyed.customer_id
        and points_balances.month_start <= keyed.month_start
        and points_balances.next_entries_month > keyed.month_start
    {%- if plan is not none %}
    left join previous_balances
        on previous_balances.customer_id = keyed.customer_id
        and previous_balances.month_start = keyed.month_start
    left join start_base
        on start_base.customer_id = keyed.customer_id
    {%- endif %}
)

select * from final
