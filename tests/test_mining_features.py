"""Features as of a date: exact figures on a hand-built mart fixture, and no leakage from the date on."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from mining.features import FEATURES, build_features, build_labels
from mining.synth import create_mart_tables

AS_OF = date(2024, 7, 1)


def _sale(con, order_id, day, channel, customer_id, net, *, line_no=1, is_return=False):
    con.execute(
        """insert into marts.fct_sales (sales_line_id, order_id, line_no, sold_at, date_day, month,
            sales_channel, customer_id, qty, gross_sales_krw, discount_krw, net_sales_krw, is_return)
        values (?, ?, ?, ?, ?, strftime(?::date, '%Y-%m'), ?, ?, 1, ?, 0, ?, ?)""",
        [
            f"{order_id}-{line_no}",
            order_id,
            line_no,
            datetime.combine(day, datetime.min.time()),
            day,
            day,
            channel,
            customer_id,
            abs(net),
            net,
            is_return,
        ],
    )


def build_fixture(path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    create_mart_tables(con)
    customers = [
        (1, "C1", "Seoul", date(2023, 1, 10), None),
        (2, "C2", "Busan", date(2024, 3, 1), None),
        (3, "C3", "Seoul", date(2024, 6, 30), None),  # known, never bought: a prospect
        (4, "C4", "Seoul", date(2024, 7, 1), None),  # signs up on the as-of date: not known yet
        (5, "C5", "Seoul", date(2023, 1, 1), date(2024, 5, 1)),  # closed before the date
        (6, "C6", "Daegu", date(2023, 6, 1), None),
    ]
    for key, cid, region, signup, closed in customers:
        con.execute(
            """insert into marts.dim_customer (customer_key, customer_id, valid_from, valid_to, is_current,
                region, signup_date, signup_channel, status, closed_at)
            values (?, ?, ?, timestamp '9999-12-31', true, ?, ?, 'store', ?, ?)""",
            [key, cid, signup, region, signup, "closed" if closed else "active", closed],
        )
    con.execute(
        "insert into marts.dim_customer (customer_key, valid_from, valid_to, is_current) "
        "values (-1, timestamp '1900-01-01', timestamp '9999-12-31', true)"
    )
    _sale(con, "O1", date(2024, 1, 15), "store", "C1", 10_000)
    _sale(con, "O2", date(2024, 4, 10), "web", "C1", 15_000)
    _sale(con, "O2", date(2024, 4, 10), "web", "C1", 5_000, line_no=2)
    _sale(con, "R1", date(2024, 6, 20), "store", "C1", -5_000, is_return=True)
    _sale(con, "O3", date(2024, 6, 30), "app", "C1", 30_000)  # the day before: counted
    _sale(con, "O4", date(2024, 7, 1), "store", "C1", 999_999)  # on the as-of date: ignored
    _sale(con, "O5", date(2024, 8, 1), "store", "C1", 999_999)
    _sale(con, "O6", date(2024, 3, 5), "store", "C2", 50_000)
    _sale(con, "O7", date(2024, 6, 1), "store", "C6", 20_000)
    _sale(con, "O8", date(2024, 9, 29), "store", "C6", 20_000)  # day 90 after: outside the window
    _sale(con, "O9", date(2024, 6, 15), "store", "C5", 20_000)
    contacts = [
        ("K1", datetime(2024, 6, 15, 10), "C1", "call_center", "complaint", "unresolved"),
        ("K2", datetime(2024, 7, 1, 9), "C1", "call_center", "complaint", "unresolved"),
        ("K3", datetime(2024, 6, 29, 20), "C1", "web", None, None),
        ("K4", datetime(2024, 5, 1, 8), "C1", "email", None, None),
    ]
    for cid_, at, cust, ch, reason, res in contacts:
        con.execute(
            """insert into marts.fct_contacts (contact_id, contact_at, date_day, customer_id,
                contact_channel, reason, resolution) values (?, ?, ?, ?, ?, ?, ?)""",
            [cid_, at, at.date(), cust, ch, reason, res],
        )
    feedback = [
        # resolved 240 h later, i.e. after the as-of date: still open on the date
        ("F1", "voc", "C1", datetime(2024, 6, 25, 10), "complaint", 2, None, True, 240.0, True),
        ("F2", "voc", "C1", datetime(2024, 5, 1, 10), "complaint", 3, None, True, 24.0, True),
        ("F3", "nps", "C1", datetime(2024, 3, 1, 10), None, None, 10.0, None, None, False),
        ("F4", "nps", "C1", datetime(2024, 6, 30, 23), None, None, 3.0, None, None, False),
        ("F5", "nps", "C1", datetime(2024, 7, 1, 0), None, None, 0.0, None, None, False),
        ("F6", "voc", "C1", datetime(2024, 7, 2, 0), "complaint", 3, None, False, None, True),
    ]
    for fid, ftype, cust, at, voc_type, sev, score, resolved, hours, complaint in feedback:
        con.execute(
            """insert into marts.fct_feedback (feedback_id, feedback_type, customer_id, received_at, date_day,
                voc_type, severity, score, resolved, hours_to_resolve, is_complaint)
            values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [fid, ftype, cust, at, at.date(), voc_type, sev, score, resolved, hours, complaint],
        )
    touches = [
        ("T1", datetime(2024, 5, 1, 9), True, False),  # old enough for its response to count
        ("T2", datetime(2024, 6, 20, 9), True, True),  # too recent: counted as a touch only
        ("T3", datetime(2024, 7, 2, 9), True, True),  # after the date
    ]
    for tid, sent, opened, clicked in touches:
        con.execute(
            """insert into marts.fct_campaign_touches (touch_id, campaign_id, customer_id, assigned_group,
                delivered, opened, clicked, converted, sent_at) values (?, 'CMP0001', 'C1', 'treatment',
                true, ?, ?, false, ?)""",
            [tid, opened, clicked, sent],
        )
    months = [
        (date(2024, 5, 1), 1_000, 3, 0, 500),
        (date(2024, 6, 1), 2_000, 4, 15, 700),
        (date(2024, 7, 1), 99_999, 10, 90, 9_999),
    ]
    for start, profit, grade, dpd, points in months:
        con.execute(
            """insert into marts.fct_customer_month (customer_id, month, month_start, profit_krw, credit_grade,
                days_past_due, points_balance) values ('C1', strftime(?::date, '%Y-%m'), ?, ?, ?, ?, ?)""",
            [start, start, profit, grade, dpd, points],
        )
    con.execute(
        """insert into raw.referrals values
        ('RF1', 'C1', 'C9', timestamp '2024-02-01', 'app', timestamp '2024-02-10'),
        ('RF2', 'C1', 'C8', timestamp '2024-06-25', 'app', timestamp '2024-07-01')"""
    )
    return con


@pytest.fixture()
def fixture_con(tmp_path):
    con = build_fixture(tmp_path / "fixture.duckdb")
    yield con
    con.close()


def test_population_is_every_known_customer(fixture_con):
    frame = build_features(fixture_con, AS_OF).set_index("customer_id")
    assert frame.index.tolist() == ["C1", "C2", "C3", "C5", "C6"]  # C4 signs up on the date
    # C3 never bought; C5 bought in June but closed its account in May: neither is active
    assert frame["is_active"].to_dict() == {"C1": True, "C2": True, "C3": False, "C5": False, "C6": True}
    assert frame["is_closed"].to_dict() == {"C1": False, "C2": False, "C3": False, "C5": True, "C6": False}
    assert list(frame.columns[-len(FEATURES) :]) == list(FEATURES)


def test_exact_features_from_rows_before_the_date(fixture_con):
    row = build_features(fixture_con, AS_OF).set_index("customer_id").loc["C1"]
    expected = {
        "tenure_days": (AS_OF - date(2023, 1, 10)).days,
        "recency_days": 1,
        "days_since_first_purchase": (AS_OF - date(2024, 1, 15)).days,
        "orders_total": 3,
        "orders_30d": 1,
        "orders_90d": 2,
        "orders_180d": 3,
        "net_sales_90d": 45_000,  # 20,000 + 30,000 − 5,000 returned
        "net_sales_365d": 55_000,
        "avg_order_value_365d": 55_000 / 3,
        "avg_gap_days": (date(2024, 6, 30) - date(2024, 1, 15)).days / 2,
        "share_store_365d": 1 / 3,
        "share_web_365d": 1 / 3,
        "share_app_365d": 1 / 3,
        "return_line_share_365d": 1 / 5,
        "contacts_90d": 3,
        "calls_365d": 1,
        "digital_sessions_90d": 1,
        "marketing_contacts_365d": 1,
        "complaint_calls_365d": 1,
        "unresolved_contacts_365d": 1,
        "complaints_365d": 2,
        "complaints_open": 1,  # F1 is resolved only after the date
        "avg_hours_to_resolve": 24.0,
        "max_complaint_severity": 3,
        "nps_last": 3,
        "nps_avg_365d": 6.5,
        "campaign_touches_365d": 2,
        "campaign_open_rate": 1.0,
        "campaign_click_rate": 0.0,
        "credit_grade_last": 4,
        "days_past_due_last": 15,
        "points_balance_last": 700,
        "profit_12m": 3_000,
        "referrals_made": 1,
    }
    # the first sale in the marts is 2024-01-15: the 6-month window before the 3 months is not covered
    assert pd.isna(row["trend_orders_3m"]) and pd.isna(row["trend_sales_12m"])
    for name, value in expected.items():
        assert row[name] == pytest.approx(value), name
    assert row["main_channel"] == "store"  # a three-way tie goes to the store


def test_no_leakage_rows_dated_on_or_after_the_date_change_nothing(fixture_con):
    before = build_features(fixture_con, AS_OF)
    # Remove every row dated on or after the as-of date, then make the remaining future rows absurd:
    con = fixture_con
    con.execute("delete from marts.fct_sales where date_day >= ?", [AS_OF])
    con.execute("delete from marts.fct_contacts where date_day >= ?", [AS_OF])
    con.execute("delete from marts.fct_feedback where received_at >= ?", [AS_OF])
    con.execute("delete from marts.fct_campaign_touches where sent_at >= ?", [AS_OF])
    con.execute("delete from marts.fct_customer_month where month_start >= ?", [AS_OF])
    con.execute("delete from raw.referrals where converted_at >= ?", [AS_OF])
    after = build_features(con, AS_OF)
    pd.testing.assert_frame_equal(before, after)


def test_future_rows_added_after_the_date_change_nothing(fixture_con):
    before = build_features(fixture_con, AS_OF)
    for day in (AS_OF, date(2024, 12, 31)):
        _sale(fixture_con, f"X{day}", day, "web", "C2", 1_000_000)
        _sale(fixture_con, f"Y{day}", day, "web", "C3", 1_000_000)
    after = build_features(fixture_con, AS_OF)
    pd.testing.assert_frame_equal(before, after)


def test_churn_label_window(fixture_con):
    labels = build_labels(fixture_con, AS_OF, ["C1", "C2", "C6"], window_days=90)
    # C1 buys on the date itself; C2 never again; C6 only on day 90 (2024-09-29), outside [d, d+90).
    assert labels.to_dict() == {"C1": False, "C2": True, "C6": True}
    assert build_labels(fixture_con, AS_OF, ["C6"], window_days=91).to_dict() == {"C6": False}
