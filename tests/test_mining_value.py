"""The SQL purchase summary reconciles with clv.summarize; value scores are well-formed."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from mining import clv
from mining.metrics import lift_at_top, score_ranking
from mining.synth import synthesize_marts
from mining.value import fit_value_models, purchase_summary, value_scores

AS_OF = date(2024, 10, 1)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    con = duckdb.connect(str(tmp_path_factory.mktemp("value") / "value.duckdb"))
    synthesize_marts(con, 400, date(2024, 1, 1), 365, seed=5)
    yield con
    con.close()


def test_sql_summary_equals_clv_summarize(con):
    ours = purchase_summary(con, AS_OF)
    lines = con.execute(
        """select customer_id, date_day, net_sales_krw from marts.fct_sales
        where customer_id is not null and not is_return and net_sales_krw > 0 and date_day < ?""",
        [AS_OF],
    ).df()
    theirs = clv.summarize(
        lines,
        "customer_id",
        "date_day",
        "net_sales_krw",
        calibration_end=AS_OF - timedelta(days=1),
        period="month",
    )
    assert ours.index.tolist() == theirs.index.tolist()
    assert (ours["frequency"].to_numpy() == theirs["frequency"].to_numpy()).all()
    for column in ("recency", "T", "monetary_value"):
        np.testing.assert_allclose(
            ours[column].to_numpy(), theirs[column].to_numpy(), rtol=1e-12, err_msg=column
        )


def test_value_scores_are_bounded_and_ordered(con):
    summary = purchase_summary(con, AS_OF)
    scores = value_scores(summary, fit_value_models(summary, seed=1), 0.01, seed=1, n_draws=50)
    assert scores.index.tolist() == summary.index.tolist()
    assert scores["p_alive"].between(0, 1).all()
    assert (scores["expected_purchases_90d"] >= 0).all()
    assert (scores["clv_12m_p10_krw"] <= scores["clv_12m_p90_krw"] + 1e-9).all()


def test_lift_and_ranking_figures():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    score = np.arange(10, 0, -1, dtype=float)  # the first row scores highest
    # top decile = 1 row (a churner): rate 1 / overall 0.2 = 5
    assert lift_at_top(y, score) == pytest.approx(5.0)
    figures = score_ranking(y, score, np.full(10, 0.2))
    assert figures["brier"] == pytest.approx(0.16)  # 0.2·0.64 + 0.8·0.04
    assert figures["auc"] == pytest.approx(0.5)  # churners at rank 1 and 10
    assert figures["calibration_error"] == pytest.approx(0.0)
    assert pd.isna(score_ranking(np.zeros(4), np.arange(4.0))["auc"])
