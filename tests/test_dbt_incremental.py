"""Incremental equals full, and the marts reconcile to raw, on generated messy data.

The messy generated set (conftest's ``landing_messy``: duplicates, late files, unknown skus,
malformed rows) is delivered in three batches of days; after each batch the real ingest
loads it and dbt builds the marts incrementally with a short lookback (2 days), so late
files must be picked up through the load high-water mark. A full refresh on the same raw
layer must then produce exactly the same rows, and the reconciliation tests (fct_sales net
sales recomputed from raw, the customer-month snapshot against the facts) must pass.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from warehouse.build import build
from warehouse.config import load_settings

TABLES = {
    "fct_sales": "sales_line_id",
    "fct_contacts": "contact_id",
    "fct_feedback": "feedback_id",
    "fct_campaign_touches": "touch_id",
    "fct_customer_month": "customer_id, month",
    "dim_customer": "customer_key",
}
MARTS = "+path:models/marts"
NO_TESTS = "resource_type:test resource_type:unit_test"
START = date(2024, 1, 1)
BATCHES = [(0, 11), (12, 24)]  # day offsets, inclusive


def _rows(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"select * from marts.{t} order by {k}").fetchall() for t, k in TABLES.items()}


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory, landing_messy: Path) -> dict:
    from warehouse.ingest import ingest

    home = tmp_path_factory.mktemp("dbt_incremental")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMWH_HOME", str(home))
        settings = load_settings()
    landing = Path(landing_messy) / "landing"
    for first, last in BATCHES:
        days = [START + timedelta(days=d) for d in range(first, last + 1)]
        ingest(settings.warehouse, landing, days=days)
        build(
            settings,
            select=MARTS,
            exclude=NO_TESTS,
            vars={"run_date": days[-1].isoformat(), "lookback_days": 2},
        )
    incremental = _rows(settings.warehouse)
    full = build(settings, full_refresh=True, select=MARTS)
    return {
        "settings": settings,
        "incremental": incremental,
        "full": _rows(settings.warehouse),
        "summary": full,
    }


def test_incremental_equals_full_refresh(batches: dict) -> None:
    for table in TABLES:
        incremental, full = batches["incremental"][table], batches["full"][table]
        assert len(incremental) == len(full), table
        assert incremental == full, table
    assert len(batches["full"]["fct_sales"]) > 100
    assert len(batches["full"]["fct_contacts"]) > 100


def test_reconciliations_and_data_tests_pass_on_messy_data(batches: dict) -> None:
    # build() raises on any failing test; the reconciliations are among the tests it ran.
    assert batches["summary"]["nodes"]["test"] >= 100


def test_net_sales_equal_sources_definition(batches: dict) -> None:
    """The SOURCES.md net sales, recomputed here in Python-side SQL straight from raw."""
    with duckdb.connect(str(batches["settings"].warehouse), read_only=True) as con:
        pos = con.execute(
            """select coalesce(sum(qty * unit_price - coalesce(discount_amt, 0)), 0) from (
                   select distinct store_id, receipt_no, line_no, qty, unit_price, discount_amt
                   from raw.pos_sales)"""
        ).fetchone()[0]
        online = con.execute(
            """with latest as (
                   select order_id, max(updated_at) as updated_at from raw.online_orders group by 1),
               orders as (
                   select distinct o.order_id, o.status from raw.online_orders o
                   join latest using (order_id, updated_at)),
               lines as (
                   select distinct l.order_id, l.line_no, l.qty, l.unit_price, l.discount_amt
                   from raw.online_order_lines l join latest using (order_id, updated_at))
               select coalesce(sum(qty * unit_price - coalesce(discount_amt, 0)), 0)
               from lines join orders using (order_id) where status = 'paid'"""
        ).fetchone()[0]
        marts = con.execute("select sum(net_sales_krw) from marts.fct_sales").fetchone()[0]
        unknown = con.execute("select count(*) from marts.fct_sales where product_key = -1").fetchone()[0]
        not_in_catalogue = con.execute(
            """select count(*) from marts.fct_sales
               where sku is null or sku not in (select sku from raw.products where sku is not null)"""
        ).fetchone()[0]
    assert marts == pos + online
    assert pos > 0 and online > 0
    # Lines selling a sku the catalogue does not know are kept, on the -1 product.
    assert unknown == not_in_catalogue
