"""Incremental equals full, and the marts reconcile to raw, on generated messy data.

The messy generated set (conftest's ``landing_messy``: duplicates, late files, unknown skus,
malformed rows) is delivered in batches of days, first with the wrong versions of the files
the generator later re-delivers (``superseded/``); after each batch the real ingest loads it
and dbt builds incrementally with a short lookback (2 days), so late files must be picked up
through the load high-water mark. A last batch re-delivers the corrected files: ingest
replaces their rows and the incremental staging tables, sessions and facts must follow. A
full refresh on the same raw layer must then produce exactly the same rows, and the
reconciliation tests (fct_sales net sales recomputed from raw, the customer-month snapshot
against the facts) must pass. Before each build a scoring run moves a third of the customers to
another tier, so the cubes kept by difference (cube_sales, cube_contacts) must move whole
histories as well as add the new days.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from warehouse.build import BuildError, build
from warehouse.config import load_settings

TABLES = {
    "staging.stg_web_events__events": "event_id",
    "staging.stg_pos_sales__lines": "store_id, receipt_no, line_no",
    "staging.stg_online_orders__orders": "order_id",
    "staging.stg_online_orders__lines": "order_id, line_no",
    "staging.stg_call_center__calls": "call_id",
    "staging.stg_voc__cases": "voc_id",
    "staging.stg_sales_activities__activities": "activity_id",
    "staging.stg_surveys__responses": "response_id",
    "staging.stg_loyalty_points__entries": "entry_id",
    "staging.stg_finance_monthly__customer_months": "month, customer_id",
    "intermediate.int_web_sessions_identified": "session_id",
    "fct_sales": "sales_line_id",
    "fct_contacts": "contact_id",
    "fct_feedback": "feedback_id",
    "fct_campaign_touches": "touch_id",
    "fct_customer_month": "customer_id, month",
    "dim_customer": "customer_key",
    "cubes.cube_sales": "grouping_id, month, sales_channel, category, region, pyramid_tier",
    "cubes.cube_contacts": "grouping_id, month, contact_channel, reason, resolution, pyramid_tier",
    # the cubes' state (macros/cubes/cube_difference.sql): a run by difference updates it
    "cube_state.cube_sales_rows": "all",
    "cube_state.cube_sales_customer": "all",
    "cube_state.cube_sales_product": "all",
    "cube_state.cube_contacts_rows": "all",
    "cube_state.cube_contacts_customer": "all",
}
EVENTS_HIGH_WATER = "select max(_loaded_at) from staging.stg_web_events__events"
# the marts and everything upstream (staging, intermediate), and the cubes kept by difference
MARTS = "+path:models/marts cube_sales cube_contacts"
NO_TESTS = "resource_type:test resource_type:unit_test"
START = date(2024, 1, 1)
# Day offsets, inclusive. The last batch's lookback window lies in February: the cubes kept by
# difference recompute the February rows of its customers and keep their January rows.
BATCHES = [(0, 11), (12, 24), (25, 45), (46, 59)]
# Files whose correction this test makes itself (the generator's re-deliveries in the messy set
# are a campaign_touches and a voc file): a web events file that loses one whole session and
# one event of another, a POS file delivered first without its last three lines, and (in the
# fixture) a POS file without one customer's receipt, one corrected to no lines (_emptied) and
# a web events file without the first events of a session that crosses midnight
# (_without_a_session_start).
SHRUNK = "web_events/dt=2024-01-04/web_events_20240104.jsonl"
GROWN = "pos_sales/dt=2024-01-06/pos_S002_20240106.csv"
# A product snapshot corrected after the last batch, on its own, to move one product to another
# category: the cubes kept by difference must move all its sales, though no fact changed.
RECATEGORISED = "products/dt=2024-02-01/products_20240201.csv"
# A login delivered late (in the second batch), an hour before a session the first batch built
# as anonymous: that session, and any later one of the same browser, must be re-stitched.
LATE_LOGIN = "web_events/dt=2024-01-14/web_events_late_login.jsonl"


def _rows(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            t: con.execute(f"select * from {t if '.' in t else 'marts.' + t} order by {k}").fetchall()
            for t, k in TABLES.items()
        }


def _late_login(landing: Path, last_day: date) -> tuple[str, set[str]]:
    """Write LATE_LOGIN: customer C0000001 logging in on the browser of the first session
    delivered by ``last_day`` whose browser never identifies itself, an hour before that
    session starts. Returns the browser and its sessions from then on in those deliveries."""
    events = [
        json.loads(line)
        for path in sorted((landing / "web_events").glob("dt=*/*.jsonl"))
        if date.fromisoformat(path.parent.name[3:]) <= last_day
        for line in path.read_bytes().splitlines()
    ]
    named = {e["anonymous_id"] for e in events if e["customer_id"]}
    starts: dict[tuple[str, str], str] = {}
    for e in events:
        if e["anonymous_id"] and e["anonymous_id"] not in named:
            key = (e["anonymous_id"], e["session_id"])
            starts[key] = min(starts.get(key, e["ts"]), e["ts"])
    (browser, session), start = min(starts.items(), key=lambda kv: kv[1])
    login_at = datetime.fromisoformat(start) - timedelta(hours=1)
    login = {
        **{k: None for k in events[0]},
        "event_id": "E_LATE_LOGIN",
        "ts": login_at.isoformat(),
        "anonymous_id": browser,
        "customer_id": "C0000001",
        "session_id": "SS_LATE_LOGIN",
        "channel": "web",
        "event_type": "login",
        "page": "/login",
        "device": "desktop",
    }
    (landing / LATE_LOGIN).parent.mkdir(parents=True, exist_ok=True)
    (landing / LATE_LOGIN).write_text(json.dumps(login) + "\n")
    later = {s for (b, s), at in starts.items() if b == browser and at >= start}
    return browser, later


def _score(warehouse: Path, run: int) -> None:
    """Scoring run ``run``: every customer gets a tier, and a third of them another one at each
    run (the cubes slice by the latest tier)."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists mining")
        con.execute(
            """create or replace table mining.customer_scores as
               select
                   customer_id,
                   ['platinum', 'gold', 'iron', 'lead'][1 + cast(
                       (hash(customer_id) + case when hash(customer_id) % 3 = 0 then $run else 0 end) % 4
                   as integer)] as pyramid_tier,
                   'customer' as relationship_stage
               from (select distinct customer_id from raw.customers) as customers""",
            {"run": run},
        )


def _without_a_last_sale(landing: Path) -> tuple[str, bytes]:
    """A POS file (of the first customer, by id, who never orders online and has one receipt
    from GROWN's day on) without that receipt: the customer's rows leave the days the last
    build rewrites, so only the cube's state knows they held sales there."""
    online = b"".join(p.read_bytes() for p in (landing / "online_orders").rglob("*.jsonl"))
    receipts: dict[str, set[tuple[str, str]]] = {}
    for path in sorted((landing / "pos_sales").rglob("*.csv")):
        for row in csv.DictReader(path.read_text().splitlines()):
            if row["customer_id"] and row["sold_at"] >= "20240106":
                rel = path.relative_to(landing).as_posix()
                receipts.setdefault(row["customer_id"], set()).add((rel, row["receipt_no"]))
    customer = min(c for c, r in receipts.items() if len(r) == 1 and c.encode() not in online)
    ((rel, receipt),) = receipts[customer]
    lines = (landing / rel).read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(f'"{receipt}",'.encode())]
    assert rel != GROWN and 1 < len(kept) < len(lines)
    return rel, b"".join(kept)


def _emptied(landing: Path, avoid: set[str]) -> str:
    """The first POS file of the first batch's last day, outside `avoid`, that holds sales: its
    correction holds none, so no row of it names the day whose sales it takes away."""
    day = START + timedelta(days=BATCHES[0][1])
    for path in sorted((landing / "pos_sales" / f"dt={day.isoformat()}").glob("*.csv")):
        rel = path.relative_to(landing).as_posix()
        if rel not in avoid and len(path.read_bytes().splitlines()) > 1:
            return rel
    raise AssertionError(f"no POS file with sales on {day}")


def _recategorised(landing: Path) -> bytes:
    """RECATEGORISED with the product sold on most POS lines in the category of the first
    product of another category."""
    sold = Counter(
        row["sku"] for path in (landing / "pos_sales").rglob("*.csv") for row in csv.DictReader(path.open())
    )
    lines = (landing / RECATEGORISED).read_bytes().splitlines(keepends=True)
    rows = list(csv.reader(line.decode() for line in lines))
    at = rows[0].index("category")
    i = max(range(1, len(rows)), key=lambda i: sold[rows[i][0]])
    new = next(row[at] for row in rows[1:] if row[at] != rows[i][at])
    changed = lines[i].replace(f',"{rows[i][at]}",'.encode(), f',"{new}",'.encode(), 1)
    assert changed != lines[i] and sold[rows[i][0]] >= 3
    return b"".join([*lines[:i], changed, *lines[i + 1 :]])


def _without_a_session(path: Path) -> bytes:
    """The file's lines minus every event of its first session and one event of its second."""
    lines = path.read_bytes().splitlines(keepends=True)
    sessions = list(dict.fromkeys(json.loads(line)["session_id"] for line in lines))
    dropped_one = False
    kept = []
    for line in lines:
        session = json.loads(line)["session_id"]
        if session == sessions[0] or (session == sessions[1] and not dropped_one):
            dropped_one = dropped_one or session == sessions[1]
            continue
        kept.append(line)
    return b"".join(kept)


def _session_of(line: bytes) -> str | None:
    """The session of a web event line; None for a line that is no JSON object (the messy set
    has some: ingest quarantines them)."""
    try:
        return json.loads(line)["session_id"]
    except (ValueError, KeyError, TypeError):
        return None


def _without_a_session_start(landing: Path, avoid: set[str]) -> tuple[str, bytes]:
    """A web events file, outside `avoid`, without the events of a session that goes on in the
    next day's file: the session now starts the next day, and no row of either file loaded
    since names it."""
    files: dict[str, list[str]] = {}
    for path in sorted((landing / "web_events").glob("dt=2024-0[12]-*/*.jsonl")):
        for line in path.read_bytes().splitlines():
            files.setdefault(_session_of(line), []).append(path.relative_to(landing).as_posix())
    session, rel = next(
        (s, f[0]) for s, f in files.items() if s and len(set(f)) == 2 and f[0] < f[-1] and f[0] not in avoid
    )
    lines = (landing / rel).read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if _session_of(line) != session]
    assert 0 < len(kept) < len(lines)
    return rel, b"".join(kept)


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory, landing_messy: Path) -> dict:
    from warehouse.ingest import ingest

    home = tmp_path_factory.mktemp("dbt_incremental")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMWH_HOME", str(home))
        settings = load_settings()
    # The landing as first delivered: the wrong version of every file re-delivered later.
    landing = home / "landing"
    shutil.copytree(Path(landing_messy) / "landing", landing)
    superseded = Path(landing_messy) / "superseded"
    wrong = [p for p in superseded.rglob("*") if p.is_file()]
    for path in wrong:
        shutil.copyfile(path, landing / path.relative_to(superseded))
    dropped_sale, without_it = _without_a_last_sale(landing)
    emptied = _emptied(landing, avoid={GROWN, dropped_sale})
    moved_start, without_its_start = _without_a_session_start(landing, avoid={SHRUNK})
    corrections = {
        moved_start: without_its_start,
        SHRUNK: _without_a_session(landing / SHRUNK),
        GROWN: (landing / GROWN).read_bytes(),
        dropped_sale: without_it,
        emptied: (landing / emptied).read_bytes().splitlines(keepends=True)[0],
    }
    (landing / GROWN).write_bytes(b"".join(corrections[GROWN].splitlines(keepends=True)[:-3]))
    browser, expected_restitched = _late_login(landing, last_day=START + timedelta(days=BATCHES[0][1]))
    sessions = "select session_id, identified_by from intermediate.int_web_sessions_identified"

    runs = iter(range(len(BATCHES) + 2))

    def load_and_build(days: list[date]) -> dict:
        loaded = ingest(settings.warehouse, landing, days=days)
        _score(settings.warehouse, next(runs))
        build(settings, select=MARTS, exclude=NO_TESTS, vars={"lookback_days": 2})
        return loaded

    after_batch, high_waters = [], []
    for first, last in BATCHES:
        load_and_build([START + timedelta(days=d) for d in range(first, last + 1)])
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            after_batch.append(dict(con.execute(sessions).fetchall()))
            high_waters.append(con.execute(EVENTS_HIGH_WATER).fetchone()[0])
    # The corrected versions arrive: same paths, new content.
    for path in wrong:
        shutil.copyfile(
            Path(landing_messy) / "landing" / path.relative_to(superseded),
            landing / path.relative_to(superseded),
        )
    for rel, content in corrections.items():
        (landing / rel).write_bytes(content)
    corrected = load_and_build([START + timedelta(days=d) for d in range(BATCHES[0][0], BATCHES[-1][1] + 1)])
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        high_waters.append(con.execute(EVENTS_HIGH_WATER).fetchone()[0])
    (landing / RECATEGORISED).write_bytes(_recategorised(landing))
    recategorised = load_and_build([date(2024, 2, 1)])
    incremental = _rows(settings.warehouse)
    cube_sql = (
        settings.home / "dbt" / "target" / "compiled" / "crmwh" / "models" / "cubes" / "cube_sales.sql"
    ).read_text()
    full = build(settings, full_refresh=True, select=MARTS)
    return {
        "settings": settings,
        "incremental": incremental,
        "full": _rows(settings.warehouse),
        "summary": full,
        "cube_sql": cube_sql,
        "wrong_files": wrong,
        "dropped_sale": dropped_sale,
        "emptied": emptied,
        "moved_start": moved_start,
        "sessions_after_batch": after_batch,
        "expected_restitched": expected_restitched,
        "events_high_water_after_batch": high_waters,
        "corrected": corrected,
        "recategorised": recategorised,
    }


def test_incremental_equals_full_refresh(batches: dict) -> None:
    for table in TABLES:
        incremental, full = batches["incremental"][table], batches["full"][table]
        assert len(incremental) == len(full), table
        assert incremental == full, table
    assert len(batches["full"]["fct_sales"]) > 100
    assert len(batches["full"]["fct_contacts"]) > 100


def test_the_cubes_were_kept_by_difference(batches: dict) -> None:
    """The last incremental build aggregated the changed customers' rows only, not the facts."""
    sql = batches["cube_sql"]
    assert "cube_sales__changed" in sql
    assert 'marts"."fct_sales' not in sql
    tiers = {row[4] for row in batches["full"]["cubes.cube_sales"]}
    assert tiers == {"platinum", "gold", "iron", "lead", "unknown", "ALL"}


def test_a_late_login_restitches_sessions_built_before_it_arrived(batches: dict) -> None:
    first, second = batches["sessions_after_batch"][:2]
    restitched = {s for s, how in first.items() if how == "anonymous" and second.get(s) == "login"}
    assert restitched == batches["expected_restitched"]
    assert len(restitched) >= 1
    # Nothing else changed identity: every other session of the first batch kept its own.
    assert all(second[s] == how for s, how in first.items() if s not in restitched)


def _marks(warehouse: Path, model: str) -> list[tuple[datetime, bool | None]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select high_water, passed from ops.dbt_incremental_runs where model = ? order by recorded_at",
            [model],
        ).fetchall()


def test_builds_without_tests_leave_the_high_water_mark_where_tests_last_passed(batches: dict) -> None:
    """ops.dbt_incremental_runs holds, per build, the mark the model's data tests filter on. The
    fixture's incremental builds ran no tests, so none of them moved it from the beginning of
    time: the next build with tests (here the full refresh) tests every row."""
    beginning = datetime(1900, 1, 1)
    after = batches["events_high_water_after_batch"]
    assert len(after) == len(BATCHES) + 1  # the batches and the corrected files
    assert after == sorted(set(after))  # the table's latest load grew with each batch
    marks = _marks(batches["settings"].warehouse, "stg_web_events__events")
    assert marks == [(beginning, False)] * (len(after) + 1) + [(beginning, True)]


def test_a_rerun_tests_again_the_rows_a_failed_run_rejected(batches: dict, tmp_path: Path) -> None:
    """A run whose data tests fail leaves its rows in the table. The next run must test them
    again, not only the rows loaded since: before, a plain rerun passed and let them through."""
    settings = replace(batches["settings"], warehouse=tmp_path / "build.duckdb")
    shutil.copyfile(batches["settings"].warehouse, settings.warehouse)
    model = "stg_web_events__events"
    build(settings, select=model)
    with duckdb.connect(str(settings.warehouse)) as con:
        tested = con.execute(EVENTS_HIGH_WATER).fetchone()[0]
        # An event without a session (ingest loads it: session_id is no key column), loaded last.
        con.execute(
            """insert into raw.web_events by name
            select * replace (event_id || '-x' as event_id, null as session_id, _line + 1000000 as _line,
                              (select max(_loaded_at) from raw.web_events) + interval 1 minute as _loaded_at)
            from raw.web_events limit 1"""
        )
    for _ in range(2):
        with pytest.raises(BuildError, match="not_null_stg_web_events__events_session_id"):
            build(settings, select=model)
    assert _marks(settings.warehouse, model)[-3:] == [(tested, True), (tested, False), (tested, False)]


def test_the_last_batch_corrected_every_wrong_file_of_its_days(batches: dict) -> None:
    corrected = sorted(f["path"] for f in batches["corrected"]["files"] if f["status"] == "corrected")
    wrong = [p.relative_to(p.parents[2]).as_posix() for p in batches["wrong_files"]]
    ours = [SHRUNK, GROWN, batches["dropped_sale"], batches["emptied"], batches["moved_start"]]
    assert corrected == sorted([*wrong, *ours])
    recategorised = [f["path"] for f in batches["recategorised"]["files"] if f["status"] == "corrected"]
    assert recategorised == [RECATEGORISED]


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


def test_a_failed_cube_run_changes_neither_cube_nor_state(batches: dict, tmp_path: Path) -> None:
    """In a run by difference cube_prepare writes only temporary tables, and cube_write_state
    writes the state in the model's transaction. So a run by difference that fails after its
    hooks leaves cube and state as they were."""
    settings = replace(batches["settings"], warehouse=tmp_path / "build.duckdb")
    shutil.copyfile(batches["settings"].warehouse, settings.warehouse)
    kept = ("cubes.cube_sales", "cube_state.cube_sales_rows", "cube_state.cube_sales_customer")

    def contents() -> dict[str, list[tuple]]:
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            return {t: sorted(con.execute(f"select * from {t}").fetchall(), key=repr) for t in kept}

    def alter(sql: str) -> None:
        with duckdb.connect(str(settings.warehouse)) as con:
            con.execute(sql)

    before = contents()
    _score(settings.warehouse, 7)
    build(settings, select="dim_customer", exclude=NO_TESTS)
    # The model's columns no longer match the table's: on_schema_change='fail' stops the run in
    # its transaction, after cube_prepare and cube_write_state ran.
    alter("alter table cubes.cube_sales add column stray integer")
    with pytest.raises(BuildError, match="cube_sales"):
        build(settings, select="cube_sales", exclude=NO_TESTS)
    alter("alter table cubes.cube_sales drop column stray")
    assert contents() == before
    # The same run without the stray column rewrites the state: the scores moved tiers.
    build(settings, select="cube_sales", exclude=NO_TESTS)
    after = contents()
    assert after["cube_state.cube_sales_customer"] != before["cube_state.cube_sales_customer"]
    assert after["cube_state.cube_sales_rows"] != before["cube_state.cube_sales_rows"]


def test_the_days_a_run_rewrites_become_ranges_its_scans_can_skip_by(batches: dict) -> None:
    # Older days in a row become one range, a range that touches the window joins it, and a
    # day alone stays a day: comparisons a scan takes, where a list of days became a join. A
    # source's own days (fct_contacts: voc cases that came again) rewrite that source's rows.
    from warehouse.build import run_dbt

    days = [f"2025-11-{d}" for d in range(22, 31)] + ["2025-12-03", "2025-12-23", "2025-12-24"]
    voc = ["2025-10-01", "2025-10-02", "2025-10-09"]
    bounds = {"start": "2025-12-25", "days": days, "source_days": {"voc": voc}}
    inline = "{{ in_incremental_ranges('d', " + str(bounds) + ") }}"
    [result] = run_dbt(batches["settings"], ["compile", "--inline", inline]).result.results
    assert result.node.compiled_code == (
        "((d >= cast('2025-11-22' as date) and d < cast('2025-12-01' as date))"
        " or (d >= cast('2025-12-03' as date) and d < cast('2025-12-04' as date))"
        " or d >= cast('2025-12-23' as date)"
        " or (source = 'voc' and ((d >= cast('2025-10-01' as date) and d < cast('2025-10-03' as date))"
        " or (d >= cast('2025-10-09' as date) and d < cast('2025-10-10' as date)))))"
    )
