"""``crmwh ingest-transactions``: a user's transaction log and the real CDNOW sample."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from warehouse.transactions import ingest_transactions

DATA = Path(__file__).parent / "data" / "ingest"
# The real CDNOW sample, copied from shared/datasets/cdnow (its README there names the source).
CDNOW = Path(__file__).resolve().parent / "data" / "cdnow" / "CDNOW_sample.txt"


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_csv_with_header_loads_good_rows_and_quarantines_the_rest(tmp_path: Path) -> None:
    src = tmp_path / "export.csv"
    shutil.copy(DATA / "transactions.csv", src)
    warehouse = tmp_path / "build.duckdb"
    result = ingest_transactions(warehouse, src, "cust", "when", "total")
    assert (result["status"], result["rows_read"], result["rows_loaded"], result["rows_quarantined"]) == (
        "loaded",
        6,
        2,
        4,
    )
    assert _rows(
        warehouse, "select customer_id, txn_date, amount, _line from raw.transactions order by _line"
    ) == [
        ("A1", date(2024, 1, 5), 1000.0, 2),
        ("A2", date(2024, 1, 6), 2500.5, 3),
    ]
    assert _rows(warehouse, "select line, reason, detail from raw._quarantine order by line") == [
        (4, "missing key", "empty customer id in column cust"),
        (5, "type", "when=not-a-date is not a date (YYYY-MM-DD or YYYYMMDD; pass --date-format)"),
        (6, "type", "total=abc is not a number"),
        (7, "parse", "CSV record: missing columns"),
    ]
    # Same content again: skipped. Corrected content: replaces the rows of the earlier version.
    assert ingest_transactions(warehouse, src, "cust", "when", "total")["status"] == "skipped"
    src.write_text("order,cust,when,total\n1,A1,2024-01-05,1200\n")
    assert ingest_transactions(warehouse, src, "2", "3", "4")["status"] == "corrected"
    assert _rows(warehouse, "select customer_id, amount from raw.transactions") == [("A1", 1200.0)]


def test_unknown_column_names_the_file_and_its_columns(tmp_path: Path) -> None:
    import click

    src = tmp_path / "export.csv"
    shutil.copy(DATA / "transactions.csv", src)
    with pytest.raises(click.BadParameter, match=r"export.csv: no column 'customer'.*'cust'"):
        ingest_transactions(tmp_path / "w.duckdb", src, "customer", "when", "total")


def test_cdnow_whitespace_without_header_via_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from warehouse.cli import main

    monkeypatch.setenv("CRMWH_HOME", str(tmp_path))
    args = ["ingest-transactions", str(CDNOW), "--delimiter", "whitespace", "--no-header"]
    args += ["--customer-col", "1", "--date-col", "3", "--amount-col", "5", "--date-format", "%Y%m%d"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "read=6919 loaded=6919 quarantined=0" in result.output
    # Figures of the CDNOW README (2,357 customers, 6,919 rows, Jan 1997 - Jun 1998), and the
    # dollar total recomputed from the text file itself.
    expected_total = round(
        sum(float(line.split()[4]) for line in CDNOW.read_text().splitlines() if line.strip()), 2
    )
    warehouse = tmp_path / "warehouse" / "build.duckdb"
    [(rows, customers, total, first, last)] = _rows(
        warehouse,
        "select count(*), count(distinct customer_id), round(sum(amount), 2), min(txn_date), max(txn_date) from raw.transactions",
    )
    assert (rows, customers, total) == (6919, 2357, expected_total)
    assert (first, last) == (date(1997, 1, 1), date(1998, 6, 30))
    assert _rows(warehouse, "select customer_id, txn_date, amount from raw.transactions where _line = 1") == [
        ("00004", date(1997, 1, 1), 29.33)
    ]
