-- One row per targeted customer and campaign (treatment and control), with the conversion
-- and net sales of the customer's purchases within the attribution window.
with

touches as (
    select * from {{ ref('stg_campaign_touches__touches') }}
),

campaigns as (
    select * from {{ ref('dim_campaign') }}
),

customer_versions as (
    select * from {{ ref('int_customers_versioned') }}
),

sales as (
    select * from {{ ref('fct_sales') }}
),

customer_days as (
    select
        customer_id,
        date_day,
        sum(net_sales_krw) as net_sales_krw,
        max(case when counts_as_sale and not is_return and net_sales_krw > 0 then 1 else 0 end) as purchased
    from sales
    where customer_id is not null
    group by customer_id, date_day
),

anchored as (
    select
        touches.*,
        coalesce(campaigns.campaign_key, -1) as campaign_key,
        -- Treatment is attributed from the send, control from the campaign's start.
        coalesce(touches.sent_at, cast(campaigns.start_date as timestamp)) as attribution_start
    from touches
    left join campaigns
        on campaigns.campaign_id = touches.campaign_id
),

attributed as (
    select
        anchored.touch_id,
        cast(coalesce(sum(customer_days.net_sales_krw), 0) as bigint) as attributed_sales_krw,
        coalesce(max(customer_days.purchased), 0) = 1 as converted
    from anchored
    left join customer_days
        on customer_days.customer_id = anchored.customer_id
        and customer_days.date_day >= cast(anchored.attribution_start as date)
        and customer_days.date_day < cast({{ dbt.dateadd('day', var('attribution_days') | int, 'cast(anchored.attribution_start as date)') }} as date)
    group by anchored.touch_id
),

keyed as (
    select
        anchored.*,
        customer_versions.customer_key
    from anchored
    left join customer_versions
        on customer_versions.customer_id = anchored.customer_id
        and anchored.attribution_start >= customer_versions.effective_from
        and anchored.attribution_start < customer_versions.valid_to
),

final as (
    select
        keyed.touch_id,
        keyed.campaign_id,
        keyed.campaign_key,
        keyed.customer_id,
        coalesce(keyed.customer_key, -1) as customer_key,
        keyed.assigned_group,
        coalesce(keyed.delivered, false) as delivered,
        keyed.opened_at is not null as opened,
        keyed.clicked_at is not null as clicked,
        keyed.unsubscribed_at is not null as unsubscribed,
        attributed.converted,
        attributed.attributed_sales_krw,
        keyed.cost_krw,
        keyed.sent_at,
        keyed.attribution_start,
        cast(keyed.attribution_start as date) as date_day,
        {{ month_label('keyed.attribution_start') }} as month
    from keyed
    inner join attributed
        on attributed.touch_id = keyed.touch_id
)

select * from final
