-- The periodic snapshot adds up to the transaction facts: per month, fct_customer_month's
-- net sales, margin and contacts equal those of fct_sales and fct_contacts for every
-- customer known to dim_customer. Returns each month where they differ.
{{ config(tags=['scores_independent']) }}
with

known_customers as (
    select distinct customer_id
    from {{ ref('dim_customer') }}
    where customer_key <> -1
),

sales as (
    select
        month,
        sum(net_sales_krw) as net_sales_krw,
        sum(margin_krw) as margin_krw
    from {{ ref('fct_sales') }}
    where customer_id in (select customer_id from known_customers)
    group by month
),

contacts as (
    select
        month,
        count(*) as contacts
    from {{ ref('fct_contacts') }}
    where customer_id in (select customer_id from known_customers)
    group by month
),

snapshot as (
    select
        month,
        sum(net_sales_krw) as net_sales_krw,
        sum(margin_krw) as margin_krw,
        sum(contacts) as contacts
    from {{ ref('fct_customer_month') }}
    group by month
)

select
    coalesce(snapshot.month, sales.month, contacts.month) as month,
    snapshot.net_sales_krw,
    sales.net_sales_krw as fct_sales_net_sales_krw,
    snapshot.contacts,
    contacts.contacts as fct_contacts_contacts
from snapshot
full outer join sales
    on sales.month = snapshot.month
full outer join contacts
    on contacts.month = coalesce(snapshot.month, sales.month)
where coalesce(snapshot.net_sales_krw, 0) <> coalesce(sales.net_sales_krw, 0)
    or coalesce(snapshot.margin_krw, 0) <> coalesce(sales.margin_krw, 0)
    or coalesce(snapshot.contacts, 0) <> coalesce(contacts.contacts, 0)
