"""Customer features as of a date, computed in SQL on DuckDB from the marts.

Why one function for every date: training needs the same features at many past cut-offs and
scoring needs them today; if both go through ``build_features(con, as_of)`` the model is fed at
scoring time exactly what it learned from. Every source row is filtered on its event date
``< $as_of`` (bound as a parameter, never formatted into the SQL), so a feature as of ``d``
cannot see a row dated ``d`` or later. Three facts are only known some time after their event,
and are treated so that they too are known before ``d``:

- a complaint counts as resolved only if ``received_at + hours_to_resolve`` is before ``d``;
- campaign responses (opened, clicked, converted) are read only for touches sent at least
  ``RESPONSE_LAG_DAYS`` before ``d`` (the attribution window has closed by then);
- monthly finance rows (credit, delinquency, points, profit) are used only for calendar months
  that ended before ``d``.

Population: every known customer (signed up before ``d``); ``is_closed`` marks accounts closed
before ``d`` (never "active"). The 3/6/12-month trends compare a window with the one before it
and are NULL while the data do not reach back that far (else a young warehouse would teach
the model that every customer is growing). Columns in ``FEATURES`` are the model's inputs;
the others identify and slice the customer.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd

# Touches younger than this are too recent for their response to be known at the as-of date.
RESPONSE_LAG_DAYS = 30

MARKETING_CHANNELS = ("email", "sms", "kakao", "direct_mail", "telemarketing", "app_push")
DIGITAL_CHANNELS = ("web", "app")

# Model inputs, in a fixed order (the registry stores this list with every model).
FEATURES: tuple[str, ...] = (
    "tenure_days",
    "recency_days",
    "days_since_first_purchase",
    "orders_total",
    "orders_30d",
    "orders_90d",
    "orders_180d",
    "orders_365d",
    "net_sales_90d",
    "net_sales_365d",
    "avg_order_value_365d",
    "avg_gap_days",
    "recency_to_gap",
    "trend_orders_3m",
    "trend_orders_6m",
    "trend_orders_12m",
    "trend_sales_3m",
    "trend_sales_6m",
    "trend_sales_12m",
    "share_store_365d",
    "share_web_365d",
    "share_app_365d",
    "return_line_share_365d",
    "discount_share_365d",
    "contacts_90d",
    "contacts_365d",
    "calls_90d",
    "calls_365d",
    "sales_rep_contacts_365d",
    "marketing_contacts_365d",
    "digital_sessions_90d",
    "digital_sessions_365d",
    "voc_contacts_365d",
    "complaint_calls_365d",
    "unresolved_contacts_365d",
    "complaints_90d",
    "complaints_365d",
    "complaints_open",
    "avg_hours_to_resolve",
    "max_complaint_severity",
    "has_nps",
    "nps_last",
    "nps_avg_365d",
    "csat_avg_365d",
    "surveys_365d",
    "campaign_touches_365d",
    "campaign_open_rate",
    "campaign_click_rate",
    "campaign_conversions_365d",
    "has_credit",
    "credit_grade_last",
    "days_past_due_last",
    "max_days_past_due_6m",
    "points_balance_last",
    "profit_12m",
    "referrals_made",
)

# Human wording for reason codes: (feature, reads as) — "high" or "low" is added by direction.
FEATURE_LABELS: dict[str, str] = {
    "tenure_days": "tenure",
    "recency_days": "days since last purchase",
    "days_since_first_purchase": "days since first purchase",
    "orders_total": "lifetime orders",
    "orders_30d": "orders in last 30 days",
    "orders_90d": "orders in last 3 months",
    "orders_180d": "orders in last 6 months",
    "orders_365d": "orders in last 12 months",
    "net_sales_90d": "spend in last 3 months",
    "net_sales_365d": "spend in last 12 months",
    "avg_order_value_365d": "average order value",
    "avg_gap_days": "usual days between orders",
    "recency_to_gap": "silence vs usual gap",
    "trend_orders_3m": "3-month order trend",
    "trend_orders_6m": "6-month order trend",
    "trend_orders_12m": "12-month order trend",
    "trend_sales_3m": "3-month spend trend",
    "trend_sales_6m": "6-month spend trend",
    "trend_sales_12m": "12-month spend trend",
    "share_store_365d": "store share of orders",
    "share_web_365d": "web share of orders",
    "share_app_365d": "app share of orders",
    "return_line_share_365d": "share of returned lines",
    "discount_share_365d": "discount share",
    "contacts_90d": "contacts in last 3 months",
    "contacts_365d": "contacts in last 12 months",
    "calls_90d": "calls in last 3 months",
    "calls_365d": "calls in last 12 months",
    "sales_rep_contacts_365d": "sales-rep contacts",
    "marketing_contacts_365d": "marketing contacts",
    "digital_sessions_90d": "web/app sessions in last 3 months",
    "digital_sessions_365d": "web/app sessions in last 12 months",
    "voc_contacts_365d": "VOC cases",
    "complaint_calls_365d": "complaint or cancel calls",
    "unresolved_contacts_365d": "unresolved contacts",
    "complaints_90d": "complaints in last 3 months",
    "complaints_365d": "complaints in last 12 months",
    "complaints_open": "open complaints",
    "avg_hours_to_resolve": "hours to resolve complaints",
    "max_complaint_severity": "complaint severity",
    "has_nps": "answered NPS",
    "nps_last": "latest NPS",
    "nps_avg_365d": "average NPS",
    "csat_avg_365d": "average CSAT",
    "surveys_365d": "survey responses",
    "campaign_touches_365d": "campaign touches",
    "campaign_open_rate": "campaign open rate",
    "campaign_click_rate": "campaign click rate",
    "campaign_conversions_365d": "campaign conversions",
    "has_credit": "has credit record",
    "credit_grade_last": "credit grade number (10 = worst)",
    "days_past_due_last": "days past due",
    "max_days_past_due_6m": "worst days past due (6 months)",
    "points_balance_last": "points balance",
    "profit_12m": "12-month profit",
    "referrals_made": "referrals made",
}

_FEATURE_SQL = """
with
{sample}versions as (
    select
        c.customer_id,
        c.region,
        c.signup_channel,
        c.signup_date,
        c.closed_at,
        c.valid_from,
        row_number() over (
            partition by c.customer_id
            order by (c.valid_from < $as_of::date) desc,
                     case when c.valid_from < $as_of::date then c.valid_from end desc,
                     c.valid_from asc
        ) as version_rank
    from marts.dim_customer as c
    where c.customer_key <> -1 and c.customer_id is not null{only}
),
closed as (
    select customer_id, bool_or(closed_at < $as_of::date) as closed_before
    from versions
    group by customer_id
),
population as (
    select v.customer_id, v.region, v.signup_channel, v.signup_date,
           coalesce(closed.closed_before, false) as is_closed
    from versions as v
    join closed using (customer_id)
    where v.version_rank = 1
      and (v.signup_date is null or v.signup_date < $as_of::date)
),
orders as (
    select
        s.customer_id,
        s.order_id,
        min(s.date_day) as day,
        any_value(s.sales_channel) as channel,
        sum(s.net_sales_krw) as net_sales,
        sum(s.discount_krw) as discount,
        sum(s.gross_sales_krw) as gross,
        bool_or(not s.is_return and s.net_sales_krw > 0) as is_purchase,
        count(*) filter (where s.is_return) as return_lines,
        count(*) as lines
    from marts.fct_sales as s
    where s.customer_id is not null and s.date_day < $as_of::date{only}
    group by s.customer_id, s.order_id
),
sales as (
    select
        o.customer_id,
        max(o.day) filter (where o.is_purchase) as last_purchase,
        min(o.day) filter (where o.is_purchase) as first_purchase,
        count(*) filter (where o.is_purchase) as orders_total,
        count(*) filter (where o.is_purchase and o.day >= $as_of::date - 30) as orders_30d,
        count(*) filter (where o.is_purchase and o.day >= $as_of::date - 90) as orders_90d,
        count(*) filter (where o.is_purchase and o.day >= $as_of::date - 180) as orders_180d,
        count(*) filter (where o.is_purchase and o.day >= $as_of::date - 365) as orders_365d,
        count(*) filter (where o.is_purchase and o.day >= $as_of::date - $active_days::integer) as orders_active,
        count(*) filter (
            where o.is_purchase and o.day >= $as_of::date - 180 and o.day < $as_of::date - 90
        ) as orders_prev_90d,
        count(*) filter (
            where o.is_purchase and o.day >= $as_of::date - 365 and o.day < $as_of::date - 180
        ) as orders_prev_180d,
        count(*) filter (
            where o.is_purchase and o.day >= $as_of::date - 730 and o.day < $as_of::date - 365
        ) as orders_prev_365d,
        coalesce(sum(o.net_sales) filter (where o.day >= $as_of::date - 90), 0) as net_sales_90d,
        coalesce(sum(o.net_sales) filter (where o.day >= $as_of::date - 180), 0) as net_sales_180d,
        coalesce(sum(o.net_sales) filter (where o.day >= $as_of::date - 365), 0) as net_sales_365d,
        coalesce(sum(o.net_sales) filter (
            where o.day >= $as_of::date - 180 and o.day < $as_of::date - 90), 0) as net_sales_prev_90d,
        coalesce(sum(o.net_sales) filter (
            where o.day >= $as_of::date - 365 and o.day < $as_of::date - 180), 0) as net_sales_prev_180d,
        coalesce(sum(o.net_sales) filter (
            where o.day >= $as_of::date - 730 and o.day < $as_of::date - 365), 0) as net_sales_prev_365d,
        count(*) filter (
            where o.is_purchase and o.day >= $as_of::date - 365 and o.channel = 'store') as store_orders_365d,
        count(*) filter (
            where o.is_purchase and o.day >= $as_of::date - 365 and o.channel = 'web') as web_orders_365d,
        count(*) filter (
            where o.is_purchase and o.day >= $as_of::date - 365 and o.channel = 'app') as app_orders_365d,
        coalesce(sum(o.return_lines) filter (where o.day >= $as_of::date - 365), 0) as return_lines_365d,
        coalesce(sum(o.lines) filter (where o.day >= $as_of::date - 365), 0) as lines_365d,
        coalesce(sum(o.discount) filter (where o.day >= $as_of::date - 365), 0) as discount_365d,
        coalesce(sum(o.gross) filter (where o.day >= $as_of::date - 365), 0) as gross_365d
    from orders as o
    group by o.customer_id
),
contacts as (
    select
        c.customer_id,
        count(*) filter (where c.date_day >= $as_of::date - 90) as contacts_90d,
        count(*) filter (where c.date_day >= $as_of::date - 365) as contacts_365d,
        count(*) filter (
            where c.date_day >= $as_of::date - 90 and c.contact_channel = 'call_center') as calls_90d,
        count(*) filter (
            where c.date_day >= $as_of::date - 365 and c.contact_channel = 'call_center') as calls_365d,
        count(*) filter (
            where c.date_day >= $as_of::date - 365 and c.contact_channel = 'sales_rep'
        ) as sales_rep_contacts_365d,
        count(*) filter (
            where c.date_day >= $as_of::date - 365 and c.contact_channel in {marketing}
        ) as marketing_contacts_365d,
        count(*) filter (
            where c.date_day >= $as_of::date - 90 and c.contact_channel in {digital}
        ) as digital_sessions_90d,
        count(*) filter (
            where c.date_day >= $as_of::date - 365 and c.contact_channel in {digital}
        ) as digital_sessions_365d,
        count(*) filter (
            where c.date_day >= $as_of::date - 365 and c.contact_channel = 'voc') as voc_contacts_365d,
        count(*) filter (
            where c.date_day >= $as_of::date - 365 and c.reason in ('complaint', 'cancel')
        ) as complaint_calls_365d,
        count(*) filter (
            where c.date_day >= $as_of::date - 365 and c.resolution in ('unresolved', 'escalated')
        ) as unresolved_contacts_365d
    from marts.fct_contacts as c
    where c.customer_id is not null and c.date_day < $as_of::date and c.date_day >= $as_of::date - 365{only}
    group by c.customer_id
),
feedback as (
    select
        f.customer_id,
        count(*) filter (
            where f.is_complaint and f.received_at >= $as_of::date - 90) as complaints_90d,
        count(*) filter (
            where f.is_complaint and f.received_at >= $as_of::date - 365) as complaints_365d,
        count(*) filter (
            where f.is_complaint and f.received_at >= $as_of::date - 365
              and not coalesce(
                  f.resolved and f.received_at
                      + to_seconds(cast(f.hours_to_resolve * 3600 as bigint)) < $as_of::date,
                  false)
        ) as complaints_open,
        avg(f.hours_to_resolve) filter (
            where f.is_complaint and f.received_at >= $as_of::date - 365 and f.resolved
              and f.received_at + to_seconds(cast(f.hours_to_resolve * 3600 as bigint)) < $as_of::date
        ) as avg_hours_to_resolve,
        max(f.severity) filter (
            where f.is_complaint and f.received_at >= $as_of::date - 365) as max_complaint_severity,
        arg_max(f.score, f.received_at) filter (
            where f.feedback_type = 'nps' and f.score is not null) as nps_last,
        arg_max(f.score, f.received_at) filter (
            where f.feedback_type = 'nps' and f.score is not null
              and f.received_at >= $as_of::date - 365) as nps_last_365d,
        avg(f.score) filter (
            where f.feedback_type = 'nps' and f.received_at >= $as_of::date - 365) as nps_avg_365d,
        avg(f.score) filter (
            where f.feedback_type = 'csat' and f.received_at >= $as_of::date - 365) as csat_avg_365d,
        count(*) filter (
            where f.feedback_type in ('nps', 'csat') and f.received_at >= $as_of::date - 365
        ) as surveys_365d,
        count(*) filter (where f.voc_type = 'suggestion') as suggestions
    from marts.fct_feedback as f
    where f.customer_id is not null and f.received_at < $as_of::date{only}
    group by f.customer_id
),
campaigns as (
    select
        t.customer_id,
        count(*) filter (where t.sent_at >= $as_of::date - 365) as campaign_touches_365d,
        count(*) filter (where t.sent_at < $as_of::date - {lag} and t.sent_at >= $as_of::date - 365) as mature,
        count(*) filter (
            where t.sent_at < $as_of::date - {lag} and t.sent_at >= $as_of::date - 365 and t.opened) as opens,
        count(*) filter (
            where t.sent_at < $as_of::date - {lag} and t.sent_at >= $as_of::date - 365 and t.clicked) as clicks,
        count(*) filter (
            where t.sent_at < $as_of::date - {lag} and t.sent_at >= $as_of::date - 365 and t.converted
        ) as campaign_conversions_365d
    from marts.fct_campaign_touches as t
    where t.customer_id is not null and t.assigned_group = 'treatment'
      and t.sent_at is not null and t.sent_at < $as_of::date
      and coalesce(t.delivered, true){only}
    group by t.customer_id
),
finance as (
    select
        m.customer_id,
        arg_max(m.credit_grade, m.month_start) filter (where m.credit_grade is not null)
            as credit_grade_last,
        arg_max(m.days_past_due, m.month_start) filter (where m.days_past_due is not null)
            as days_past_due_last,
        max(m.days_past_due) filter (where m.month_start >= date_trunc('month', $as_of::date)::date - interval 6 month)
            as max_days_past_due_6m,
        arg_max(m.points_balance, m.month_start) filter (where m.points_balance is not null)
            as points_balance_last,
        sum(coalesce(m.profit_krw, m.margin_krw - coalesce(m.cost_to_serve_krw, 0)))
            filter (where m.month_start >= date_trunc('month', $as_of::date)::date - interval 12 month) as profit_12m,
        count(*) filter (where m.credit_grade is not null) > 0 as has_credit
    from marts.fct_customer_month as m
    where m.customer_id is not null and m.month_start < date_trunc('month', $as_of::date)::date
      and m.month_start >= date_trunc('month', $as_of::date)::date - interval 12 month{only}
    group by m.customer_id
),
referrals as (
    {referrals}
),
final as (
    select
        pop.customer_id,
        $as_of::date as as_of_date,
        pop.region,
        pop.signup_channel,
        coalesce(s.orders_active, 0) > 0 and not pop.is_closed as is_active,
        pop.is_closed,
        case
            when s.store_orders_365d >= greatest(s.web_orders_365d, s.app_orders_365d)
                and s.store_orders_365d > 0 then 'store'
            when s.web_orders_365d >= s.app_orders_365d and s.web_orders_365d > 0 then 'web'
            when s.app_orders_365d > 0 then 'app'
            else 'none'
        end as main_channel,
        s.last_purchase,
        coalesce(fb.nps_last_365d, -1) as nps_last_365d,
        coalesce(fb.suggestions, 0) as suggestions,
        -- model inputs
        ($as_of::date - pop.signup_date)::double as tenure_days,
        ($as_of::date - s.last_purchase)::double as recency_days,
        ($as_of::date - s.first_purchase)::double as days_since_first_purchase,
        coalesce(s.orders_total, 0)::double as orders_total,
        coalesce(s.orders_30d, 0)::double as orders_30d,
        coalesce(s.orders_90d, 0)::double as orders_90d,
        coalesce(s.orders_180d, 0)::double as orders_180d,
        coalesce(s.orders_365d, 0)::double as orders_365d,
        coalesce(s.net_sales_90d, 0)::double as net_sales_90d,
        coalesce(s.net_sales_365d, 0)::double as net_sales_365d,
        coalesce(s.net_sales_365d / nullif(s.orders_365d, 0), 0)::double as avg_order_value_365d,
        ((s.last_purchase - s.first_purchase) / nullif(s.orders_total - 1, 0))::double as avg_gap_days,
        (($as_of::date - s.last_purchase)
            / nullif((s.last_purchase - s.first_purchase) / nullif(s.orders_total - 1, 0), 0)
        )::double as recency_to_gap,
        case when $as_of::date - 180 >= $data_start::date then ln((coalesce(s.orders_90d, 0) + 1) / (coalesce(s.orders_prev_90d, 0) + 1)) end as trend_orders_3m,
        case when $as_of::date - 365 >= $data_start::date then ln((coalesce(s.orders_180d, 0) + 1) / (coalesce(s.orders_prev_180d, 0) + 1)) end as trend_orders_6m,
        case when $as_of::date - 730 >= $data_start::date then ln((coalesce(s.orders_365d, 0) + 1) / (coalesce(s.orders_prev_365d, 0) + 1)) end as trend_orders_12m,
        case when $as_of::date - 180 >= $data_start::date then (sign(coalesce(s.net_sales_90d, 0)) * ln(1 + abs(coalesce(s.net_sales_90d, 0)))
         - sign(coalesce(s.net_sales_prev_90d, 0)) * ln(1 + abs(coalesce(s.net_sales_prev_90d, 0)))
        ) end as trend_sales_3m,
        case when $as_of::date - 365 >= $data_start::date then (sign(coalesce(s.net_sales_180d, 0)) * ln(1 + abs(coalesce(s.net_sales_180d, 0)))
         - sign(coalesce(s.net_sales_prev_180d, 0)) * ln(1 + abs(coalesce(s.net_sales_prev_180d, 0)))
        ) end as trend_sales_6m,
        case when $as_of::date - 730 >= $data_start::date then (sign(coalesce(s.net_sales_365d, 0)) * ln(1 + abs(coalesce(s.net_sales_365d, 0)))
         - sign(coalesce(s.net_sales_prev_365d, 0)) * ln(1 + abs(coalesce(s.net_sales_prev_365d, 0)))
        ) end as trend_sales_12m,
        coalesce(s.store_orders_365d / nullif(s.orders_365d, 0), 0)::double as share_store_365d,
        coalesce(s.web_orders_365d / nullif(s.orders_365d, 0), 0)::double as share_web_365d,
        coalesce(s.app_orders_365d / nullif(s.orders_365d, 0), 0)::double as share_app_365d,
        coalesce(s.return_lines_365d / nullif(s.lines_365d, 0), 0)::double as return_line_share_365d,
        coalesce(s.discount_365d / nullif(s.gross_365d, 0), 0)::double as discount_share_365d,
        coalesce(c.contacts_90d, 0)::double as contacts_90d,
        coalesce(c.contacts_365d, 0)::double as contacts_365d,
        coalesce(c.calls_90d, 0)::double as calls_90d,
        coalesce(c.calls_365d, 0)::double as calls_365d,
        coalesce(c.sales_rep_contacts_365d, 0)::double as sales_rep_contacts_365d,
        coalesce(c.marketing_contacts_365d, 0)::double as marketing_contacts_365d,
        coalesce(c.digital_sessions_90d, 0)::double as digital_sessions_90d,
        coalesce(c.digital_sessions_365d, 0)::double as digital_sessions_365d,
        coalesce(c.voc_contacts_365d, 0)::double as voc_contacts_365d,
        coalesce(c.complaint_calls_365d, 0)::double as complaint_calls_365d,
        coalesce(c.unresolved_contacts_365d, 0)::double as unresolved_contacts_365d,
        coalesce(fb.complaints_90d, 0)::double as complaints_90d,
        coalesce(fb.complaints_365d, 0)::double as complaints_365d,
        coalesce(fb.complaints_open, 0)::double as complaints_open,
        fb.avg_hours_to_resolve::double as avg_hours_to_resolve,
        coalesce(fb.max_complaint_severity, 0)::double as max_complaint_severity,
        (fb.nps_last is not null)::double as has_nps,
        fb.nps_last::double as nps_last,
        fb.nps_avg_365d::double as nps_avg_365d,
        fb.csat_avg_365d::double as csat_avg_365d,
        coalesce(fb.surveys_365d, 0)::double as surveys_365d,
        coalesce(cp.campaign_touches_365d, 0)::double as campaign_touches_365d,
        coalesce(cp.opens / nullif(cp.mature, 0), 0)::double as campaign_open_rate,
        coalesce(cp.clicks / nullif(cp.mature, 0), 0)::double as campaign_click_rate,
        coalesce(cp.campaign_conversions_365d, 0)::double as campaign_conversions_365d,
        coalesce(fi.has_credit, false)::double as has_credit,
        fi.credit_grade_last::double as credit_grade_last,
        coalesce(fi.days_past_due_last, 0)::double as days_past_due_last,
        coalesce(fi.max_days_past_due_6m, 0)::double as max_days_past_due_6m,
        coalesce(fi.points_balance_last, 0)::double as points_balance_last,
        coalesce(fi.profit_12m, 0)::double as profit_12m,
        coalesce(r.referrals_made, 0)::double as referrals_made
    from population as pop
    left join sales as s using (customer_id)
    left join contacts as c using (customer_id)
    left join feedback as fb using (customer_id)
    left join campaigns as cp using (customer_id)
    left join finance as fi using (customer_id)
    left join referrals as r using (customer_id)
)
select * from final order by customer_id
"""

_REFERRALS_SQL = """
    select r.referrer_customer_id as customer_id, count(distinct r.referred_customer_id) as referrals_made
    from raw.referrals as r
    where r.referred_customer_id is not null
      and coalesce(r.converted_at, r.referred_at)::date < $as_of::date
    group by r.referrer_customer_id
"""

_SAMPLE_CTE = "training_sample as (select unnest($customers::varchar[]) as customer_id),\n"
_IN_SAMPLE = "\n      and customer_id in (select customer_id from training_sample)"

_NO_REFERRALS_SQL = "select null::varchar as customer_id, 0::bigint as referrals_made where false"

_LABEL_SQL = """
with
params as (select $as_of::date as as_of, $as_of::date + $window::integer as window_end),
bought as (
    select distinct s.customer_id
    from marts.fct_sales as s, params as p
    where s.customer_id is not null and not s.is_return and s.net_sales_krw > 0
      and s.date_day >= p.as_of and s.date_day < p.window_end
),
closed as (
    select distinct c.customer_id
    from marts.dim_customer as c, params as p
    where c.closed_at >= p.as_of and c.closed_at < p.window_end
)
select
    ids.customer_id,
    (b.customer_id is null or cl.customer_id is not null) as churned
from (select unnest($ids::varchar[]) as customer_id) as ids
left join bought as b using (customer_id)
left join closed as cl using (customer_id)
"""


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def _check_marts(con: duckdb.DuckDBPyConnection) -> None:
    needed = ("dim_customer", "fct_sales", "fct_contacts", "fct_feedback", "fct_campaign_touches")
    missing = [t for t in (*needed, "fct_customer_month") if not _has_table(con, "marts", t)]
    if missing:
        raise RuntimeError(
            f"features need marts.{', marts.'.join(missing)} in {_db_path(con)}: "
            "run `crmwh build` (dbt) before training or scoring"
        )


def _db_path(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return str(row[0]) if row and row[0] else "the in-memory database"


def feature_sql(con: duckdb.DuckDBPyConnection, sampled: bool = False) -> str:
    """The feature query for this database (referrals are optional: a fresh warehouse may lack them).

    ``sampled`` restricts the population and every fact scan to the ids bound as ``$customers``
    (a training sample): a customer's features read only that customer's rows, so a sampled
    customer's row is the same as in the full table, and the scans skip everyone else.
    """
    referrals = _REFERRALS_SQL if _has_table(con, "raw", "referrals") else _NO_REFERRALS_SQL
    return _FEATURE_SQL.format(
        marketing=str(MARKETING_CHANNELS),
        digital=str(DIGITAL_CHANNELS),
        lag=RESPONSE_LAG_DAYS,
        referrals=referrals,
        sample=_SAMPLE_CTE if sampled else "",
        only=_IN_SAMPLE if sampled else "",
    )


def build_features(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    active_window_days: int = 365,
    customers: list[str] | None = None,
) -> pd.DataFrame:
    """One row per known customer with every feature as of ``as_of`` (data strictly before it).

    ``is_active`` (a purchase in the ``active_window_days`` before the date) marks the customers
    the churn label is defined for; the others are scored for segments only. ``customers``
    limits the table to those ids (training's sample); None means every customer.
    """
    _check_marts(con)
    # The first sales day before the date: trends need their comparison window inside the data.
    first = con.execute("select min(date_day) from marts.fct_sales where date_day < ?", [as_of]).fetchone()[0]
    params: dict[str, object] = {
        "as_of": as_of,
        "active_days": active_window_days,
        "data_start": first or as_of,
    }
    if customers is not None:
        params["customers"] = list(customers)
    frame = con.execute(feature_sql(con, sampled=customers is not None), params).df()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    return frame


def build_labels(
    con: duckdb.DuckDBPyConnection, as_of: date, customer_ids: list[str], window_days: int = 90
) -> pd.Series:
    """The MARTS.md churn label for the given customers: no purchase in ``[as_of, as_of + window)``,
    or the account closed in that window. Callers pass only customers active at ``as_of``.
    """
    frame = con.execute(_LABEL_SQL, {"as_of": as_of, "window": window_days, "ids": list(customer_ids)}).df()
    return frame.set_index("customer_id")["churned"].reindex(customer_ids).astype(bool)


def data_through(con: duckdb.DuckDBPyConnection) -> date:
    """The last sales day in the marts: the horizon up to which outcomes are observable."""
    row = con.execute("select max(date_day) from marts.fct_sales").fetchone()
    if not row or row[0] is None:
        raise RuntimeError(f"marts.fct_sales in {_db_path(con)} is empty: load and build data first")
    return row[0]


def default_cutoffs(last_day: date, window_days: int, count: int, step_days: int = 30) -> list[date]:
    """Monthly-spaced cut-offs whose label windows are fully observed by ``last_day``, oldest first."""
    latest = last_day + timedelta(days=1) - timedelta(days=window_days)
    return [latest - timedelta(days=step_days * i) for i in range(count)][::-1]
