-- fct_sales net sales equal the SOURCES.md definition recomputed straight from raw, per
-- month and channel, to the won: POS lines (one per store, receipt, line) count as
-- delivered; an online order counts with the lines of its latest version only when that
-- version's status is paid. Returns each month and channel where the two differ.
with

pos as (
    select distinct
        store_id,
        receipt_no,
        line_no,
        sold_at,
        qty,
        unit_price,
        discount_amt
    from {{ source('raw', 'pos_sales') }}
),

pos_net as (
    select
        {{ month_label('sold_at') }} as month,
        'store' as sales_channel,
        sum(qty * unit_price - coalesce(discount_amt, 0)) as net_sales_krw,
        count(*) as lines
    from pos
    group by 1, 2
),

latest_order_version as (
    select
        order_id,
        max(updated_at) as updated_at
    from {{ source('raw', 'online_orders') }}
    group by order_id
),

latest_orders as (
    select distinct
        o.order_id,
        o.updated_at,
        o.ordered_at,
        o.channel,
        o.status
    from {{ source('raw', 'online_orders') }} as o
    inner join latest_order_version as v
        on v.order_id = o.order_id
        and v.updated_at = o.updated_at
),

latest_lines as (
    select distinct
        l.order_id,
        l.line_no,
        l.qty,
        l.unit_price,
        l.discount_amt
    from {{ source('raw', 'online_order_lines') }} as l
    inner join latest_order_version as v
        on v.order_id = l.order_id
        and v.updated_at = l.updated_at
),

online_net as (
    select
        {{ month_label('o.ordered_at') }} as month,
        o.channel as sales_channel,
        sum(case when o.status = 'paid' then l.qty * l.unit_price - coalesce(l.discount_amt, 0) else 0 end) as net_sales_krw,
        count(*) as lines
    from latest_lines as l
    inner join latest_orders as o
        on o.order_id = l.order_id
    group by 1, 2
),

expected as (
    select * from pos_net
    union all
    select * from online_net
),

actual as (
    select
        month,
        sales_channel,
        sum(net_sales_krw) as net_sales_krw,
        count(*) as lines
    from {{ ref('fct_sales') }}
    group by 1, 2
)

select
    coalesce(expected.month, actual.month) as month,
    coalesce(expected.sales_channel, actual.sales_channel) as sales_channel,
    expected.net_sales_krw as expected_net_sales_krw,
    actual.net_sales_krw as actual_net_sales_krw,
    expected.lines as expected_lines,
    actual.lines as actual_lines
from expected
full outer join actual
    on actual.month = expected.month
    and actual.sales_channel = expected.sales_channel
where expected.net_sales_krw is distinct from actual.net_sales_krw
    or expected.lines is distinct from actual.lines
