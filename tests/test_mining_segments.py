"""Segments: pyramid shares from configuration, stage rules and RFM on hand-built fixtures."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from mining.features import build_features
from mining.segments import pyramid_tier, relationship_stage, rfm_segment
from mining.synth import create_mart_tables
from warehouse.config import load_settings

AS_OF = date(2024, 7, 1)


def _profits(n_positive: int, n_negative: int) -> pd.DataFrame:
    profit = list(range(1, n_positive + 1)) + [-p for p in range(1, n_negative + 1)]
    ids = [f"C{i:04d}" for i in range(len(profit))]
    rng = np.random.default_rng(3)
    order = rng.permutation(len(profit))
    return pd.DataFrame({"customer_id": np.array(ids)[order], "profit_12m": np.array(profit, float)[order]})


def _counts(tiers: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(tiers, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def test_tier_shares_follow_the_default_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMWH_HOME", str(tmp_path))
    settings = load_settings()
    frame = _profits(1000, 0)
    tiers = pyramid_tier(frame, settings.tier_shares)
    assert _counts(tiers) == {"platinum": 50, "gold": 150, "iron": 500, "lead": 300}
    # the top 50 profits are platinum
    top = frame.assign(tier=tiers).nlargest(50, "profit_12m")
    assert set(top["tier"]) == {"platinum"}


def test_tier_shares_follow_overridden_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMWH_HOME", str(tmp_path))
    monkeypatch.setenv("CRMWH_TIER_SHARES", '{"platinum": 0.1, "gold": 0.2, "iron": 0.3}')
    settings = load_settings()
    tiers = pyramid_tier(_profits(1000, 0), settings.tier_shares)
    assert _counts(tiers) == {"platinum": 100, "gold": 200, "iron": 300, "lead": 400}


def test_negative_profit_is_always_lead(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMWH_HOME", str(tmp_path))
    frame = _profits(600, 400)
    tiers = pyramid_tier(frame, load_settings().tier_shares)
    # iron would reach rank 700, but only 600 customers have a positive profit
    assert _counts(tiers) == {"platinum": 50, "gold": 150, "iron": 400, "lead": 400}
    assert set(tiers[frame["profit_12m"].to_numpy() < 0]) == {"lead"}
    # closing the top account frees its platinum place for the 51st
    top = frame["profit_12m"].idxmax()
    closed = pyramid_tier(frame.assign(is_closed=frame.index == top), load_settings().tier_shares)
    assert closed[top] == "lead" and _counts(closed)["platinum"] == 50


def _stage_fixture(path) -> duckdb.DuckDBPyConnection:
    """S1..S8, each built to sit exactly on one rule of the relationship stages."""
    con = duckdb.connect(str(path))
    create_mart_tables(con)
    signup = {"S6": AS_OF - timedelta(days=800), "S7": AS_OF - timedelta(days=700)}
    purchases = {"S1": 0, "S2": 1, "S3": 3, "S4": 3, "S5": 3, "S6": 3, "S7": 3, "S8": 3}
    for key, cid in enumerate(purchases, start=1):
        con.execute(
            """insert into marts.dim_customer (customer_key, customer_id, valid_from, valid_to, is_current,
                region, signup_date) values (?, ?, timestamp '2020-01-01', timestamp '9999-12-31', true, 'Seoul', ?)""",
            [key, cid, signup.get(cid, date(2023, 1, 1))],
        )
        for k in range(purchases[cid]):
            day = AS_OF - timedelta(days=10 + 30 * k)
            con.execute(
                """insert into marts.fct_sales (sales_line_id, order_id, line_no, date_day, sales_channel,
                    customer_id, net_sales_krw, gross_sales_krw, discount_krw, is_return)
                values (?, ?, 1, ?, 'store', ?, 10000, 10000, 0, false)""",
                [f"{cid}-{k}", f"{cid}-{k}", day, cid],
            )

    def feedback(fid, cid, ftype, at, score=None, voc_type=None):
        con.execute(
            """insert into marts.fct_feedback (feedback_id, feedback_type, customer_id, received_at, date_day,
                voc_type, score, is_complaint) values (?, ?, ?, ?, ?, ?, ?, false)""",
            [fid, ftype, cid, at, at.date(), voc_type, score],
        )

    feedback("F1", "S4", "nps", datetime(2024, 5, 1), score=9)
    feedback("F2", "S5", "nps", datetime(2024, 1, 1), score=10)
    feedback("F3", "S5", "nps", datetime(2024, 5, 1), score=2)  # latest answer is a detractor
    con.execute(
        "insert into raw.referrals values ('RF1', 'S5', 'X1', timestamp '2024-02-01', 'app', timestamp '2024-02-02')"
    )
    for cid in ("S6", "S7"):
        feedback(f"N{cid}", cid, "nps", datetime(2024, 6, 1), score=10)
        feedback(f"V{cid}", cid, "voc", datetime(2024, 4, 1), voc_type="suggestion")
    feedback("F8", "S8", "nps", datetime(2023, 5, 1), score=10)  # more than 12 months ago
    return con


def test_relationship_stage_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMWH_HOME", str(tmp_path))
    settings = load_settings()
    con = _stage_fixture(tmp_path / "stages.duckdb")
    frame = build_features(con, AS_OF)
    stages = dict(zip(frame["customer_id"], relationship_stage(frame, settings), strict=True))
    assert stages == {
        "S1": "prospect",
        "S2": "customer",
        "S3": "client",
        "S4": "advocate",  # NPS 9
        "S5": "advocate",  # referred a customer (its latest NPS is 2)
        "S6": "partner",  # advocate, 800 days' tenure, a suggestion and a survey
        "S7": "advocate",  # same, but 700 days' tenure
        "S8": "client",  # its NPS 10 is older than 12 months
    }
    # Configuration moves the thresholds: with 4 purchases needed, nobody is a client or above.
    monkeypatch.setenv("CRMWH_CLIENT_MIN_PURCHASES_12M", "4")
    strict = relationship_stage(frame, load_settings())
    assert set(strict) == {"prospect", "customer"}
    con.close()


def test_rfm_segments_on_hand_built_scores():
    # Ten buyers; orders and recency chosen so each lands in a known quintile pair (R, F):
    # i0 (5,5) i1 (4,5) i2 (1,4) i3 (3,4) i4 (5,1) i5 (4,2) i6 (1,2) i7 (2,1) i8 (2,3) i9 (3,3)
    orders = [9, 10, 7, 8, 1, 3, 4, 2, 5, 6]
    frame = pd.DataFrame(
        {
            "orders_total": [0, 2] + orders,
            "orders_365d": [0, 0] + orders,
            "recency_days": [np.nan, 400] + [1, 3, 300, 10, 2, 4, 301, 100, 101, 11],
            "net_sales_365d": [0, 0] + [10 * o for o in orders],
        }
    )
    segment, code = rfm_segment(frame)
    assert segment.tolist() == [
        "prospect",
        "lapsed",
        "champions",
        "champions",
        "loyal",
        "loyal",
        "new",
        "potential_loyalist",
        "hibernating",
        "hibernating",
        "at_risk",
        "need_attention",
    ]
    assert code.tolist()[:4] == ["", "", "555", "455"]
    assert code[6] == "511"


@pytest.mark.parametrize("n", [7, 101])
def test_quintiles_are_balanced(n):
    frame = pd.DataFrame(
        {
            "orders_total": [1] * n,
            "orders_365d": [1] * n,
            "recency_days": range(n),
            "net_sales_365d": range(n),
        }
    )
    _, code = rfm_segment(frame)
    counts = pd.Series([c[0] for c in code]).value_counts()
    assert counts.max() - counts.min() <= 1
