"""P(alive), expected purchases and 12-month CLV per customer, as of a date, via mining/clv.py.

Why the summary is computed in SQL here instead of ``clv.summarize``: at a million customers the
pandas group-by over every sales line dominates the scoring time, while DuckDB reduces the same
lines to (frequency, recency, T, monetary) in a second. The SQL follows ``clv.summarize``'s
conventions exactly (a transaction is a purchase day; frequency = repeat days; monetary = mean
of the repeat days' value; T measured to the last day before the as-of date), and a test
reconciles the two on a fixture.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from mining import clv as clv_models

# Months: 12 periods for a 12-month CLV keep a million customers' value a few seconds of arithmetic.
PERIOD = "month"
PERIOD_DAYS = clv_models.PERIOD_DAYS[PERIOD]

_SUMMARY_SQL = """
with
params as (select $as_of::date as as_of),
days as (
    select s.customer_id, s.date_day as day, sum(s.net_sales_krw) as amount
    from marts.fct_sales as s, params as p
    where s.customer_id is not null and s.date_day < p.as_of
      and not s.is_return and s.net_sales_krw > 0
    group by s.customer_id, s.date_day
),
per as (
    select
        d.customer_id,
        count(*) - 1 as frequency,
        min(d.day) as first_day,
        max(d.day) as last_day,
        sum(d.amount) as total,
        arg_min(d.amount, d.day) as first_amount
    from days as d
    group by d.customer_id
)
select
    customer_id,
    frequency,
    (last_day - first_day) / $period_days as recency,
    ((p.as_of - 1) - first_day) / $period_days as "T",
    case when frequency > 0 then (total - first_amount) / frequency else 0 end as monetary_value
from per, params as p
order by customer_id
"""


def purchase_summary(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """Per-customer (frequency, recency, T, monetary_value) in months, from purchases before ``as_of``."""
    frame = con.execute(_SUMMARY_SQL, {"as_of": as_of, "period_days": PERIOD_DAYS}).df()
    return frame.set_index("customer_id")


def fit_value_models(summary: pd.DataFrame, seed: int, max_rows: int = 0) -> dict[str, object]:
    """BG/NBD and Gamma-Gamma on the summary (a seeded sample of ``max_rows`` customers when it
    has more and ``max_rows`` > 0: population parameters are stable long before a million rows).

    Training passes the summary of its own customer sample (``settings.train_max_customers``).
    """
    fit_rows = summary[summary["T"] > 0]
    if 0 < max_rows < len(fit_rows):
        fit_rows = fit_rows.sample(n=max_rows, random_state=seed)
    bgnbd = clv_models.fit_bgnbd(fit_rows["frequency"], fit_rows["recency"], fit_rows["T"])
    repeat = fit_rows[(fit_rows["frequency"] > 0) & (fit_rows["monetary_value"] > 0)]
    gamma_gamma = clv_models.fit_gamma_gamma(repeat["frequency"], repeat["monetary_value"])
    return {"bgnbd": bgnbd, "gamma_gamma": gamma_gamma}


def value_scores(
    summary: pd.DataFrame,
    models: dict[str, object],
    monthly_discount_rate: float,
    seed: int,
    n_draws: int = 50,
) -> pd.DataFrame:
    """p_alive, expected_purchases_90d, clv_12m_krw and its p10/p90, indexed by customer_id.

    Customers without a purchase are absent (the models describe buyers). A customer whose first
    purchase was the day before the as-of date has T = 0 in ``clv.summarize``'s convention; the
    models need T > 0, so T is floored at one day (that customer was observed for that day).
    """
    if summary.empty:
        return pd.DataFrame(
            columns=["p_alive", "expected_purchases_90d", "clv_12m_krw", "clv_12m_p10_krw", "clv_12m_p90_krw"]
        )
    bgnbd = models["bgnbd"]
    monetary = summary["monetary_value"].clip(lower=0)
    # Gamma-Gamma needs a positive mean spend; one-time buyers get the population mean.
    values = clv_models.clv(
        bgnbd,  # type: ignore[arg-type]
        models["gamma_gamma"],  # type: ignore[arg-type]
        summary["frequency"],
        summary["recency"],
        summary["T"].clip(lower=1 / PERIOD_DAYS),
        monetary,
        horizon_periods=12,
        discount_rate_per_period=monthly_discount_rate,
        n_draws=n_draws,
        seed=seed,
    )
    expected_90d = bgnbd.expected_purchases(  # type: ignore[attr-defined]
        90 / PERIOD_DAYS,
        summary["frequency"].to_numpy(float),
        summary["recency"].to_numpy(float),
        summary["T"].clip(lower=1 / PERIOD_DAYS).to_numpy(float),
    )
    out = pd.DataFrame(
        {
            "p_alive": values["p_alive"].to_numpy(),
            "expected_purchases_90d": np.asarray(expected_90d, dtype=float),
            "clv_12m_krw": values["clv"].to_numpy(),
            "clv_12m_p10_krw": values["clv_p10"].to_numpy(),
            "clv_12m_p90_krw": values["clv_p90"].to_numpy(),
        },
        index=summary.index,
    )
    return out
