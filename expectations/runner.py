"""The one way crmwh runs a Great Expectations suite: a pandas DataFrame in, result rows out.

Why pandas: GX's SQL datasource loses rows through duckdb-engine, so every suite validates a
DataFrame fetched from DuckDB (``fetch_frame``). Every suite's results land in the
``_validation`` table of the schema it checks (``raw``, ``marts``, ``mining``), one row per
expectation, and in the Data Docs under ``settings.validation / "data_docs"``.

Usage (the raw, marts and scores suites all do this)::

    from expectations.runner import ExpectationSpec, run_suite, build_data_docs

    specs = [
        ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "customer_id"}, critical=True),
        ExpectationSpec("ExpectColumnValuesToBeBetween", {"column": "score", "min_value": 0, "max_value": 1}),
    ]
    rows = run_suite(df, "marts.dim_customer", specs, run_id, con, schema="marts",
                     validation_dir=settings.validation)
    failed = [r for r in rows if r["critical"] and not r["success"]]

A failed ``critical`` expectation fails the run (the publish gate reads ``_validation``); the
others are warnings. ``validation_dir`` stores the results for Data Docs; call
``build_data_docs(validation_dir)`` once after the last suite of a run (or pass
``build_docs=True``).
"""

from __future__ import annotations

import gc
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import duckdb
    import pandas as pd

# Rows of one pandas batch: a bigger batch (a raw first load, a marts table at L) is validated
# in parts of about this many, one at a time, so memory stays bounded (run_suite_in_parts).
BATCH_ROWS = 500_000
# DuckDB keeps the blocks it scanned, and the temporary table of the parts, in memory up to its
# limit (80 % of RAM by default): the suites that read whole tables set their own.
DUCKDB_MEMORY = "1GB"

VALIDATION_DDL = """
create table if not exists {schema}._validation (
    run_id varchar,
    suite varchar,
    expectation varchar,
    "column" varchar,
    success boolean,
    critical boolean,
    observed varchar,
    validated_at timestamp
)"""


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation: a GX class name from ``great_expectations.expectations`` and its kwargs.

    ``critical`` expectations fail the run; the others are recorded as warnings.
    """

    expectation: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    critical: bool = False

    @property
    def column(self) -> str | None:
        if "column" in self.kwargs:
            return str(self.kwargs["column"])
        if "column_list" in self.kwargs:
            return ",".join(self.kwargs["column_list"])
        return None


def _quiet_gx() -> None:
    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logging.getLogger(name).setLevel(logging.ERROR)


@lru_cache(maxsize=8)
def _context(validation_dir: str | None):
    """A GX context: a file context under ``validation_dir`` (results and Data Docs kept),
    or an ephemeral one. Cached per process, GX contexts are slow to make."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    _quiet_gx()
    # GX fingerprints every batch under HASH_THRESHOLD bytes (an MD5 over a hash of every
    # value) for its batch markers, which nothing here reads: a sixth of the raw suite at M.
    pandas_execution_engine.HASH_THRESHOLD = 0
    if validation_dir is None:
        context = gx.get_context(mode="ephemeral")
    else:
        root = Path(validation_dir)
        root.mkdir(parents=True, exist_ok=True)
        context = gx.get_context(mode="file", project_root_dir=str(root))
        if "crmwh" not in (context.variables.data_docs_sites or {}):
            context.add_data_docs_site(
                site_name="crmwh",
                site_config={
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(root / "data_docs"),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _observed(result: dict[str, Any]) -> str:
    """A short, PII-free summary of what GX saw (counts and observed values, not row samples)."""
    keep = {
        k: result[k]
        for k in (
            "observed_value",
            "element_count",
            "unexpected_count",
            "unexpected_percent",
            "missing_count",
        )
        if k in result
    }
    return json.dumps(keep, default=str, sort_keys=True)


def run_suite(
    df: pd.DataFrame,
    suite_name: str,
    expectations: list[ExpectationSpec],
    run_id: str,
    con: duckdb.DuckDBPyConnection,
    schema: str = "raw",
    validation_dir: Path | None = None,
    build_docs: bool = False,
) -> list[dict[str, Any]]:
    """Validate ``df`` against ``expectations`` as suite ``suite_name``.

    Writes one row per expectation into ``<schema>._validation`` (created if missing) and
    returns those rows as dicts: run_id, suite, expectation, column, success, critical,
    observed, validated_at.
    """
    results = _validate(df, suite_name, expectations, run_id, validation_dir, build_docs)
    outcomes = [_outcome(results.get(i)) for i in range(len(expectations))]
    return _record(outcomes, suite_name, expectations, run_id, con, schema)


def fetch_frame(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """The rows of ``query`` as DuckDB's ``.df()`` gives them, with the text columns converted
    through Arrow: ``.df()`` makes a Python string of every value first (8 parts of
    fct_contacts at L: 2.6-3.2 s through ``.df()``, 0.5-0.6 s through Arrow). The other columns
    go through ``.df()``, which keeps DuckDB's types (dates as datetime64, nullable integers
    and booleans), where Arrow's pandas conversion would not."""
    import pandas as pd
    import pyarrow as pa

    table = con.execute(query, params or {}).to_arrow_table()
    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    others = table.drop_columns(text)
    frame = con.from_arrow(others).df() if others.num_columns else pd.DataFrame(index=range(table.num_rows))
    for name in text:
        frame[name] = table[name].to_pandas()
    return frame[table.column_names]


def columns_read(expectations: list[ExpectationSpec]) -> list[str]:
    """The columns ``expectations`` name, in order of first mention."""
    named: list[str] = []
    for spec in expectations:
        for name in spec.kwargs.get("column_list", [spec.kwargs.get("column")]):
            if name and name not in named:
                named.append(name)
    return named


def parts_by_key(
    con: duckdb.DuckDBPyConnection,
    query: str,
    key: list[str],
    parts: int,
    params: dict[str, Any] | None = None,
    per_part: str = "",
    columns: list[str] | None = None,
) -> Iterator[pd.DataFrame]:
    """The rows of ``query`` as ``parts`` DataFrames, one at a time: the rows whose ``key``
    hashes to the same part, so rows sharing a key meet in one (for run_suite_in_parts).

    The rows are computed once into a temporary table sorted by part (a sort DuckDB spills to
    disk beyond its memory limit); reading a part reads its own row groups, then ``per_part``
    (e.g. a QUALIFY and an ORDER BY) applies to the part alone. A part holds ``columns`` only
    (default: all of them); ``per_part`` may still use the others."""
    hashed = ", ".join(f'"{k}"' for k in key)
    kept = ", ".join(f'"{c}"' for c in columns) if columns else "* exclude (_part)"
    con.execute(
        f"create or replace temp table _batch_parts as"
        f" select *, hash({hashed}) % {parts} as _part from ({query}) order by _part",
        params or {},
    )
    try:
        for part in range(parts):
            yield fetch_frame(con, f"select {kept} from _batch_parts where _part = {part} {per_part}")
    finally:
        con.execute("drop table if exists _batch_parts")


# How a batch validated in parts gets the results of one batch (run_suite_in_parts):
# - map expectations give a verdict per row: their counts add up over the parts;
# - these give the same result on every part (all parts have the same columns);
SAME_ON_EVERY_PART = {"ExpectTableColumnsToMatchOrderedList", "ExpectTableColumnsToMatchSet"}
# - these are decided by one value of the whole column: each part is reduced to its value, and
#   the values of all parts are validated together (the largest maximum is the maximum).
REDUCED = {"ExpectColumnMaxToBeBetween": "max", "ExpectColumnMinToBeBetween": "min"}
# - the row count is that of all parts: validated on a frame of as many one-byte rows.
COUNTED = {"ExpectTableRowCountToBeBetween"}


def run_suite_in_parts(
    parts: Iterable[pd.DataFrame],
    suite_name: str,
    expectations: list[ExpectationSpec],
    run_id: str,
    con: duckdb.DuckDBPyConnection,
    schema: str = "raw",
    validation_dir: Path | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Validate a batch too big for one DataFrame as a sequence of parts, with the results
    one batch would give: one row per expectation, same success and same observed counts.

    Only one part is in memory at a time. The caller splits the batch so that rows an
    expectation compares with each other meet in one part (for uniqueness: rows sharing a
    key). Returns the result rows (also written to ``<schema>._validation``) and the rows seen.
    """
    import great_expectations as gx
    import numpy as np
    import pandas as pd
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    maps = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    for spec in expectations:
        is_map = issubclass(getattr(gx.expectations, spec.expectation), maps)
        if "mostly" in spec.kwargs or not (
            is_map or spec.expectation in (*SAME_ON_EVERY_PART, *REDUCED, *COUNTED)
        ):
            raise ValueError(
                f"{suite_name}: {spec.expectation} {spec.kwargs} cannot be validated in parts;"
                " validate the batch whole (run_suite)"
            )
    per_row = [i for i, spec in enumerate(expectations) if spec.expectation not in (*REDUCED, *COUNTED)]
    reduced = [i for i, spec in enumerate(expectations) if spec.expectation in REDUCED]
    counted = [i for i, spec in enumerate(expectations) if spec.expectation in COUNTED]
    results: dict[int, list] = {i: [] for i in per_row}
    values: dict[int, list] = {i: [] for i in reduced}
    seen = 0
    # GX leaves reference cycles that hold a part's columns: each part's are collected before
    # the next part. The objects alive before the first part are frozen out of those
    # collections, so each one walks only what the part made (GX's modules hold millions).
    gc.freeze()
    try:
        for df in parts:
            seen += len(df)
            found = _validate(df, suite_name, [expectations[i] for i in per_row], run_id, validation_dir)
            for j, i in enumerate(per_row):
                results[i].append(found.get(j))
            for i in reduced:
                spec = expectations[i]
                values[i].append(getattr(df[spec.kwargs["column"]], REDUCED[spec.expectation])())
            del df, found
            gc.collect()
    finally:
        gc.unfreeze()
    outcomes: dict[int, tuple[bool, str]] = {i: _combined(results[i]) for i in per_row}
    for i in reduced:
        spec = expectations[i]
        frame = pd.DataFrame({spec.kwargs["column"]: pd.Series(values[i])})
        outcomes[i] = _outcome(_validate(frame, suite_name, [spec], run_id, validation_dir).get(0))
    if counted:
        frame = pd.DataFrame({"row": np.zeros(seen, dtype=np.int8)})
        found = _validate(frame, suite_name, [expectations[i] for i in counted], run_id, validation_dir)
        outcomes.update({i: _outcome(found.get(j)) for j, i in enumerate(counted)})
    rows = _record(
        [outcomes[i] for i in range(len(expectations))], suite_name, expectations, run_id, con, schema
    )
    return rows, seen


def _combined(parts: list) -> tuple[bool, str]:
    """One outcome from the results of every part: the parts' row counts added up, with GX's
    own percentage (of the non-missing values, when GX counts missing ones)."""
    for r in parts:
        if r is None or (r.exception_info and r.exception_info.get("raised_exception")):
            return _outcome(r)
    success = all(bool(r.success) for r in parts)
    first = parts[0].result or {}
    if "element_count" not in first:  # the same on every part
        return success, _observed(first)
    elements = sum(r.result["element_count"] for r in parts)
    unexpected = sum(r.result["unexpected_count"] for r in parts)
    total = {"element_count": elements, "unexpected_count": unexpected}
    nonmissing = elements
    if "missing_count" in first:
        total["missing_count"] = sum(r.result["missing_count"] for r in parts)
        nonmissing = elements - total["missing_count"]
    total["unexpected_percent"] = unexpected / nonmissing * 100 if elements > 0 and nonmissing > 0 else None
    return success, _observed(total)


def _validate(
    df: pd.DataFrame,
    suite_name: str,
    expectations: list[ExpectationSpec],
    run_id: str,
    validation_dir: Path | None,
    build_docs: bool = False,
) -> dict[int, Any]:
    """GX's result for each expectation of ``df``, by position in ``expectations``."""
    import great_expectations as gx

    df = _vectorizable(df, expectations)
    directory = str(validation_dir) if validation_dir else None
    runner = _registered(directory, suite_name, expectations, build_docs)
    if isinstance(runner, gx.Checkpoint):
        run = runner.run(
            batch_parameters={"dataframe": df},
            run_id=gx.core.run_identifier.RunIdentifier(run_name=run_id),
        )
        results = [r for vr in run.run_results.values() for r in vr.results]
    else:
        results = list(runner.run(batch_parameters={"dataframe": df}).results)
    # The pandas source's engine keeps each asset's last batch, and the source lives as long as
    # the process (_registered): let the DataFrame go.
    source = _context(directory).data_sources.get("crmwh")
    batches = source.get_execution_engine().batch_manager
    batches.batch_data_cache.clear()
    batches.reset_batch_cache()
    return {int(r.expectation_config.meta["index"]): r for r in results}


# The GX objects last registered under each suite name, per validation folder (_registered).
_REGISTERED: dict[tuple[str | None, str], tuple[str, Any]] = {}


def _registered(
    validation_dir: str | None, suite_name: str, expectations: list[ExpectationSpec], build_docs: bool
):
    """The GX objects that validate a DataFrame against ``expectations`` as ``suite_name``: a
    checkpoint, which stores its results for Data Docs, or in an ephemeral context a
    validation definition.

    Each registration rewrites GX's stores, so the objects are kept and reused while the suite
    name's last registration in this process had the same expectations: a batch validated in
    parts is the same suite on every part. GX refuses to run a checkpoint whose stored copy
    differs, so any other suite under that name is registered again."""
    import great_expectations as gx

    content = json.dumps(
        [[s.expectation, s.kwargs, s.critical] for s in expectations], default=repr, sort_keys=True
    ) + str(build_docs)
    safe = suite_name.replace("/", "_")
    last = _REGISTERED.get((validation_dir, safe))
    if last is not None and last[0] == content:
        return last[1]
    context = _context(validation_dir)
    try:  # one pandas source for every suite: making it anew would drop the other suites' assets
        source = context.data_sources.get("crmwh")
    except KeyError:
        source = context.data_sources.add_pandas(name="crmwh")
    try:
        asset = source.get_asset(safe)
    except LookupError:
        asset = source.add_dataframe_asset(name=safe)
    try:
        batch = asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        batch = asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=safe)
    for i, spec in enumerate(expectations):
        cls = getattr(gx.expectations, spec.expectation)
        suite.add_expectation(cls(**spec.kwargs, meta={"critical": spec.critical, "index": i}))
    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=safe, data=batch, suite=suite)
    )
    runner = definition
    if validation_dir is not None:
        actions = [gx.checkpoint.UpdateDataDocsAction(name="docs")] if build_docs else []
        runner = context.checkpoints.add_or_update(
            gx.Checkpoint(name=safe, validation_definitions=[definition], actions=actions)
        )
    _REGISTERED[(validation_dir, safe)] = (content, runner)
    return runner


def _vectorizable(df: pd.DataFrame, expectations: list[ExpectationSpec]) -> pd.DataFrame:
    """``df`` with the integer columns that ExpectColumnValuesToBeBetween reads as float64.

    GX's pandas range check compares int64 and float64 columns in one vectorized step, and
    calls a Python function per value for any other dtype: DuckDB's INTEGER (int32) and
    nullable columns (Int32, Int64). float64 holds every integer below 2**53 exactly, and a
    null becomes NaN, which GX counts as missing as it did the null."""
    import numpy as np
    import pandas as pd

    converted = {
        column: df[column].to_numpy(dtype="float64", na_value=np.nan)
        for column in {
            s.kwargs["column"] for s in expectations if s.expectation == "ExpectColumnValuesToBeBetween"
        }
        if column in df.columns
        and pd.api.types.is_integer_dtype(df[column].dtype)
        and df[column].dtype != np.int64
    }
    return df.assign(**converted) if converted else df


def _outcome(r: Any) -> tuple[bool, str]:
    """Success and the observed summary of one GX result (None: not evaluated)."""
    if r is None:
        return False, "not evaluated"
    if r.exception_info and r.exception_info.get("raised_exception"):
        return False, "error: " + str(r.exception_info.get("exception_message"))[:500]
    return bool(r.success), _observed(r.result or {})


def _record(
    outcomes: list[tuple[bool, str]],
    suite_name: str,
    expectations: list[ExpectationSpec],
    run_id: str,
    con: duckdb.DuckDBPyConnection,
    schema: str,
) -> list[dict[str, Any]]:
    """The result rows of a suite, one per expectation, written to ``<schema>._validation``."""
    now = datetime.now()
    rows = [
        {
            "run_id": run_id,
            "suite": suite_name,
            "expectation": spec.expectation,
            "column": spec.column,
            "success": success,
            "critical": spec.critical,
            "observed": observed,
            "validated_at": now,
        }
        for spec, (success, observed) in zip(expectations, outcomes, strict=True)
    ]
    con.execute(VALIDATION_DDL.format(schema=schema))
    con.executemany(
        f"insert into {schema}._validation values (?, ?, ?, ?, ?, ?, ?, ?)",
        [list(r.values()) for r in rows],
    )
    return rows


def gate_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a gate decides from a suite's result rows: a failed critical expectation blocks,
    any other failure is a warning. ``failures`` names each failed expectation."""
    failures = [r for r in rows if not r["success"]]
    critical = [r for r in failures if r["critical"]]
    return {
        "success": not critical,
        "critical_failures": len(critical),
        "warnings": len(failures) - len(critical),
        "suites": len({r["suite"] for r in rows}),
        "failures": [
            {k: r[k] for k in ("suite", "expectation", "column", "critical", "observed")} for r in failures
        ],
    }


def build_data_docs(validation_dir: Path) -> Path:
    """Rebuild the Data Docs site from every stored result; returns its index.html."""
    context = _context(str(validation_dir))
    context.build_data_docs(site_names=["crmwh"])
    return Path(validation_dir) / "data_docs" / "index.html"
