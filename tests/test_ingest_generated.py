"""Ingest on the generator's landing zones (tests/conftest.py): round trips and reconciliations.

The generator's truth says what each file holds (``truth/files.csv``: rows per file) and every
defect it injected (``truth/mess.csv``); ingest must agree with both exactly.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from warehouse.contracts import SOURCES
from warehouse.ingest import ingest

SEOUL = ZoneInfo("Asia/Seoul")
# The generator's malformed kinds and the quarantine reason each must get.
REASON_OF_KIND = {
    "malformed:field_count": "parse",
    "malformed:broken_json": "parse",
    "malformed:non_numeric": "type",
    "malformed:unknown_enum": "unknown enum",
    "malformed:missing_key": "missing key",
}
COUNTS = "select " + ", ".join(f"(select count(*) from raw.{s})" for s in [*SOURCES, "online_order_lines"])


def _rows(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _truth(out: Path, name: str) -> list[dict[str, str]]:
    with open(out / "truth" / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _csv_records(landing: Path, source: str) -> list[dict[str, str]]:
    """Every record of a CSV source, read by Python's csv module in the declared encoding."""
    out = []
    for path in sorted((landing / source).glob("dt=*/*")):
        with open(path, newline="", encoding=SOURCES[source].encoding) as f:
            out += list(csv.DictReader(f))
    return out


@pytest.fixture(scope="module")
def clean(landing_clean: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    warehouse = tmp_path_factory.mktemp("ingest_clean") / "build.duckdb"
    summary = ingest(warehouse, landing_clean / "landing", run_id="clean-1")
    return warehouse, landing_clean, summary


@pytest.fixture(scope="module")
def messy(landing_messy: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    warehouse = tmp_path_factory.mktemp("ingest_messy") / "build.duckdb"
    summary = ingest(warehouse, landing_messy / "landing", run_id="messy-1")
    return warehouse, landing_messy, summary


def test_clean_every_generated_row_loads(clean: tuple[Path, Path, dict]) -> None:
    warehouse, out, _ = clean
    expected = {r["path"]: int(r["rows"]) for r in _truth(out, "files.csv")}
    got = {
        p: (read, loaded, q)
        for p, read, loaded, q in _rows(
            warehouse,
            "select path, rows_read, rows_loaded, rows_quarantined from raw._files where status = 'loaded'",
        )
    }
    assert got == {p: (n, n, 0) for p, n in expected.items()}
    assert _rows(warehouse, "select count(*) from raw._quarantine") == [(0,)]
    for source in SOURCES:
        [(n,)] = _rows(warehouse, f"select count(*) from raw.{source}")
        assert n == sum(v for p, v in expected.items() if p.startswith(source + "/")), source


def test_clean_values_round_trip(clean: tuple[Path, Path, dict]) -> None:
    warehouse, out, _ = clean
    landing = out / "landing"
    # Korean text (names, cities, call summaries) arrives intact.
    customers = Counter(
        (r["customer_id"], r["name"], r["city"], r["email"] or None)
        for r in _csv_records(landing, "customers")
    )
    assert Counter(_rows(warehouse, "select customer_id, name, city, email from raw.customers")) == customers
    assert any(any("\uac00" <= ch <= "\ud7a3" for ch in name) for _, name, _, _ in customers)
    calls = Counter(
        (r["call_id"], r["summary"] or None, int(r["csat"]) if r["csat"] else None)
        for r in _csv_records(landing, "call_center")
    )
    assert Counter(_rows(warehouse, "select call_id, summary, csat from raw.call_center")) == calls
    # CP949 POS files: every number and the compact timestamp.
    pos = Counter(
        (
            r["store_id"],
            r["receipt_no"],
            int(r["line_no"]),
            datetime.strptime(r["sold_at"], "%Y%m%d%H%M%S"),
            int(r["qty"]),
            int(r["unit_price"]),
        )
        for r in _csv_records(landing, "pos_sales")
    )
    assert (
        Counter(
            _rows(
                warehouse, "select store_id, receipt_no, line_no, sold_at, qty, unit_price from raw.pos_sales"
            )
        )
        == pos
    )


def test_clean_orders_offsets_structs_and_lines(clean: tuple[Path, Path, dict]) -> None:
    warehouse, out, _ = clean
    orders, lines = Counter(), Counter()
    for path in sorted((out / "landing" / "online_orders").glob("dt=*/*.jsonl")):
        for text in path.read_text(encoding="utf-8").splitlines():
            o = json.loads(text)
            local = datetime.fromisoformat(o["ordered_at"]).astimezone(SEOUL).replace(tzinfo=None)
            updated = datetime.fromisoformat(o["updated_at"]).astimezone(SEOUL).replace(tzinfo=None)
            orders[
                (
                    o["order_id"],
                    local,
                    o["status"],
                    o["payment"]["method"],
                    o["payment"]["installment_months"],
                )
            ] += 1
            for i, ln in enumerate(o["lines"], start=1):
                lines[
                    (o["order_id"], updated, i, ln["sku"], ln["qty"], ln["unit_price"], ln["discount_amt"])
                ] += 1
    got = _rows(
        warehouse,
        "select order_id, ordered_at, status, payment.method, payment.installment_months from raw.online_orders",
    )
    assert Counter(got) == orders
    got = _rows(
        warehouse,
        "select order_id, updated_at, line_no, sku, qty, unit_price, discount_amt from raw.online_order_lines",
    )
    assert Counter(got) == lines


def test_ingesting_twice_changes_no_count(clean: tuple[Path, Path, dict]) -> None:
    warehouse, out, _ = clean
    before = _rows(warehouse, COUNTS) + _rows(warehouse, "select count(*), max(file_id) from raw._files")
    again = ingest(warehouse, out / "landing", run_id="clean-2")
    assert {f["status"] for f in again["files"]} == {"skipped"}
    assert (
        _rows(warehouse, COUNTS) + _rows(warehouse, "select count(*), max(file_id) from raw._files") == before
    )


def test_messy_quarantine_matches_the_injected_defects_exactly(messy: tuple[Path, Path, dict]) -> None:
    warehouse, out, _ = messy
    injected = {
        (r["source"], r["path"], int(r["line"])): REASON_OF_KIND[r["kind"]]
        for r in _truth(out, "mess.csv")
        if r["kind"].startswith("malformed:")
    }
    assert injected, "the messy fixture should hold malformed rows"
    quarantined = {
        (s, p, line): reason
        for s, p, line, reason in _rows(warehouse, "select source, path, line, reason from raw._quarantine")
    }
    assert quarantined == injected


def test_messy_counts_reconcile_per_file(messy: tuple[Path, Path, dict]) -> None:
    warehouse, out, summary = messy
    expected = {r["path"]: int(r["rows"]) for r in _truth(out, "files.csv")}
    files = _rows(
        warehouse, "select path, rows_read, rows_loaded, rows_quarantined, file_id, source from raw._files"
    )
    assert {p: read for p, read, *_ in files} == expected
    in_tables = " union all ".join(f"select _file_id, count(*) from raw.{s} group by all" for s in SOURCES)
    counted = dict(_rows(warehouse, in_tables))
    quarantined_rows = dict(_rows(warehouse, "select file_id, count(*) from raw._quarantine group by all"))
    for path, read, loaded, quarantined, file_id, _ in files:
        assert read == loaded + quarantined, path
        assert (counted.get(file_id, 0), quarantined_rows.get(file_id, 0)) == (loaded, quarantined), path
    totals = {
        k: sum(s[k] for s in summary["sources"].values())
        for k in ("rows_read", "rows_loaded", "rows_quarantined")
    }
    assert totals["rows_read"] == sum(expected.values())
    assert totals["rows_read"] == totals["rows_loaded"] + totals["rows_quarantined"]


def test_messy_duplicates_and_out_of_range_rows_load(messy: tuple[Path, Path, dict]) -> None:
    warehouse, out, _ = messy
    loading = [
        r
        for r in _truth(out, "mess.csv")
        if r["kind"] == "duplicate" or r["kind"].startswith(("out_of_range", "unknown_sku"))
    ]
    assert loading
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for r in loading:
            got = con.execute(
                f"select count(*) from raw.{r['source']} t join raw._files f on f.file_id = t._file_id"
                " where f.path = ? and t._line = ?",
                [r["path"], int(r["line"])],
            ).fetchall()
            assert got == [(1,)], r


def test_redelivered_files_replace_the_rows_of_their_first_version(
    landing_messy: Path, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(landing_messy / "landing", landing)
    # A re-delivery whose first version has the same bytes is the same file: it is skipped.
    redelivered = [
        r["path"]
        for r in _truth(landing_messy, "redeliveries.csv")
        if (landing_messy / "superseded" / r["path"]).read_bytes()
        != (landing_messy / "landing" / r["path"]).read_bytes()
    ]
    assert redelivered
    for rel in redelivered:
        shutil.copy(landing_messy / "superseded" / rel, landing / rel)
    warehouse = tmp_path / "build.duckdb"
    ingest(warehouse, landing, run_id="first")
    for rel in redelivered:
        shutil.copy(landing_messy / "landing" / rel, landing / rel)
    second = ingest(warehouse, landing, run_id="second")
    statuses = {f["path"]: f["status"] for f in second["files"]}
    assert {p for p, s in statuses.items() if s == "corrected"} == set(redelivered)
    assert {s for p, s in statuses.items() if p not in redelivered} == {"skipped"}
    replaced = _rows(warehouse, "select path from raw._files where status = 'replaced'")
    assert sorted(p for (p,) in replaced) == sorted(redelivered)

    # The result equals loading the corrected landing once.
    reference = tmp_path / "reference.duckdb"
    ingest(reference, landing)
    assert _rows(warehouse, COUNTS) == _rows(reference, COUNTS)
    for source in ("pos_sales", "online_orders", "call_center", "web_events"):
        cols = ", ".join("t." + c for c in SOURCES[source].column_names)
        sql = f"select {cols}, f.path, t._line from raw.{source} t join raw._files f on f.file_id = t._file_id order by all"
        assert _rows(warehouse, sql) == _rows(reference, sql), source
