"""The raw layer's expectations: one suite per source, derived from its contract.

Ingest already set aside every row that does not parse, convert or match an enum, so what can
still be wrong in ``raw`` is what a single row cannot show: a schema that drifted, two
different rows under one key, values that are plausible one by one but not as a whole, a feed
that stopped. Critical expectations (schema, keys, enums) fail the run; ranges and freshness
warn: the contracts call ranges plausible, not valid, and out-of-range rows load (a nullable
column's few values would make any percentage threshold fire on chance).

Each suite validates the rows no run has passed yet, one batch per source: the rows of the
files this run loaded, and of files loaded before whose suite has not passed since (a run the
gate stopped, a `crmwh ingest` without validation). A file is marked passed
(``raw._files.validated_by``) once its source's suite passes without a critical failure, so a
daily run reads one day, not the whole history, and a rerun of a stopped day (under a new run
id: it loads nothing new) checks the rejected rows again instead of letting them through.
Uniqueness is the one fact that reaches across runs: the batch also holds the earlier rows
whose key is a key of the batch (found on the key columns of the whole table), so a key loaded
twice, on two days, is caught on the second. Exact duplicate rows are collapsed: feeds repeat
rows verbatim, those load and staging dedupes them, so "unique key" means no two *different*
rows share a key. Keys: event sources, the contract key; versioned sources, the key including
the version column; snapshot sources and referrals, the key within one delivery (the key plus
``_file_id``). Freshness: the newest event of the batch is at most FRESHNESS_DAYS older than
its latest delivery date.

A batch of more than BATCH_ROWS rows of a source (the first run loads the whole history) is
validated in parts split by a hash of the contract key: rows sharing a key (and exact
duplicates) meet in one part, so uniqueness is still checked across the whole batch; counts
add up over the parts and the freshness maximum is taken over all of them
(``expectations.runner.run_suite_in_parts``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from expectations.runner import (
    BATCH_ROWS,
    DUCKDB_MEMORY,
    SAME_ON_EVERY_PART,
    ExpectationSpec,
    build_data_docs,
    columns_read,
    fetch_frame,
    gate_summary,
    parts_by_key,
    run_suite,
    run_suite_in_parts,
)
from warehouse.contracts import LINEAGE_COLUMNS, SOURCES, Source
from warehouse.raw_schema import ensure_raw_schema

FRESHNESS_DAYS = 7


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def unique_key(source: Source) -> list[str]:
    """The columns that must identify a row of ``raw.<source>`` (see the module docstring)."""
    key = list(source.key)
    if source.kind == "snapshot" or (source.kind == "versioned" and source.version_column is None):
        key.append("_file_id")
    elif source.version_column and source.version_column not in key:
        key.append(source.version_column)
    return key


def suite_for(source: Source, run_date: date | None = None) -> list[ExpectationSpec]:
    """The raw suite of one source, from its contract alone."""
    columns = list(source.column_names) + [name for name, _ in LINEAGE_COLUMNS]
    specs = [ExpectationSpec("ExpectTableColumnsToMatchOrderedList", {"column_list": columns}, critical=True)]
    key = unique_key(source)
    for k in source.key:
        specs.append(ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": k}, critical=True))
    if len(key) == 1:
        specs.append(ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": key[0]}, critical=True))
    else:
        specs.append(ExpectationSpec("ExpectCompoundColumnsToBeUnique", {"column_list": key}, critical=True))
    for column, allowed in source.enums.items():
        specs.append(
            ExpectationSpec(
                "ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(allowed)}, critical=True
            )
        )
    for column, (lo, hi) in source.ranges.items():
        specs.append(
            ExpectationSpec(
                "ExpectColumnValuesToBeBetween", {"column": column, "min_value": lo, "max_value": hi}
            )
        )
    if source.event_time and run_date is not None:
        # Freshness: the newest event of the delivery is at most FRESHNESS_DAYS before it.
        specs.append(
            ExpectationSpec(
                "ExpectColumnMaxToBeBetween",
                {
                    "column": source.event_time,
                    "min_value": datetime.combine(run_date - timedelta(days=FRESHNESS_DAYS), time()),
                },
            )
        )
    return specs


# The files a run validates (parameter: the run id): no passing suite marked them, or the run
# loaded them itself (a retry validates them again).
_PENDING = "status = 'loaded' and (validated_by is null or run_id = ?)"


@dataclass(frozen=True)
class Pending:
    """The files of a source whose rows a run validates (``_PENDING``), as a filter on a raw
    table's ``_file_id``: their id range, which lets DuckDB skip the row groups of other
    files (a day of web_events at L: 0.1 s instead of 1.4 s through ``_run_id``), and the ids
    themselves only when that range holds passed files of the source too."""

    first: int
    last: int
    ids: tuple[int, ...] | None

    def holds(self, column: str) -> str:
        """SQL: does ``column`` (a ``_file_id``) name one of the files?"""
        listed = f" and {column} in ({', '.join(map(str, self.ids))})" if self.ids else ""
        return f"{column} between {self.first} and {self.last}{listed}"


def _pending(con, source: Source, run_id: str) -> Pending:
    """The pending files of ``source`` for run ``run_id`` (there must be some)."""
    query = f"select file_id from raw._files where source = ? and {_PENDING} order by 1"
    ids = [r[0] for r in con.execute(query, [source.name, run_id]).fetchall()]
    in_range = con.execute(
        "select count(*) from raw._files where source = ? and status = 'loaded' and file_id between ? and ?",
        [source.name, ids[0], ids[-1]],
    ).fetchone()[0]
    return Pending(ids[0], ids[-1], None if in_range == len(ids) else tuple(ids))


def _batch(source: Source, files: Pending) -> str:
    """The query of one source's batch: the rows of the pending ``files`` and the earlier rows
    sharing a key with them.

    The semi join reads the batch's keys alone: through a CTE of the batch's rows read twice,
    DuckDB materialized every column of them (web_events' first load at L: 22 s instead of
    2.3 s)."""
    table = f"raw.{_q(source.name)}"
    key = unique_key(source)
    same_key = " and ".join(f"t.{_q(k)} = r.{_q(k)}" for k in key)
    return f"""
        select * from {table} where {files.holds("_file_id")}
        union all
        select t.* from {table} t
        semi join (select {", ".join(_q(k) for k in key)} from {table} where {files.holds("_file_id")}) r
            on {same_key}
        where not ({files.holds("t._file_id")})
        """


def _distinct(source: Source) -> str:
    """The clause that collapses exact duplicates (the first delivered is kept)."""
    cols = ", ".join(_q(c) for c in source.column_names)
    return f"qualify row_number() over (partition by {cols} order by _file_id, _line) = 1"


def _frame(con, source: Source, files: Pending):
    """The batch of one source as one DataFrame, exact duplicates collapsed."""
    return fetch_frame(
        con, f"select * from ({_batch(source, files)}) {_distinct(source)} order by _file_id, _line"
    )


def _frames(con, source: Source, files: Pending, parts: int, columns: list[str]):
    """The batch of one source as ``parts`` DataFrames of ``columns``, split by a hash of the
    contract key, so rows sharing a key meet in one. Exact duplicates are collapsed before the
    split by a GROUP BY of the contract's columns (a third less time than _distinct's window
    at M), with the first delivery's ``_file_id`` where the key needs it; which duplicate
    stands for the others, and the parts' row order, change no count."""
    lineage = [c for c in unique_key(source) if c not in source.column_names]
    cols = ", ".join(_q(c) for c in source.column_names)
    firsts = "".join(f", min({_q(c)}) as {_q(c)}" for c in lineage)
    kept = ", ".join(_q(c) for c in dict.fromkeys([*columns, *source.key]))
    return parts_by_key(
        con,
        f"select {kept} from (select {cols}{firsts} from ({_batch(source, files)}) as batch group by {cols})",
        list(source.key),
        parts,
        columns=columns,
    )


def validate_raw(warehouse: Path, run_id: str, settings: Any, sources: list[str] | None = None) -> dict:
    """Run the raw suites on the rows no run has passed yet (the module docstring says which),
    as run ``run_id``; record them in ``raw._validation`` and Data Docs, and mark the files of
    each source whose suite passed.

    Returns ``{"success", "critical_failures", "warnings", "suites", "failures": [...],
    "rows": {suite: rows validated}}``; ``success`` is False when any critical expectation failed.
    """
    import duckdb

    validation_dir = Path(settings.validation)
    rows: list[dict] = []
    seen: dict[str, int] = {}
    with duckdb.connect(str(Path(warehouse).resolve())) as con:
        con.execute("set TimeZone = 'Asia/Seoul'")
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY}'")
        ensure_raw_schema(con)
        delivered = {
            source: (last_day, loaded)
            for source, last_day, loaded in con.execute(
                f"select source, max(dt), sum(rows_loaded) from raw._files where {_PENDING} group by source",
                [run_id],
            ).fetchall()
        }
        for name, source in SOURCES.items():
            if name not in delivered or (sources and name not in sources):
                continue
            last_day, loaded = delivered[name]
            files = _pending(con, source, run_id)
            specs = suite_for(source, last_day)
            parts = max(1, math.ceil((loaded or 0) / BATCH_ROWS))
            if parts == 1:
                df = _frame(con, source, files)
                seen[f"raw.{name}"] = len(df)
                suite_rows = run_suite(df, f"raw.{name}", specs, run_id, con, "raw", validation_dir)
                del df
            else:
                # The column list is checked once, on the batch's columns without rows; the
                # parts carry only the columns the other expectations read.
                whole = [s for s in specs if s.expectation in SAME_ON_EVERY_PART]
                per_part = [s for s in specs if s.expectation not in SAME_ON_EVERY_PART]
                header = fetch_frame(con, f"select * from ({_batch(source, files)}) limit 0")
                suite_rows = run_suite(header, f"raw.{name}", whole, run_id, con, "raw", validation_dir)
                frames = _frames(con, source, files, parts, columns_read(per_part))
                part_rows, seen[f"raw.{name}"] = run_suite_in_parts(
                    frames, f"raw.{name}", per_part, run_id, con, "raw", validation_dir
                )
                suite_rows += part_rows
            rows += suite_rows
            if gate_summary(suite_rows)["success"]:
                con.execute(
                    f"update raw._files set validated_by = ? where source = ? and {_PENDING}",
                    [run_id, name, run_id],
                )
    if rows:
        build_data_docs(validation_dir)
    return {
        **gate_summary(rows),
        "rows": seen,
        "data_docs": str(validation_dir / "data_docs" / "index.html"),
    }
