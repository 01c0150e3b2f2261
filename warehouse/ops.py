"""The run audit: ``ops.runs``, ``ops.steps`` and ``ops.validations`` in the build warehouse.

Data engineers need to know what ran, how long it took, how many rows it touched and which
expectation stopped it; BI tools read the same tables from the published copy. Each write
opens the build file for a moment and closes it again, because the step being recorded needs
DuckDB's single writer slot for itself.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

OPS_DDL = """
create schema if not exists ops;
create table if not exists ops.runs (
    run_id varchar primary key,
    date_from date,
    date_to date,
    trigger varchar,
    started_at timestamp,
    finished_at timestamp,
    seconds double,
    status varchar,
    error varchar,
    published_version varchar
);
create table if not exists ops.steps (
    run_id varchar,
    step varchar,
    logical_date date,
    started_at timestamp,
    finished_at timestamp,
    seconds double,
    rows bigint,
    status varchar,
    detail varchar,
    error varchar
);
create table if not exists ops.validations (
    run_id varchar,
    step varchar,
    suite varchar,
    expectation varchar,
    "column" varchar,
    success boolean,
    critical boolean,
    observed varchar,
    validated_at timestamp
);
"""

# Statuses: a step or run is 'running' until it ends as 'success', 'failed' (an error) or
# 'blocked' (a critical expectation failed: the run stopped before publish, by design).
STATUSES = ("running", "success", "failed", "blocked")


def utcnow() -> datetime:
    """Naive UTC timestamp (DuckDB TIMESTAMP), the clock of every audit row."""
    return datetime.now(UTC).replace(tzinfo=None)


def connect(warehouse: Path):
    """Open the build warehouse for writing and make sure the audit tables exist."""
    import duckdb

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    con.execute(OPS_DDL)
    return con


def start_run(
    warehouse: Path, run_id: str, date_from: date, date_to: date | None = None, trigger: str = "cli"
) -> str:
    """Record a run as started; a re-used run id (an Airflow retry) restarts its row."""
    con = connect(warehouse)
    try:
        con.execute("delete from ops.runs where run_id = ?", [run_id])
        con.execute(
            "insert into ops.runs (run_id, date_from, date_to, trigger, started_at, status)"
            " values (?, ?, ?, ?, ?, 'running')",
            [run_id, date_from, date_to or date_from, trigger, utcnow()],
        )
    finally:
        con.close()
    return run_id


def finish_run(
    warehouse: Path,
    run_id: str,
    status: str,
    error: str | None = None,
    published_version: str | None = None,
) -> None:
    """Close a run's row with its outcome (see STATUSES)."""
    if status not in STATUSES:
        raise ValueError(f"run status {status!r} is not one of {STATUSES}")
    con = connect(warehouse)
    try:
        now = utcnow()
        con.execute(
            "update ops.runs set finished_at = ?, status = ?, error = ?,"
            " seconds = date_diff('millisecond', started_at, ?::timestamp) / 1000.0,"
            " published_version = coalesce(?, published_version) where run_id = ?",
            [now, status, error, now, published_version, run_id],
        )
    finally:
        con.close()


def _insert_step(warehouse: Path, row: dict) -> None:
    con = connect(warehouse)
    try:
        con.execute(
            "delete from ops.steps where run_id = ? and step = ? and logical_date is not distinct from ?",
            [row["run_id"], row["step"], row["logical_date"]],
        )
        con.execute(
            "insert into ops.steps values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row["run_id"],
                row["step"],
                row["logical_date"],
                row["started_at"],
                row["finished_at"],
                row["seconds"],
                row["rows"],
                row["status"],
                json.dumps(row["detail"], default=str, sort_keys=True) if row["detail"] else None,
                row["error"],
            ],
        )
    finally:
        con.close()


class StepBlocked(RuntimeError):
    """A critical expectation failed: the run stops here and nothing is published."""


@contextmanager
def step(warehouse: Path, run_id: str, name: str, logical_date: date | None) -> Iterator[dict]:
    """Time one pipeline step and record it in ``ops.steps``.

    The body fills ``rows`` and ``detail`` in the yielded dict. An exception marks the step
    'failed' ('blocked' for StepBlocked) and propagates, so the run stops.
    """
    record = {
        "run_id": run_id,
        "step": name,
        "logical_date": logical_date,
        "started_at": utcnow(),
        "rows": None,
        "detail": None,
        "error": None,
        "status": "running",
    }
    started = time.perf_counter()
    try:
        yield record
        record["status"] = "success"
    except StepBlocked as exc:
        record["status"], record["error"] = "blocked", str(exc)
        raise
    except BaseException as exc:
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
        raise
    finally:
        record["finished_at"] = utcnow()
        record["seconds"] = round(time.perf_counter() - started, 3)
        _insert_step(warehouse, record)


def record_validations(warehouse: Path, run_id: str, step_name: str, rows: list[dict]) -> int:
    """Store each expectation's result of one validation step (re-running replaces them)."""
    con = connect(warehouse)
    try:
        con.execute("delete from ops.validations where run_id = ? and step = ?", [run_id, step_name])
        for row in rows:
            con.execute(
                "insert into ops.validations values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    step_name,
                    row.get("suite"),
                    row.get("expectation"),
                    row.get("column"),
                    bool(row.get("success")),
                    bool(row.get("critical")),
                    None if row.get("observed") is None else str(row.get("observed")),
                    row.get("validated_at") or utcnow(),
                ],
            )
    finally:
        con.close()
    return len(rows)


def copy_validations_from(warehouse: Path, run_id: str, step_name: str, table: str) -> int:
    """Copy one suite's rows for ``run_id`` from a ``<schema>._validation`` table into ops."""
    con = connect(warehouse)
    try:
        schema, _, name = table.partition(".")
        exists = con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", [schema, name]
        ).fetchone()[0]
        if not exists:
            return 0
        con.execute("delete from ops.validations where run_id = ? and step = ?", [run_id, step_name])
        con.execute(
            f"""insert into ops.validations
            select run_id, ?, suite, expectation, "column", success, critical, observed::varchar,
                   validated_at
            from {table} where run_id = ?""",
            [step_name, run_id],
        )
        return con.execute(
            "select count(*) from ops.validations where run_id = ? and step = ?", [run_id, step_name]
        ).fetchone()[0]
    finally:
        con.close()
