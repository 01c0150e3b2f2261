"""Write-back: ledger outcomes close exactly when the window ends, history is append-only,
migrations and realized quality are exact on a hand-built fixture."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from mining.synth import create_mart_tables
from mining.writeback import (
    HISTORY_EXTRA,
    SCORE_COLUMNS,
    append_history,
    close_outcomes,
    record_predictions,
    refresh_customer_scores,
    refresh_ledger_quality,
    refresh_tier_migration,
)

AS_OF = date(2024, 7, 1)  # window [2024-07-01, 2024-09-29): its last day is 2024-09-28


def _scores(as_of: date, rows: list[tuple], version: str = "churn-0001") -> pd.DataFrame:
    """rows: (customer_id, probability, tier, stage, recency_days)."""
    frame = pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "as_of_date": as_of,
            "churn_probability": [r[1] for r in rows],
            "churn_risk_band": ["high" if r[1] and r[1] >= 0.5 else "low" for r in rows],
            "top_churn_drivers": "",
            "pyramid_tier": [r[2] for r in rows],
            "relationship_stage": [r[3] for r in rows],
            "rfm_segment": "loyal",
            "segment_cluster": "k0",
            "model_version": version,
            "scored_at": pd.Timestamp("2024-07-01 06:00"),
            "rfm_code": "555",
            "is_active": True,
            "main_channel": ["store", "web", "store", "web"][: len(rows)],
            "region": "Seoul",
            "recency_days": [r[4] for r in rows],
        }
    )
    for name, _ in SCORE_COLUMNS + HISTORY_EXTRA:
        if name not in frame.columns:
            frame[name] = float("nan")
    return frame


@pytest.fixture()
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "ledger.duckdb"))
    create_mart_tables(con)
    for key, cid, closed in [(1, "C1", None), (2, "C2", None), (3, "C3", None), (4, "C4", date(2024, 8, 1))]:
        con.execute(
            "insert into marts.dim_customer (customer_key, customer_id, signup_date, closed_at) values (?, ?, ?, ?)",
            [key, cid, date(2023, 1, 1), closed],
        )
    sales = [
        ("C1", date(2024, 8, 15), 10_000, False),  # bought in the window
        ("C2", date(2024, 7, 10), -5_000, True),  # only a return: not a purchase
        ("C3", date(2024, 9, 29), 10_000, False),  # the day after the window
        ("C4", date(2024, 7, 20), 10_000, False),  # bought, but closed the account in the window
        (None, date(2024, 9, 27), 1_000, False),  # a non-member sale moves the data horizon
    ]
    for i, (cid, day, net, ret) in enumerate(sales):
        con.execute(
            """insert into marts.fct_sales (sales_line_id, order_id, line_no, date_day, customer_id,
                net_sales_krw, is_return) values (?, ?, 1, ?, ?, ?, ?)""",
            [f"L{i}", f"O{i}", day, cid, net, ret],
        )
    yield con
    con.close()


ROWS = [
    ("C1", 0.2, "gold", "client", 100.0),
    ("C2", 0.9, "iron", "customer", 50.0),
    ("C3", 0.6, "lead", "customer", 10.0),
    ("C4", 0.4, "lead", "client", 5.0),
]


def test_outcomes_join_only_after_the_window_has_closed(con):
    assert record_predictions(con, _scores(AS_OF, ROWS), window_days=90) == 4
    assert record_predictions(con, _scores(AS_OF, ROWS), window_days=90) == 0  # once per prediction
    assert close_outcomes(con, 90, through=date(2024, 9, 27)) == 0
    assert (
        con.execute(
            "select count(*) from mining.prediction_ledger where outcome_churned is not null"
        ).fetchone()[0]
        == 0
    )
    # data through 2024-09-28 cover the whole window
    assert close_outcomes(con, 90, through=date(2024, 9, 28)) == 4
    outcomes = dict(
        con.execute("select customer_id, outcome_churned from mining.prediction_ledger").fetchall()
    )
    assert outcomes == {"C1": False, "C2": True, "C3": True, "C4": True}
    assert close_outcomes(con, 90, through=date(2024, 12, 31)) == 0  # nothing left open


def test_default_horizon_is_the_last_sales_day(con):
    record_predictions(con, _scores(AS_OF, ROWS), window_days=90)
    # the last sales day in the marts is C3's 2024-09-29: past the window's last day
    assert close_outcomes(con, 90) == 4


def test_realized_quality_per_slice(con):
    record_predictions(con, _scores(AS_OF, ROWS), window_days=90)
    close_outcomes(con, 90, through=date(2024, 9, 28))
    refresh_ledger_quality(con)
    q = con.execute(
        """select slice_dimension, slice_value, n, churn_rate, auc, baseline_auc
        from mining.model_quality where source = 'ledger' order by 1, 2"""
    ).df()
    overall = q[q["slice_dimension"] == "overall"].iloc[0]
    assert overall["n"] == 4 and overall["churn_rate"] == pytest.approx(0.75)
    # the only non-churner (C1) has the lowest probability: AUC 1; but the longest silence: AUC 0
    assert overall["auc"] == pytest.approx(1.0)
    assert overall["baseline_auc"] == pytest.approx(0.0)
    channels = q[q["slice_dimension"] == "channel"].set_index("slice_value")["n"].to_dict()
    assert channels == {"store": 2, "web": 2}
    assert set(q["slice_dimension"]) == {"overall", "channel", "region", "tier"}


def test_history_is_append_only_and_idempotent(con):
    first = _scores(AS_OF, ROWS)
    assert append_history(con, first) == 4
    assert append_history(con, first) == 0
    later = _scores(
        date(2024, 8, 1),
        [
            ("C1", 0.1, "platinum", "advocate", 1.0),
            ("C2", 0.9, "iron", "customer", 80.0),
            ("C3", 0.7, "lead", "customer", 40.0),
        ],
    )
    assert append_history(con, later) == 3
    assert con.execute("select count(*) from mining.customer_score_history").fetchone()[0] == 7
    assert refresh_customer_scores(con) == 3
    assert con.execute("select distinct as_of_date from mining.customer_scores").fetchall() == [
        (date(2024, 8, 1),)
    ]
    refresh_tier_migration(con)
    moves = {
        (r[0], r[1], r[2]): r[3]
        for r in con.execute(
            "select dimension, from_value, to_value, customers from mining.tier_migration"
        ).fetchall()
    }
    assert moves == {
        ("pyramid_tier", "gold", "platinum"): 1,
        ("pyramid_tier", "iron", "iron"): 1,
        ("pyramid_tier", "lead", "lead"): 1,
        ("pyramid_tier", "lead", "gone"): 1,
        ("relationship_stage", "client", "advocate"): 1,
        ("relationship_stage", "customer", "customer"): 2,
        ("relationship_stage", "client", "gone"): 1,
    }
    period = con.execute("select distinct period_start, period_end from mining.tier_migration").fetchall()
    assert period == [(AS_OF, date(2024, 8, 1))]
    # scoring a date in between splits the period; the incremental refresh equals a full rebuild
    middle = _scores(
        date(2024, 7, 15), [("C1", 0.1, "gold", "advocate", 1.0), ("C2", 0.9, "iron", "customer", 1.0)]
    )
    append_history(con, middle)
    refresh_tier_migration(con, date(2024, 7, 15))
    query = "select * from mining.tier_migration order by all"
    incremental = con.execute(query).fetchall()
    refresh_tier_migration(con)
    assert con.execute(query).fetchall() == incremental
    periods = con.execute(
        "select distinct period_start, period_end from mining.tier_migration order by 1"
    ).fetchall()
    assert periods == [(AS_OF, date(2024, 7, 15)), (date(2024, 7, 15), date(2024, 8, 1))]
    assert dict(
        con.execute(
            """select to_value, customers from mining.tier_migration
            where period_start = ? and dimension = 'pyramid_tier' and from_value = 'gold'""",
            [AS_OF],
        ).fetchall()
    ) == {"gold": 1}
