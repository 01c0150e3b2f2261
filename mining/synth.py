"""Mart-shaped synthetic data written straight into DuckDB, for benchmarks at scale.

Why not the generator: the benchmark needs 1,000,000 customers in seconds, and the full path
(files → ingest → dbt) at that scale takes far longer than the mining step being measured.
This writes the mart tables the features read (the column contract of the marts), with a
latent lifetime per customer so churn has a learnable signal: purchases thin out, calls and
complaints rise and NPS drops in the months before a customer's true churn date. The truth is
kept in ``truth.customers`` (customer_id, true_churn_date) for scoring the model against it.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb


def synthesize_marts(
    con: duckdb.DuckDBPyConnection, customers: int, start: date, days: int, seed: int = 42
) -> dict[str, int]:
    """Create marts.* (+ raw.referrals, truth.customers) for ``customers`` over ``days`` from ``start``.

    Returns row counts per table. Existing tables of those names are replaced.
    """
    end = start + timedelta(days=days)
    con.execute(f"select setseed({(seed % 1000) / 1000.0})")

    def run(sql: str, params: dict[str, object] | None = None) -> None:
        used = {k: v for k, v in (params or {}).items() if f"${k}" in sql}
        con.execute(sql, used)

    for schema in ("marts", "raw", "truth"):
        con.execute(f"create schema if not exists {schema}")
    p = {"start": start, "end": end, "n": customers}
    run(
        """
        create or replace temp table synth_c as
        with base as (
            select
                i,
                'C' || lpad((i + 1)::varchar, 7, '0') as customer_id,
                ($start::date - 400 + floor(random() * (400 + datediff('day', $start::date, $end::date) - 60))::int)
                    as signup_date,
                exp(ln(1.0 / 35) + 0.7 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) as rate,
                -ln(1 - random()) * 600 as life,
                random() as u_channel,
                random() as u_region,
                random() as u_close,
                random() as u_value
            from range($n::bigint) as t(i)
        )
        select *,
            signup_date + life::int as churn_day,
            greatest(signup_date, $start::date) as a0,
            least(signup_date + life::int, $end::date) as a1,
            case when u_channel < 0.5 then 'store' when u_channel < 0.75 then 'web' else 'app' end
                as pref_channel,
            ['Seoul', 'Busan', 'Incheon', 'Daegu', 'Gyeonggi', 'Gwangju'][1 + floor(u_region * 6)::int]
                as region
        from base
        """,
        p,
    )
    run(
        """
        create or replace table marts.dim_customer as
        select
            (i + 1)::bigint as customer_key, customer_id,
            signup_date::timestamp as valid_from, timestamp '9999-12-31' as valid_to, true as is_current,
            'unknown' as age_band, 'U' as gender, 'unknown' as income_band, 2 as household_size,
            'unknown' as education, 'unknown' as occupation, region, region as city, signup_date,
            case when pref_channel = 'store' then 'store' else 'online' end as signup_channel,
            true as marketing_opt_in,
            case when u_close < 0.3 and churn_day + 30 < $end::date then 'closed' else 'active' end as status,
            case when u_close < 0.3 and churn_day + 30 < $end::date then churn_day + 30 end as closed_at,
            'unscored' as pyramid_tier, 'unscored' as relationship_stage
        from synth_c
        union all
        select -1, null, timestamp '1900-01-01', timestamp '9999-12-31', true, null, null, null, null,
               null, null, null, null, null, null, null, null, null, 'unscored', 'unscored'
        """,
        p,
    )
    run(
        """
        create or replace table truth.customers as
        select customer_id, case when churn_day < $end::date then churn_day end as true_churn_date
        from synth_c
        """,
        p,
    )
    run(
        """
        create or replace table marts.fct_sales as
        with n as (
            select *, floor(rate * (a1 - a0) * (0.5 + random()))::int as n_orders
            from synth_c where a1 > a0
        ),
        o as (
            select customer_id, i, pref_channel, churn_day, u_value, a0, a1, unnest(range(n_orders)) as k
            from n
        ),
        d as (
            select *, a0 + floor(random() * (a1 - a0))::int as date_day, random() as u
            from o
        )
        select
            customer_id || '-' || k || '-1' as sales_line_id,
            customer_id || '-' || k as order_id,
            1 as line_no,
            date_day + interval 12 hour as sold_at,
            date_day,
            strftime(date_day, '%Y-%m') as month,
            case when u < 0.8 then pref_channel when u < 0.9 then 'web' else 'store' end as sales_channel,
            customer_id,
            (i + 1)::bigint as customer_key,
            'P' || lpad((1 + floor(random() * 500)::int)::varchar, 5, '0') as sku,
            1::bigint as product_key,
            'S001' as store_id,
            null::varchar as rep_id,
            1 + floor(random() * 3)::int as qty,
            (10000 + floor(u_value * 90000))::bigint as unit_price_krw,
            0::bigint as discount_krw,
            (10000 + floor(u_value * 90000))::bigint as gross_sales_krw,
            case when random() < 0.03 then -(10000 + floor(u_value * 90000))::bigint
                 else (10000 + floor(u_value * 90000))::bigint end as net_sales_krw,
            (6000 + floor(u_value * 54000))::bigint as cost_krw,
            (4000 + floor(u_value * 36000))::bigint as margin_krw,
            false as is_return,
            'paid' as order_status
        from d
        where not (date_day >= churn_day - 120 and u < 0.6)
        """,
        p,
    )
    con.execute("update marts.fct_sales set is_return = true where net_sales_krw < 0")
    run(
        """
        create or replace table marts.fct_contacts as
        with n as (
            select *,
                floor((a1 - a0) / 150.0 * (0.5 + random()))::int as n_calls,
                floor(greatest(0, least(churn_day, $end::date) - greatest(churn_day - 90, a0)) / 20.0
                      * random() * 2)::int as n_pre,
                case when pref_channel = 'store' then 0
                     else floor((a1 - a0) / 60.0 * (0.5 + random()))::int end as n_digital
            from synth_c where a1 > a0
        ),
        calls as (
            select customer_id, i, a0 + floor(random() * (a1 - a0))::int as day,
                   'call_center' as ch, 'order' as reason
            from (select *, unnest(range(n_calls)) from n)
            union all
            select customer_id, i, greatest(churn_day - 90, a0) + floor(random() * 90)::int as day,
                   'call_center', 'complaint'
            from (select *, unnest(range(n_pre)) from n)
            union all
            select customer_id, i, a0 + floor(random() * (a1 - a0))::int, pref_channel, null
            from (select *, unnest(range(n_digital)) from n)
        )
        select
            'K' || row_number() over () as contact_id,
            day + interval 10 hour as contact_at, day as date_day, strftime(day, '%Y-%m') as month,
            customer_id, (i + 1)::bigint as customer_key, ch as contact_channel, 'inbound' as direction,
            reason, case when reason = 'complaint' and random() < 0.5 then 'unresolved' else 'resolved' end
                as resolution,
            120 as duration_s, 500::bigint as cost_krw, 'id' as identified_by, 'synth' as source
        from calls where day < $end::date
        """,
        p,
    )
    run(
        """
        create or replace table marts.fct_feedback as
        with complaints as (
            select customer_id, customer_key, contact_at as received_at
            from marts.fct_contacts where reason = 'complaint' and random() < 0.5
        ),
        nps as (
            select c.customer_id, c.i, c.churn_day,
                   c.a0 + floor(random() * (c.a1 - c.a0))::int as day
            from synth_c as c where c.a1 > c.a0 and random() < 0.4
        )
        select 'F' || row_number() over () as feedback_id, * from (
            select 'voc' as feedback_type, customer_id, customer_key, received_at,
                   received_at::date as date_day, strftime(received_at, '%Y-%m') as month,
                   'complaint' as voc_type, 'service' as category, 2 as severity, null::double as score,
                   random() < 0.6 as resolved, 24.0 * (1 + random() * 5) as hours_to_resolve,
                   true as is_complaint
            from complaints
            union all
            select 'nps', customer_id, (i + 1)::bigint, day + interval 9 hour, day, strftime(day, '%Y-%m'),
                   null, null, null,
                   least(10, greatest(0, round(8.5 - case when day >= churn_day - 150 then 4 else 0 end
                                                + 2 * (random() - 0.5))))::double,
                   null, null, false
            from nps where day < $end::date
        )
        """,
        p,
    )
    run(
        """
        create or replace table marts.fct_campaign_touches as
        with n as (
            select *, floor((a1 - a0) / 90.0 * (0.5 + random()))::int as n_touch
            from synth_c where a1 > a0
        ),
        t as (select customer_id, i, churn_day, a0, a1, unnest(range(n_touch)) from n)
        select
            'T' || row_number() over () as touch_id, 'CMP0001' as campaign_id, customer_id,
            (i + 1)::bigint as customer_key, 'treatment' as assigned_group, true as delivered,
            random() < case when day >= churn_day - 90 then 0.1 else 0.35 end as opened,
            random() < 0.1 as clicked, random() < 0.03 as converted, 0::bigint as attributed_sales_krw,
            100::bigint as cost_krw, day + interval 8 hour as sent_at, strftime(day, '%Y-%m') as month
        from (select *, a0 + floor(random() * (a1 - a0))::int as day from t)
        """,
        p,
    )
    run(
        """
        create or replace table marts.fct_customer_month as
        with months as (
            select unnest(generate_series(date_trunc('month', $start::date)::date,
                                          ($end::date - 1), interval 1 month))::date as month_start
        ),
        cm as (
            select c.customer_id, c.i, c.churn_day, m.month_start
            from synth_c as c join months as m
              on m.month_start >= date_trunc('month', c.a0) and m.month_start < c.a1
        ),
        s as (
            select customer_id, date_trunc('month', date_day)::date as month_start,
                   count(distinct order_id) as purchases, sum(net_sales_krw) as net_sales_krw,
                   sum(margin_krw) as margin_krw, sum(cost_krw) as cogs_krw
            from marts.fct_sales group by all
        )
        select
            cm.customer_id, (cm.i + 1)::bigint as customer_key, strftime(cm.month_start, '%Y-%m') as month,
            cm.month_start, coalesce(s.purchases, 0) as purchases, coalesce(s.net_sales_krw, 0) as net_sales_krw,
            coalesce(s.margin_krw, 0) as margin_krw, coalesce(s.net_sales_krw, 0) as revenue_krw,
            coalesce(s.cogs_krw, 0) as cogs_krw, 3000::bigint as cost_to_serve_krw,
            coalesce(s.margin_krw, 0) - 3000 as profit_krw,
            0 as contacts, 0 as contacts_call_center, 0 as contacts_web, 0 as contacts_campaign,
            0 as complaints, null::double as nps, null::double as csat,
            1 + (hash(cm.customer_id) % 10)::int as credit_grade,
            case when cm.month_start >= cm.churn_day - 90 and random() < 0.3 then 30 else 0 end
                as days_past_due,
            (hash(cm.customer_id) % 5000)::bigint as points_balance
        from cm left join s using (customer_id, month_start)
        """,
        p,
    )
    run(
        """
        create or replace table raw.referrals as
        select 'RF' || row_number() over () as referral_id, customer_id as referrer_customer_id,
               'C9' || lpad(i::varchar, 7, '0') as referred_customer_id,
               (a0 + 10)::timestamp as referred_at, 'app' as channel, (a0 + 20)::timestamp as converted_at
        from synth_c where a1 > a0 + 30 and u_value > 0.98
        """
    )
    con.execute("drop table synth_c")
    tables = (
        "marts.dim_customer",
        "marts.fct_sales",
        "marts.fct_contacts",
        "marts.fct_feedback",
        "marts.fct_campaign_touches",
        "marts.fct_customer_month",
        "raw.referrals",
    )
    return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}


# The mart columns the mining code reads, with the contract's types (crmwh interfaces note).
MART_DDL: dict[str, str] = {
    "marts.dim_customer": """customer_key BIGINT, customer_id VARCHAR, valid_from TIMESTAMP, valid_to TIMESTAMP,
        is_current BOOLEAN, age_band VARCHAR, gender VARCHAR, income_band VARCHAR, household_size INTEGER,
        education VARCHAR, occupation VARCHAR, region VARCHAR, city VARCHAR, signup_date DATE,
        signup_channel VARCHAR, marketing_opt_in BOOLEAN, status VARCHAR, closed_at DATE,
        pyramid_tier VARCHAR, relationship_stage VARCHAR""",
    "marts.fct_sales": """sales_line_id VARCHAR, order_id VARCHAR, line_no INTEGER, sold_at TIMESTAMP, date_day DATE,
        month VARCHAR, sales_channel VARCHAR, customer_id VARCHAR, customer_key BIGINT, sku VARCHAR,
        product_key BIGINT, store_id VARCHAR, rep_id VARCHAR, qty INTEGER, unit_price_krw BIGINT,
        discount_krw BIGINT, gross_sales_krw BIGINT, net_sales_krw BIGINT, cost_krw BIGINT, margin_krw BIGINT,
        is_return BOOLEAN, order_status VARCHAR""",
    "marts.fct_contacts": """contact_id VARCHAR, contact_at TIMESTAMP, date_day DATE, month VARCHAR,
        customer_id VARCHAR, customer_key BIGINT, contact_channel VARCHAR, direction VARCHAR, reason VARCHAR,
        resolution VARCHAR, duration_s INTEGER, cost_krw BIGINT, identified_by VARCHAR, source VARCHAR""",
    "marts.fct_feedback": """feedback_id VARCHAR, feedback_type VARCHAR, customer_id VARCHAR, customer_key BIGINT,
        received_at TIMESTAMP, date_day DATE, month VARCHAR, voc_type VARCHAR, category VARCHAR,
        severity INTEGER, score DOUBLE, resolved BOOLEAN, hours_to_resolve DOUBLE, is_complaint BOOLEAN""",
    "marts.fct_campaign_touches": """touch_id VARCHAR, campaign_id VARCHAR, customer_id VARCHAR, customer_key BIGINT,
        assigned_group VARCHAR, delivered BOOLEAN, opened BOOLEAN, clicked BOOLEAN, converted BOOLEAN,
        attributed_sales_krw BIGINT, cost_krw BIGINT, sent_at TIMESTAMP, month VARCHAR""",
    "marts.fct_customer_month": """customer_id VARCHAR, customer_key BIGINT, month VARCHAR, month_start DATE,
        purchases BIGINT, net_sales_krw BIGINT, margin_krw BIGINT, revenue_krw BIGINT, cogs_krw BIGINT,
        cost_to_serve_krw BIGINT, profit_krw BIGINT, contacts BIGINT, contacts_call_center BIGINT,
        contacts_web BIGINT, contacts_campaign BIGINT, complaints BIGINT, nps DOUBLE, csat DOUBLE,
        credit_grade INTEGER, days_past_due INTEGER, points_balance BIGINT""",
    "raw.referrals": """referral_id VARCHAR, referrer_customer_id VARCHAR, referred_customer_id VARCHAR,
        referred_at TIMESTAMP, channel VARCHAR, converted_at TIMESTAMP""",
}


def create_mart_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Empty mart-shaped tables (and raw.referrals), for hand-built fixtures of the mining input."""
    for schema in ("marts", "raw"):
        con.execute(f"create schema if not exists {schema}")
    for table, ddl in MART_DDL.items():
        con.execute(f"create or replace table {table} ({ddl})")
