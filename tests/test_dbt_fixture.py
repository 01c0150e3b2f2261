"""The dbt marts on a hand-computed fixture, loaded through the real ingest.

tests/data/fixture/landing holds three customers over 2024-01-01..04 in the SOURCES.md formats:
a store return, a cancelled online order, a corrected POS file (the first, wrong version is in
tests/data/fixture/superseded), an anonymous web session that logs in (and a later session of
the same browser), a call matched by phone, a customer who moves and one who closes.

The warehouse is built the way production builds it, incrementally: days 1-2 are ingested
(with the wrong POS file) and built; then the corrected file and days 3-4 arrive and are built
with lookback_days=0, so the corrected day and the cancellation of a day-2 order must be found
through the load high-water mark, not the lookback window. Every figure below was computed by
hand from the fixture files.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from warehouse.build import BuildError, build, docs, sources_yaml
from warehouse.config import PROJECT_ROOT, load_settings

FIXTURE = Path(__file__).parent / "data" / "fixture"
CORRECTED = Path("pos_sales/dt=2024-01-02/pos_S001_20240102.csv")
MARTS_ONLY = "+path:models/marts snap_customers"
NO_TESTS = "resource_type:test resource_type:unit_test"
FACTS = {
    "fct_sales": "sales_line_id",
    "fct_contacts": "contact_id",
    "fct_feedback": "feedback_id",
    "fct_campaign_touches": "touch_id",
    "fct_customer_month": "customer_id, month",
    "dim_customer": "customer_key",
}


def _settings(home: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMWH_HOME", str(home))
        return load_settings()


def _table(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple]:
    return con.execute(f"select * from marts.{name} order by {FACTS[name]}").fetchall()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from warehouse.ingest import ingest

    home = tmp_path_factory.mktemp("dbt_fixture")
    settings = _settings(home)
    landing = settings.landing
    shutil.copytree(FIXTURE / "landing", landing)
    shutil.copyfile(FIXTURE / "superseded" / CORRECTED, landing / CORRECTED)

    ingest(settings.warehouse, landing, days=[date(2024, 1, 1), date(2024, 1, 2)])
    first = build(settings, select=MARTS_ONLY, exclude=NO_TESTS, vars={"run_date": "2024-01-02"})
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        day2_net_before = con.execute(
            "select sum(net_sales_krw) from marts.fct_sales where date_day = '2024-01-02'"
        ).fetchone()[0]

    shutil.copyfile(FIXTURE / "landing" / CORRECTED, landing / CORRECTED)
    ingest(settings.warehouse, landing)
    second = build(settings, vars={"run_date": "2024-01-04", "lookback_days": 0})
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        incremental = {name: _table(con, name) for name in FACTS}
    return {
        "settings": settings,
        "first": first,
        "second": second,
        "day2_net_before": day2_net_before,
        "incremental": incremental,
    }


@pytest.fixture
def con(built: dict):
    with duckdb.connect(str(built["settings"].warehouse), read_only=True) as connection:
        yield connection


def test_build_runs_models_tests_unit_tests_and_snapshot(built: dict) -> None:
    nodes = built["second"]["nodes"]
    assert nodes["unit_test"] >= 3
    assert nodes["test"] >= 100
    assert nodes["snapshot"] == 1
    assert "test" not in built["first"]["nodes"]


def test_sales_lines_exact(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        """select sales_line_id, date_day::varchar, sales_channel, customer_id, qty, net_sales_krw,
                  cost_krw, margin_krw, is_return, order_status
           from marts.fct_sales order by sales_line_id"""
    ).fetchall()
    assert rows == [
        ("online-O1-1", "2024-01-02", "web", "C0000001", 1, 1000, 600, 400, False, "paid"),
        ("online-O2-1", "2024-01-02", "app", "C0000002", 2, 0, 0, 0, False, "cancelled"),
        # 2024-01-02T16:30:00Z is 01:30 on the 3rd in Seoul.
        ("online-O3-1", "2024-01-03", "web", "C0000003", 1, 1000, 600, 400, False, "paid"),
        ("pos-S001-R1-1", "2024-01-02", "store", "C0000001", 2, 1900, 1200, 700, False, "completed"),
        # The corrected file says qty 1 (the superseded one said 2).
        ("pos-S001-R1-2", "2024-01-02", "store", "C0000001", 1, 5000, 3000, 2000, False, "completed"),
        ("pos-S001-R2-1", "2024-01-02", "store", None, 1, 1000, 600, 400, False, "completed"),
        ("pos-S001-R5-1", "2024-01-04", "store", "C0000001", -1, -5000, -3000, -2000, True, "returned"),
        ("pos-S002-R3-1", "2024-01-03", "store", "C0000002", 1, 5000, 3000, 2000, False, "completed"),
        ("pos-S002-R4-1", "2024-01-03", "store", "C0000002", 3, 3000, 1800, 1200, False, "completed"),
    ]
    total = con.execute("select sum(net_sales_krw), count(*) from marts.fct_sales").fetchone()
    assert total == (12900, 9)


def test_corrected_file_replaced_the_day_incrementally(built: dict, con: duckdb.DuckDBPyConnection) -> None:
    # Day 2 was first built from the wrong file (R1-2 qty 2) and an O2 still paid.
    assert built["day2_net_before"] == 1900 + 10000 + 1000 + 1000 + 9500
    assert (
        con.execute(
            "select sum(net_sales_krw) from marts.fct_sales where date_day = '2024-01-02'"
        ).fetchone()[0]
        == 1900 + 5000 + 1000 + 1000
    )


def test_scd2_dim_customer_and_fact_keys(con: duckdb.DuckDBPyConnection) -> None:
    versions = con.execute(
        """select customer_id, valid_from::varchar, valid_to::varchar, is_current, region, city, status,
                  age_band, pyramid_tier
           from marts.dim_customer order by customer_id, valid_from"""
    ).fetchall()
    assert versions == [
        (
            "C0000001",
            "2024-01-01 09:00:00",
            "9999-12-31 00:00:00",
            True,
            "Seoul",
            "Gangnam",
            "active",
            "30-39",
            "unscored",
        ),
        (
            "C0000002",
            "2024-01-01 09:00:00",
            "2024-01-03 12:00:00",
            False,
            "Busan",
            "Haeundae",
            "active",
            "40-49",
            "unscored",
        ),
        (
            "C0000002",
            "2024-01-03 12:00:00",
            "9999-12-31 00:00:00",
            True,
            "Seoul",
            "Mapo",
            "active",
            "40-49",
            "unscored",
        ),
        (
            "C0000003",
            "2024-01-01 09:00:00",
            "2024-01-04 10:00:00",
            False,
            "Daegu",
            "Suseong",
            "active",
            "under_20",
            "unscored",
        ),
        (
            "C0000003",
            "2024-01-04 10:00:00",
            "9999-12-31 00:00:00",
            True,
            "Daegu",
            "Suseong",
            "closed",
            "under_20",
            "unscored",
        ),
        (
            "unknown",
            "1900-01-01 00:00:00",
            "9999-12-31 00:00:00",
            True,
            "unknown",
            "unknown",
            "unknown",
            "unknown",
            "unknown",
        ),
    ]
    # The move happened at 12:00 on the 3rd: the 10:00 purchase is in Busan, the 15:00 one in Seoul,
    # and so is the 13:00 call matched by phone.
    regions = con.execute(
        """select f.sales_line_id, d.region from marts.fct_sales f
           join marts.dim_customer d using (customer_key)
           where f.customer_id = 'C0000002' order by 1"""
    ).fetchall()
    assert regions == [("online-O2-1", "Busan"), ("pos-S002-R3-1", "Busan"), ("pos-S002-R4-1", "Seoul")]
    call = con.execute(
        """select d.region from marts.fct_contacts f join marts.dim_customer d using (customer_key)
           where f.contact_id = 'call-CALL1'"""
    ).fetchone()
    assert call == ("Seoul",)
    assert con.execute(
        "select count(*) from marts.fct_sales where customer_id is null and customer_key = -1"
    ).fetchone() == (1,)


def test_snapshot_is_the_audit_trail_of_each_run(con: duckdb.DuckDBPyConnection) -> None:
    # Run 1 saw the three first versions; run 2 saw C2's move and C3's closing.
    rows = con.execute(
        """select customer_id, region, status, dbt_valid_to is null or dbt_valid_to = '9999-12-31'
           from snapshots.snap_customers order by customer_id, dbt_valid_from"""
    ).fetchall()
    assert rows == [
        ("C0000001", "Seoul", "active", True),
        ("C0000002", "Busan", "active", False),
        ("C0000002", "Seoul", "active", True),
        ("C0000003", "Daegu", "active", False),
        ("C0000003", "Daegu", "closed", True),
    ]


def test_contacts_identity_stitching_exact(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        """select contact_id, date_day::varchar, customer_id, contact_channel, reason, resolution,
                  duration_s, identified_by, is_complaint
           from marts.fct_contacts order by contact_id"""
    ).fetchall()
    assert rows == [
        ("activity-ACT1", "2024-01-02", "C0000002", "sales_rep", "visit", "contacted", 1800, "id", False),
        ("call-CALL1", "2024-01-03", "C0000002", "call_center", "complaint", "resolved", 300, "phone", True),
        ("call-CALL2", "2024-01-03", None, "call_center", "other", "resolved", 120, "anonymous", False),
        ("call-CALL3", "2024-01-03", "C0000001", "call_center", "order", "resolved", 600, "id", False),
        # Before ANON1's first login: stays anonymous.
        ("session-W0", "2024-01-01", None, "web", "browse", "page_view", 0, "anonymous", False),
        # Anonymous, then logs in as C0000001.
        ("session-W1", "2024-01-02", "C0000001", "web", "browse", "add_to_cart", 360, "login", False),
        # Same browser the next day, no login: stitched to C0000001.
        ("session-W2", "2024-01-03", "C0000001", "web", "browse", "search", 90, "login", False),
        ("session-W3", "2024-01-02", None, "web", "browse", "page_view", 0, "anonymous", False),
        ("survey-S1", "2024-01-04", "C0000001", "survey", "nps", "store", None, "id", False),
        ("survey-S2", "2024-01-04", "C0000002", "survey", "csat", "call", None, "id", False),
        ("touch-T1", "2024-01-01", "C0000001", "email", "retention", "opened", None, "id", False),
        ("voc-V1", "2024-01-03", "C0000001", "voc", "complaint", "resolved", None, "id", True),
    ]
    anonymous_keys = con.execute(
        "select distinct customer_key from marts.fct_contacts where customer_id is null"
    ).fetchall()
    assert anonymous_keys == [(-1,)]


def test_feedback_and_campaign_touches_exact(con: duckdb.DuckDBPyConnection) -> None:
    feedback = con.execute(
        """select feedback_id, feedback_type, customer_id, score, resolved, hours_to_resolve, is_complaint
           from marts.fct_feedback order by feedback_id"""
    ).fetchall()
    assert feedback == [
        ("survey-S1", "nps", "C0000001", 9, None, None, False),
        ("survey-S2", "csat", "C0000002", 4, None, None, False),
        # The latest version (resolved on the 4th at 15:00) wins: 30 hours after receipt.
        ("voc-V1", "voc", "C0000001", None, True, 30.0, True),
    ]
    touches = con.execute(
        """select touch_id, assigned_group, delivered, opened, clicked, converted, attributed_sales_krw, cost_krw, month
           from marts.fct_campaign_touches order by touch_id"""
    ).fetchall()
    assert touches == [
        # C1 within 14 days of the send: 1900 + 5000 + 1000 (web) - 5000 (return).
        ("T1", "treatment", True, True, False, True, 2900, 50, "2024-01"),
        # C2 (control) from the campaign start: 5000 + 3000; the cancelled order counts 0.
        ("T2", "control", False, False, False, True, 8000, 0, "2024-01"),
    ]


def test_customer_month_exact(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        """select customer_id, month, purchases, net_sales_krw, margin_krw, revenue_krw, cogs_krw,
                  cost_to_serve_krw, profit_krw, contacts, contacts_call_center, contacts_web,
                  contacts_campaign, complaints, nps, csat, credit_grade, points_balance
           from marts.fct_customer_month order by customer_id, month"""
    ).fetchall()
    assert rows == [
        ("C0000001", "2023-12", 0, 0, 0, 20000, 12000, 3000, -15000, 0, 0, 0, 0, 0, None, None, 2, 0),
        ("C0000001", "2024-01", 2, 2900, 1100, 0, 1800, 0, 1100, 6, 1, 2, 1, 1, 9.0, None, None, 120),
        ("C0000002", "2023-11", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, None, None, 0),
        ("C0000002", "2023-12", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, None, None, 0),
        ("C0000002", "2024-01", 2, 8000, 3200, 0, 4800, 0, 3200, 3, 1, 0, 0, 1, None, 4.0, None, 0),
        ("C0000003", "2024-01", 1, 1000, 400, 0, 600, 0, 400, 0, 0, 0, 0, 0, None, None, None, 0),
    ]
    # The month's customer_key is the version valid at its end: C0000003 closed on the 4th.
    status = con.execute(
        """select d.status from marts.fct_customer_month m join marts.dim_customer d using (customer_key)
           where m.customer_id = 'C0000003'"""
    ).fetchone()
    assert status == ("closed",)


def test_no_personal_data_in_marts(con: duckdb.DuckDBPyConnection) -> None:
    columns = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns where table_schema = 'marts'"
        ).fetchall()
    }
    assert {
        "name",
        "phone",
        "email",
        "birth_date",
        "caller_phone",
        "summary",
        "text",
        "comment",
        "note",
    }.isdisjoint(columns)
    assert "age_band" in columns
    names = {row[0] for row in con.execute("select customer_id from marts.dim_customer").fetchall()}
    assert names == {"C0000001", "C0000002", "C0000003", "unknown"}


def test_full_refresh_via_cli_equals_incremental(built: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from warehouse.cli import main

    monkeypatch.setenv("CRMWH_HOME", str(built["settings"].home))
    result = CliRunner().invoke(
        main, ["build", "--full-refresh", "--select", MARTS_ONLY, "--exclude", NO_TESTS]
    )
    assert result.exit_code == 0, result.output
    assert "dbt build ok" in result.output
    with duckdb.connect(str(built["settings"].warehouse), read_only=True) as con:
        for name in FACTS:
            assert _table(con, name) == built["incremental"][name], name


def test_docs_generate_lists_every_mart_with_columns(built: dict) -> None:
    index = docs(built["settings"])
    assert index.exists()
    catalog = json.loads((index.parent / "catalog.json").read_text())
    manifest = json.loads((index.parent / "manifest.json").read_text())
    for name in ("dim_customer", "fct_sales", "fct_contacts", "fct_customer_month"):
        node = catalog["nodes"][f"model.crmwh.{name}"]
        assert "customer_key" in node["columns"]
        assert manifest["nodes"][f"model.crmwh.{name}"]["description"]


def test_every_model_is_documented() -> None:
    import yaml

    documented: dict[str, dict] = {}
    for path in (PROJECT_ROOT / "dbt_project" / "models").rglob("_*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            documented[model["name"]] = model
    own = [
        p
        for p in (PROJECT_ROOT / "dbt_project" / "models").rglob("*.sql")
        if p.parts[-2] in ("marts", "intermediate") or "staging" in p.parts
    ]
    assert own
    for sql in own:
        model = documented.get(sql.stem)
        assert model, f"{sql}: no YAML entry"
        assert model.get("description", "").strip(), f"{sql.stem}: no description"
        columns = {c["name"] for c in model.get("columns", [])}
        assert columns, f"{sql.stem}: no columns documented"


def test_sources_yml_matches_contracts() -> None:
    path = PROJECT_ROOT / "dbt_project" / "models" / "staging" / "_raw__sources.yml"
    assert path.read_text() == sources_yaml(), "regenerate with warehouse.build.sources_yaml()"


def test_build_failure_names_the_node(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    # No raw layer at all: the first staging view that reads raw fails, and is named.
    with pytest.raises(BuildError, match=r"model\.crmwh\.stg_"):
        build(settings, select="stg_customers__versions")


def test_dbt_runs_duckdb_under_the_build_memory_limit(built: dict) -> None:
    from dataclasses import replace

    from warehouse.build import run_dbt

    settings = replace(built["settings"], build_memory_limit="1GB")
    result = run_dbt(settings, ["show", "--inline", "select current_setting('memory_limit') as m"])
    assert result.success
    # DuckDB reports 1 GB (10^9 bytes) in binary units
    assert result.result.results[0].agate_table.rows[0][0] == "953.6 MiB"


def test_dim_customer_reads_scores_once_mining_wrote_them(built: dict) -> None:
    # Runs last in this module: it changes the shared warehouse.
    settings = built["settings"]
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("create schema if not exists mining")
        con.execute(
            """create or replace table mining.customer_scores as
               select * from (values ('C0000001', 'platinum', 'advocate'), ('C0000002', 'iron', 'client'))
               as t(customer_id, pyramid_tier, relationship_stage)"""
        )
    build(settings, select="dim_customer", exclude=NO_TESTS)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        rows = con.execute(
            """select customer_id, count(*), min(pyramid_tier), min(relationship_stage)
               from marts.dim_customer group by 1 order by 1"""
        ).fetchall()
    assert rows == [
        ("C0000001", 1, "platinum", "advocate"),
        ("C0000002", 2, "iron", "client"),
        ("C0000003", 2, "unscored", "unscored"),
        ("unknown", 1, "unknown", "unknown"),
    ]
