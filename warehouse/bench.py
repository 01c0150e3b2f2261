"""``make bench [SCALE=S|M|L]``: where the time and memory of a pipeline run go, and at what cost.

Data engineers size machines and schedules from these figures. Every stage runs the project's
own function (generate, ingest, the raw suite, dbt, mining, publish, the analyst's cube query)
in a fresh child process, so its wall time and peak memory are its own, in the order of a
first daily run (``warehouse.pipeline``: the cubes are built once, after scoring). Beside
each stage the same run measures a *floor*, the least work that gives the same answer, and
reports the ratio stage / floor:

- ingest against a bare DuckDB read of the same files (``warehouse.bench_ingest.measure``);
- dbt (models only, full refresh) against the compiled SQL of the same models run directly
  through DuckDB in dependency order, each on its own copy of the warehouse; the build before
  scoring (models and tests) against the direct SQL of the models it built;
- scoring against the bare ``predict_proba`` call of the champion model on the same features;
- each cube question against the same question asked as one ``GROUP BY GROUPING SETS`` query
  over the facts.

Generated data is cached outside the repository (``$XDG_CACHE_HOME/crmwh-bench`` or
``~/.cache/crmwh-bench``), keyed by scale, seed and a hash of the generator's source.
A stage whose code is missing is reported as "not available", never estimated.

    python -m warehouse.bench --scale S            # results in bench/results/S.md and S.json
    python -m warehouse.bench --customers 300 --days 60 --results /tmp/out   # a quick try
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import multiprocessing
import os
import platform
import re
import resource
import shutil
import tempfile
import time
import traceback
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from warehouse.build import AFTER_SCORING, BEFORE_SCORING, storage_settings
from warehouse.config import PROJECT_ROOT

SCALES: dict[str, int] = {"S": 10_000, "M": 100_000, "L": 1_000_000}
DAYS = 730
START = date(2024, 1, 1)
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
CUBE_REPEATS = 20
FLOOR_REPEATS = 3
QUESTIONS_PER_CUBE = 8

# The days after the full build, each run as a daily run (stage keys end in DAY_SUFFIXES): the
# first is scored as of the first of a month, when the pyramid tiers' window of whole months
# moves; the second, a day later, is scored within that month.
DAY_SUFFIXES = ("", "2")

# Every row of the report, in the order of a first daily run (warehouse.pipeline.STEPS), with
# training and the floors where they fit: (key, label, in the end-to-end total). The full build
# is the pipeline's two builds: before scoring, then the cubes once the scores are in.
STAGES: tuple[tuple[str, str, bool], ...] = (
    ("generate", f"generate ({DAYS + len(DAY_SUFFIXES)} days)", False),
    ("ingest", f"ingest ({DAYS} days)", True),
    (
        "ingest_vs_floor",
        f"ingest vs bare read (all {DAYS + len(DAY_SUFFIXES)} days, fresh warehouses)",
        False,
    ),
    ("validate_raw", "validations: raw", True),
    ("dbt_build", "dbt full build before scoring (models + tests)", True),
    ("dbt_models", "dbt models only, all of them (full refresh, copy)", False),
    ("features", "features (as of the last day)", False),
    ("train", "training", True),
    ("score", "scoring", True),
    ("dbt_scored", "dbt build of dim_customer+ after scoring (the cubes)", True),
    ("validate_marts", "validations: marts", True),
    ("validate_scores", "validations: scores", True),
    ("publish", "publish", True),
    ("cube_queries", "cube query set", False),
    ("ingest_day", "ingest one more day", False),
    ("dbt_incremental", "dbt incremental build before scoring (one more day)", False),
    ("score_day", "scoring (one more day)", False),
    ("dbt_incremental_scored", "dbt rebuild of dim_customer+ after scoring (one more day)", False),
    ("ingest_day2", "ingest a second day", False),
    ("dbt_incremental2", "dbt incremental build before scoring (a second day)", False),
    ("score_day2", "scoring (a second day)", False),
    ("dbt_incremental_scored2", "dbt rebuild of dim_customer+ after scoring (a second day)", False),
)
STAGE_KEYS = tuple(key for key, _, _ in STAGES)
STAGE_LABELS = {key: label for key, label, _ in STAGES}
# The dbt runs of the days after the full build, in order.
DAY_DBT_STAGES = tuple(
    f"{key}{suffix}" for suffix in DAY_SUFFIXES for key in ("dbt_incremental", "dbt_incremental_scored")
)
END_TO_END = tuple(key for key, _, e2e in STAGES if e2e)

# What "rows" means per stage, for rows/s (written under the table).
ROWS_MEANING = {
    "generate": "source rows written",
    "ingest": "rows read from the landing files",
    "ingest_vs_floor": "rows read from the landing files",
    "validate_raw": "raw rows validated",
    "dbt_build": "raw rows in the warehouse (input)",
    "dbt_models": "raw rows in the warehouse (input)",
    "validate_marts": "rows in marts and cubes",
    "features": "customers",
    "train": "labelled training rows",
    "score": "customers scored",
    "dbt_scored": "raw rows in the warehouse (input)",
    "validate_scores": "customer_scores rows",
    "publish": "rows published",
    "cube_queries": "questions asked (each repeated)",
    **{
        f"{key}{suffix}": meaning
        for suffix in DAY_SUFFIXES
        for key, meaning in (
            ("ingest_day", "rows read from the day's files"),
            ("dbt_incremental", "raw rows in the warehouse (input)"),
            ("score_day", "customers scored"),
            ("dbt_incremental_scored", "raw rows in the warehouse (input)"),
        )
    },
}


# ----------------------------------------------------------------------------- the data cache


def cache_root() -> Path:
    """Where generated landing zones are kept between runs (never inside the repository)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().resolve() / "crmwh-bench"


def generator_version() -> str:
    """A hash of the generator's source: a changed generator never reuses stale data."""
    digest = hashlib.sha256()
    folder = PROJECT_ROOT / "warehouse" / "generate"
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_dir(customers: int, days: int, seed: int) -> Path:
    return cache_root() / f"c{customers}-d{days}-s{seed}-g{generator_version()}"


# ----------------------------------------------------------------------------- child processes


def run_stage(
    func: str, kwargs: dict[str, Any], env: dict[str, str] | None = None, log: Path | None = None
) -> dict[str, Any]:
    """Run ``module:function(**kwargs)`` in a fresh spawned process; add its peak memory.

    The function returns a dict holding at least ``seconds`` (its own timed section, imports
    excluded) and ``rows``. A module or function that does not exist yet gives
    ``status: "not available"``; an exception gives ``status: "failed"`` with the message.
    """
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="crmwh-bench-stage-") as tmp:
        out = Path(tmp) / "result.json"
        saved = dict(os.environ)
        os.environ.update(env or {})
        load_before = os.getloadavg()[0]
        try:
            started = time.perf_counter()
            proc = ctx.Process(target=_child, args=(func, kwargs, str(out), str(log) if log else None))
            proc.start()
            proc.join()
            wall = time.perf_counter() - started
        finally:
            os.environ.clear()
            os.environ.update(saved)
        if out.exists():
            result = json.loads(out.read_text())
        else:
            result = {
                "status": "failed",
                "error": f"{func}: the child process ended with exit code {proc.exitcode} and no result"
                " (killed, e.g. out of memory?)",
            }
    result["process_seconds"] = round(wall, 3)
    # Other work on the machine slows every figure: keep the 1-minute load around the stage.
    result["load_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def _child(func: str, kwargs: dict[str, Any], out: str, log: str | None = None) -> None:
    module_name, _, name = func.partition(":")
    if log:  # dbt and the suites print a lot: keep it out of the report, in a file per stage
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    try:
        function = getattr(importlib.import_module(module_name), name)
        result = function(**kwargs)
        result["status"] = result.get("status", "ok")
    except NotAvailable as exc:
        result = {"status": "not available", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the report names every failure
        result = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["peak_mb"] = round(max(own, children) / 1024, 1)  # Linux reports KiB
    Path(out).write_text(json.dumps(result, default=str))


class NotAvailable(RuntimeError):
    """The stage's code is not in the project (yet): reported as such, never faked."""


def _require(module: str, name: str) -> Any:
    """Import ``module.name`` or raise NotAvailable naming what is missing."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise NotAvailable(f"{module}.{name} is not available: {exc}") from exc


def _settings():
    from warehouse.config import load_settings

    return load_settings()


def _raw_rows(warehouse: Path) -> int:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'raw' and not table_name like '\\_%' escape '\\'"
        ).fetchall()
        return sum(con.execute(f'select count(*) from raw."{t}"').fetchone()[0] for (t,) in tables)


# ----------------------------------------------------------------------------- the stages
# Each runs in a child; its timer covers the project's function only (imports done first).


def stage_generate(out: str, customers: int, days: int, seed: int) -> dict[str, Any]:
    generate = _require("warehouse.generate", "generate")
    importlib.import_module("warehouse.generate.run")
    target = Path(out)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.perf_counter()
    summary = generate(tmp, customers=customers, start=START, days=days, seed=seed)
    seconds = time.perf_counter() - started
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return {"seconds": seconds, "rows": summary["total_rows"], "bytes": summary["total_bytes"]}


def _delivery_days(landing: Path, until: date) -> list[date]:
    delivery_days = _require("warehouse.pipeline", "delivery_days")
    return delivery_days(landing, until)


def _ingest_result(summary: dict, seconds: float) -> dict[str, Any]:
    sources = summary["sources"].values()
    return {
        "seconds": seconds,
        "rows": sum(s.get("rows_read", 0) for s in sources),
        "rows_loaded": sum(s.get("rows_loaded", 0) for s in sources),
        "rows_quarantined": sum(s.get("rows_quarantined", 0) for s in sources),
        "files": len(summary["files"]),
        "run_id": summary["run_id"],
    }


def stage_ingest(landing: str, until: str, only_day: bool = False) -> dict[str, Any]:
    ingest = _require("warehouse.ingest", "ingest")
    settings = _settings()
    day = date.fromisoformat(until)
    days = [day] if only_day else _delivery_days(Path(landing), day)
    started = time.perf_counter()
    summary = ingest(settings.warehouse, Path(landing), days=days)
    return _ingest_result(summary, time.perf_counter() - started)


def stage_ingest_floor(landing: str) -> dict[str, Any]:
    measure = _require("warehouse.bench_ingest", "measure")
    result = measure(Path(landing))
    return {
        "seconds": result["ingest_seconds"],
        "floor_seconds": result["bare_seconds"],
        "rows": result["rows_read"],
        "bare_rows": result["bare_rows"],
        "files": result["files"],
        "bytes": result["bytes"],
    }


def stage_validate_raw(run_id: str) -> dict[str, Any]:
    validate_raw = _require("expectations.raw", "validate_raw")
    settings = _settings()
    rows = _raw_rows(settings.warehouse)
    started = time.perf_counter()
    result = validate_raw(settings.warehouse, run_id, settings)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": rows,
        "success": result.get("success"),
        "critical_failures": result.get("critical_failures"),
        "warnings": result.get("warnings"),
    }


def _run_results(settings) -> list[dict[str, Any]]:
    path = settings.home / "dbt" / "target" / "run_results.json"
    if not path.exists():
        return []
    results = json.loads(path.read_text()).get("results", [])
    return [
        {
            "node": r["unique_id"],
            "seconds": round(r.get("execution_time") or 0.0, 3),
            "status": r.get("status"),
        }
        for r in results
    ]


def _slowest(nodes: list[dict[str, Any]], n: int = 8) -> list[dict[str, Any]]:
    return sorted(nodes, key=lambda r: -r["seconds"])[:n]


def stage_dbt(
    select: str | None = None,
    full_refresh: bool = False,
    warehouse_copy: str | None = None,
    exclude: str | None = None,
    selector: str | None = None,
) -> dict[str, Any]:
    """dbt through warehouse.build.build; on a copy of the warehouse when ``warehouse_copy``."""
    import dataclasses

    build = _require("warehouse.build", "build")
    settings = _settings()
    if warehouse_copy:
        copy = Path(warehouse_copy)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(settings.warehouse, copy)
        settings = dataclasses.replace(settings, warehouse=copy, home=copy.parent)
    rows = _raw_rows(settings.warehouse)
    importlib.import_module("dbt.cli.main")
    started = time.perf_counter()
    result = build(
        settings,
        full_refresh=full_refresh,
        select=select,
        exclude=exclude,
        selector=selector,
    )
    seconds = time.perf_counter() - started
    nodes = _run_results(settings)
    by_type: dict[str, float] = {}
    models = [n["node"] for n in nodes if n["node"].startswith("model.")]
    for node in nodes:
        kind = node["node"].split(".")[0]
        by_type[kind] = round(by_type.get(kind, 0.0) + node["seconds"], 3)
    return {
        "seconds": seconds,
        "rows": rows,
        "nodes": result.get("nodes"),
        "node_seconds_by_type": by_type,
        "slowest_nodes": _slowest(nodes),
        "models": models,
        "manifest": str(settings.home / "dbt" / "target" / "manifest.json"),
    }


def model_order(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's model nodes in dependency order (parents first)."""
    models = {k: v for k, v in manifest["nodes"].items() if v.get("resource_type") == "model"}
    order: list[str] = []
    seen: set[str] = set()

    def visit(key: str, path: tuple[str, ...]) -> None:
        if key in seen:
            return
        if key in path:
            raise ValueError(f"dependency cycle through {key}")
        for parent in models[key]["depends_on"]["nodes"]:
            if parent in models:
                visit(parent, (*path, key))
        seen.add(key)
        order.append(key)

    for key in sorted(models):
        visit(key, ())
    return [models[k] for k in order]


def direct_sql(node: dict[str, Any]) -> str:
    """The DDL that materialises one compiled model without dbt (views stay views)."""
    kind = "view" if node["config"].get("materialized") == "view" else "table"
    return f"create or replace {kind} {node['relation_name']} as (\n{node['compiled_code']}\n)"


def cubes_over_facts(manifest: dict[str, Any], settings: Any) -> dict[str, str]:
    """The compiled SQL of each cube in ``manifest``, as one query over the facts.

    A full build of a cube kept by difference (dbt_project/macros/cubes/cube_difference.sql)
    writes its rows in its pre-hooks (``cube_prepare(<spec>())``, then ``cube_write_state``,
    which makes them its state) and aggregates the state, so its compiled SQL reads the state.
    Here the rows' SQL, compiled by dbt from the same spec, takes the state's place: the floors
    do the whole work in one query.
    """
    models = {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n.get("resource_type") == "model" and n.get("compiled_code")
    }
    specs = {}
    for name, node in models.items():
        for hook in node["config"].get("pre-hook") or []:
            found = re.search(r"cube_prepare\((\w+)\(\)\)", hook["sql"])
            if found:
                specs[name] = found.group(1)
    rows: dict[str, str] = {}
    if specs:
        from warehouse.build import run_dbt

        inline = ", ".join(f"'{name}': {spec}().rows(none) | string" for name, spec in specs.items())
        result = run_dbt(
            settings, ["compile", "--log-level", "none", "--inline", "{{ tojson({" + inline + "}) }}"]
        )
        if not result.success:
            raise RuntimeError(f"dbt could not compile the cubes' rows: {result.exception}")
        rows = json.loads(result.result.results[0].node.compiled_code)
    compiled = {}
    for name, node in models.items():
        sql = node["compiled_code"]
        if name in rows:
            state = f'"{node["database"]}"."cube_state"."{name}_rows"'
            if sql.count(state) != 1:
                raise ValueError(f"expected {name}'s compiled SQL to read {state} once")
            sql = sql.replace(state, f"(\n{rows[name]}\n) as cube_rows")
            # the CTE that reads them, inline over the state (cube_signed_rows_cte), is computed
            # once over the facts
            sql = sql.replace(" as not materialized (", " as (")
        compiled[name] = sql
    return compiled


def stage_dbt_floor(manifest: str, warehouse_copy: str) -> dict[str, Any]:
    """The compiled SQL of every model, run directly through DuckDB on a copy of the warehouse."""
    import duckdb

    settings = _settings()
    copy = Path(warehouse_copy)
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.warehouse, copy)
    loaded = json.loads(Path(manifest).read_text())
    over_facts = cubes_over_facts(loaded, settings)
    nodes = [
        {**n, "compiled_code": over_facts[n["name"]]} for n in model_order(loaded) if n.get("compiled_code")
    ]
    if not nodes:
        raise NotAvailable(f"{manifest} holds no compiled model SQL")
    rows = _raw_rows(copy)
    timings = []
    started = time.perf_counter()
    with duckdb.connect(str(copy)) as con:
        # written as dbt writes them (dbt-duckdb SETs the profile's settings on its cursors)
        for name, value in storage_settings(settings).items():
            con.execute(f"set {name} = '{value}'")
        for schema in sorted({n["schema"] for n in nodes}):
            con.execute(f'create schema if not exists "{schema}"')
        for node in nodes:
            t = time.perf_counter()
            con.execute(direct_sql(node))
            timings.append({"node": node["unique_id"], "seconds": round(time.perf_counter() - t, 3)})
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": rows,
        "models": len(nodes),
        "slowest_nodes": _slowest(timings),
        "node_seconds": {t["node"]: t["seconds"] for t in timings},
    }


def stage_validate_marts(run_id: str) -> dict[str, Any]:
    import duckdb

    validate_marts = _require("expectations.marts", "validate_marts")
    settings = _settings()
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where schema_name in ('marts', 'cubes')"
        ).fetchall()
        rows = sum(con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables)
    started = time.perf_counter()
    result = validate_marts(settings.warehouse, run_id, settings)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": rows,
        "success": result.get("success"),
        "critical_failures": result.get("critical_failures"),
        "warnings": result.get("warnings"),
    }


def stage_features() -> dict[str, Any]:
    import duckdb

    build_features = _require("mining.features", "build_features")
    data_through = _require("mining.features", "data_through")
    settings = _settings()
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        as_of = data_through(con) + timedelta(days=1)
        started = time.perf_counter()
        frame = build_features(con, as_of, settings.active_window_days)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": len(frame), "as_of": as_of.isoformat(), "columns": len(frame.columns)}


def stage_train() -> dict[str, Any]:
    train = _require("mining.train", "train")
    started = time.perf_counter()
    report = train(_settings())
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": report["training_window"]["rows"],
        "version": report.get("version"),
        "auc": report["metrics"]["model"].get("auc"),
        "inner_seconds": report.get("seconds"),
    }


def stage_score(run_date: str) -> dict[str, Any]:
    score = _require("mining.score", "score")
    as_of = date.fromisoformat(run_date) + timedelta(days=1)
    started = time.perf_counter()
    report = score(_settings(), as_of=as_of, rebuild=False, validate=False)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": report["customers"],
        "as_of": as_of.isoformat(),
        "active_scored": report.get("active_scored"),
        "inner_seconds": report.get("seconds"),
        "moved": _moved_since_last_scoring(),
    }


def _moved_since_last_scoring() -> dict[str, int]:
    """Customers whose tier or stage differs from the previous scoring run (mining.tier_migration
    of the latest period; none at the first run), by dimension: the cubes move their rows."""
    import duckdb

    with duckdb.connect(str(_settings().warehouse), read_only=True) as con:
        rows = con.execute(
            """select dimension, sum(customers) from mining.tier_migration
               where period_end = (select max(period_end) from mining.tier_migration)
                   and from_value <> to_value and from_value <> 'new' and to_value <> 'gone'
               group by dimension"""
        ).fetchall()
    return {dimension: int(customers) for dimension, customers in rows}


def stage_score_floor(run_date: str) -> dict[str, Any]:
    """The bare predict_proba of the champion on the active customers' feature matrix."""
    import duckdb

    registry = importlib.import_module("mining.registry")
    build_features = _require("mining.features", "build_features")
    matrix = _require("mining.churn", "matrix")
    settings = _settings()
    version = registry.champion(settings.models)
    if version is None:
        raise NotAvailable(f"no champion model in {settings.models}: training did not register one")
    artifact, _ = registry.load(settings.models, version)
    as_of = date.fromisoformat(run_date) + timedelta(days=1)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        frame = build_features(con, as_of, settings.active_window_days)
    X = matrix(frame[frame["is_active"]], artifact["features"])
    started = time.perf_counter()
    artifact["model"].predict_proba(X)
    return {"seconds": time.perf_counter() - started, "rows": len(X)}


def stage_validate_scores(run_id: str) -> dict[str, Any]:
    import duckdb

    validate_scores = _require("expectations.scores", "validate_scores")
    settings = _settings()
    with duckdb.connect(str(settings.warehouse)) as con:
        rows = con.execute("select count(*) from mining.customer_scores").fetchone()[0]
        started = time.perf_counter()
        result = validate_scores(con, settings, run_id=run_id)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": rows,
        "success": result.get("success"),
        "critical_failures": result.get("critical_failures"),
        "warnings": result.get("warnings"),
    }


def stage_publish() -> dict[str, Any]:
    publish = _require("warehouse.publish", "publish")
    started = time.perf_counter()
    result = publish(_settings(), run_id="bench")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": sum(result["tables"].values()), "tables": len(result["tables"])}


def question_set(cubes: dict[str, Any], per_cube: int = QUESTIONS_PER_CUBE) -> list[dict[str, Any]]:
    """A fixed, materialised-level question set per cube: the total, single dimensions, the
    finest level, and slices (the first kept dimension fixed to a value found later)."""
    questions: list[dict[str, Any]] = []
    for name in sorted(cubes):
        cube = cubes[name]
        levels = sorted(cube.levels, key=lambda lv: (len(lv), cube.level_name(lv)))
        ordered = [[d for d in cube.dimensions if d in lv] for lv in levels]
        chosen: list[dict[str, Any]] = []
        singles = [lv for lv in ordered if len(lv) <= 1]
        multi = [lv for lv in ordered if len(lv) >= 2]
        for lv in singles:
            chosen.append({"cube": name, "by": lv, "slice": None, "level": cube.level_name(set(lv))})
        for lv in (multi[:1] + multi[-1:]) if multi else []:
            level = cube.level_name(set(lv))
            chosen.append({"cube": name, "by": lv, "slice": None, "level": level})
            chosen.append({"cube": name, "by": lv[1:], "slice": lv[0], "level": level})
        seen: set[str] = set()
        for q in chosen:
            key = json.dumps(q, sort_keys=True)
            if key not in seen and len([c for c in questions if c["cube"] == name]) < per_cube:
                seen.add(key)
                questions.append(q)
    return questions


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = share * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def stage_cube_queries(repeats: int = CUBE_REPEATS) -> dict[str, Any]:
    """Every question through warehouse.analyst.cube_query on the published file, as `crmwh cube`."""
    analyst = importlib.import_module("warehouse.analyst")
    cube_query = _require("warehouse.analyst", "cube_query")
    settings = _settings()
    con = analyst.connect_readonly(analyst.published_database(settings))
    try:
        cubes = analyst.load_cubes(con)
        questions = question_set(cubes)
        for q in questions:  # fix each slice's value: the first value of that dimension
            if q["slice"]:
                dim = q["slice"]
                value = con.execute(
                    f'select min("{dim}") from cubes."{q["cube"]}" where "{dim}" <> \'ALL\''
                ).fetchone()[0]
                q["where"] = {dim: [value]}
            else:
                q["where"] = {}
            q["measures"] = list(cubes[q["cube"]].measures)
        # What each cube_query spends before answering: reading the catalog and the levels.
        catalog: list[float] = []
        for _ in range(repeats):
            t = time.perf_counter()
            analyst.load_cubes(con)
            catalog.append(time.perf_counter() - t)
        times: list[float] = []
        for q in questions:
            cube_query(con, q["cube"], q["by"], q["where"], q["measures"])  # warm-up
            q["seconds"] = []
            for _ in range(repeats):
                t = time.perf_counter()
                result = cube_query(con, q["cube"], q["by"], q["where"], q["measures"])
                q["seconds"].append(time.perf_counter() - t)
            q["rows"] = len(result.rows)
            times += q["seconds"]
    finally:
        con.close()
    return {
        # one pass over the questions (each at its median), the footing the floor is measured on
        "seconds": sum(_percentile(q["seconds"], 0.5) for q in questions),
        "seconds_all_repeats": sum(times),
        "rows": len(questions),
        "executions": len(times),
        "p50_ms": _percentile(times, 0.5) * 1000,
        "p95_ms": _percentile(times, 0.95) * 1000,
        "load_cubes_p50_ms": _percentile(catalog, 0.5) * 1000,
        "questions": questions,
    }


def restrict_grouping_sets(sql: str, kept: list[str]) -> str:
    """The cube's compiled SQL with its GROUPING SETS reduced to the one set ``kept``.

    DuckDB's grouping(d) needs d in some set, so the cube's rolled-up flags and grouping_id
    (cube_grouping_flags) become the constants they take for that set. The measures a cube
    computes by one GROUP BY per set (cube_per_set) join its cells on grouping_id: the join
    is told the set's id, so DuckDB drops every other set's GROUP BY.
    """
    sets = re.compile(r"grouping\s+sets\s*\((?:\s*\([^()]*\)\s*,?)+\s*\)", re.IGNORECASE)
    if len(sets.findall(sql)) != 1:
        raise ValueError(
            f"expected one GROUPING SETS clause in the cube's SQL, found {len(sets.findall(sql))}"
        )
    ids = re.findall(r"grouping\(([^()]+)\)\s+as\s+grouping_id", sql, re.IGNORECASE)
    if len(ids) != 1:
        raise ValueError("expected one grouping(...) as grouping_id in the cube's SQL")
    dims = [d.strip() for d in ids[0].split(",")]
    bitmask = sum(1 << (len(dims) - 1 - i) for i, d in enumerate(dims) if d not in kept)
    sql = re.sub(r"grouping\([^()]+\)(\s+as\s+grouping_id)", lambda m: f"{bitmask}{m.group(1)}", sql)
    sql = re.sub(
        r"grouping\((\w+)\)(\s+as\s+_rolled_\w+)",
        lambda m: f"{0 if m.group(1) in kept else 1}{m.group(2)}",
        sql,
    )
    # the aggregate's dimension list, on one line: a rolled-up dimension is NULL, as GROUPING
    # SETS gives it
    listed = re.compile(r"^([ \t]*)" + r",[ \t]*".join(map(re.escape, dims)) + r",[ \t]*$", re.MULTILINE)
    if len(listed.findall(sql)) != 1:
        raise ValueError("expected the cube's dimensions listed once in its aggregate")
    columns = ", ".join(d if d in kept else f"null as {d}" for d in dims)
    sql = listed.sub(lambda m: f"{m.group(1)}{columns},", sql)
    sql = re.sub(
        r"\b(\w+)\.grouping_id = \w+\.grouping_id\b",
        lambda m: f"{m.group(1)}.grouping_id = {bitmask} and {m.group(0)}",
        sql,
    )
    return sets.sub(lambda _: f"grouping sets (({', '.join(kept)}))", sql)


def floor_query(compiled: str, question: dict[str, Any]) -> tuple[str, list[str]]:
    """One GROUPING SETS query over the facts answering the same question as the cube."""
    kept = [*question["by"], *[d for d in question["where"] if d not in question["by"]]]
    inner = restrict_grouping_sets(compiled, kept)
    cols = [f'"{d}"' for d in question["by"]] + [f'"{m}"' for m in question["measures"]]
    filters, params = ["kept_dimensions = ?"], [question["level"]]
    for dim, values in question["where"].items():
        filters.append(f'"{dim}" in ({", ".join("?" for _ in values)})')
        params += values
    order = f" order by {', '.join(cols[: len(question['by'])])}" if question["by"] else ""
    return f"select {', '.join(cols)} from (\n{inner}\n) as cube where {' and '.join(filters)}{order}", params


def stage_cube_floor(
    questions: list[dict[str, Any]], manifests: list[str], repeats: int = FLOOR_REPEATS
) -> dict[str, Any]:
    """Each cube question as one GROUPING SETS query over the facts of the published file, with
    each cube's SQL as compiled by whichever of the dbt runs' ``manifests`` built it."""
    import duckdb

    settings = _settings()
    compiled = {
        name: sql
        for manifest in manifests
        for name, sql in cubes_over_facts(json.loads(Path(manifest).read_text()), settings).items()
    }
    times: list[float] = []
    skipped: dict[str, str] = {}
    from warehouse.analyst import published_database

    # The published file under the build warehouse's catalog name (the compiled SQL names it),
    # so the floor reads exactly the facts the cubes were built from.
    with duckdb.connect() as con:
        con.execute(
            f"attach '{published_database(settings).resolve()}' as \"{settings.warehouse.stem}\" (read_only)"
        )
        con.execute(f'use "{settings.warehouse.stem}"')
        for q in questions:
            sql = compiled.get(q["cube"])
            q["floor_seconds"] = None
            try:
                if not sql:
                    raise ValueError(f"no compiled SQL for {q['cube']} in {manifests}")
                query, params = floor_query(sql, q)
                seconds = []
                for _ in range(repeats):
                    t = time.perf_counter()
                    rows = con.execute(query, params).fetchall()
                    seconds.append(time.perf_counter() - t)
            except (ValueError, duckdb.Error) as exc:
                skipped[f"{q['cube']} by {q['by']} where {q['where']}"] = str(exc).splitlines()[0]
                continue
            q["floor_seconds"] = seconds
            q["floor_rows"] = len(rows)
            q["same_row_count"] = len(rows) == q.get("rows")
            times += seconds
    if not times:
        raise NotAvailable(f"no cube could be asked as one GROUPING SETS query: {skipped}")
    return {
        "seconds": sum(times),
        "rows": len(questions) - len(skipped),
        "p50_ms": _percentile(times, 0.5) * 1000,
        "p95_ms": _percentile(times, 0.95) * 1000,
        "skipped": skipped,
        "questions": questions,
    }


# ----------------------------------------------------------------------------- the report


def _gates(stages: dict[str, Any]) -> list[str]:
    """The report's line on the suites' verdicts: a stage times a suite and reads "ok" whether or
    not its gate passed, and a failed gate would stop a pipeline run before publish."""
    verdicts = []
    for key in ("validate_raw", "validate_marts", "validate_scores"):
        s = stages.get(key, {})
        if s.get("status") not in ("ok", "cached") or s.get("success") is None:
            continue
        label = STAGE_LABELS[key]
        if s["success"]:
            warnings = s.get("warnings") or 0
            verdicts.append(f"{label} passed ({warnings} warning{'' if warnings == 1 else 's'})")
        else:
            verdicts.append(
                f"{label} FAILED ({s.get('critical_failures')} critical; a pipeline run would not publish)"
            )
    return ["", f"Gates: {'; '.join(verdicts)}."] if verdicts else []


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS and the versions that shape the figures."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {}
    for name in ("duckdb", "dbt-core", "dbt-duckdb", "scikit-learn", "great-expectations", "pandas"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing package is reported as such
            versions[name] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def _ratio(seconds: float | None, floor: float | None) -> float | None:
    if seconds is None or not floor:
        return None
    return seconds / floor


def finish(stages: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fill rows/s and ratio = seconds / floor_seconds for every measured stage, in place."""
    for key in STAGE_KEYS:
        stage = stages.setdefault(key, {"status": "not run", "error": "not reached in this run"})
        ok = stage.get("status") in ("ok", "cached")
        seconds = stage.get("seconds") if ok else None
        rows = stage.get("rows") if ok else None
        stage["rows_per_second"] = rows / seconds if seconds and rows is not None else None
        stage["ratio"] = _ratio(seconds, stage.get("floor_seconds")) if ok else None
    return stages


def _met(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "not met")


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets: met / not met / not measured, each with the figure and why."""
    stages = report["stages"]
    scale = report["scale"]
    ok = {k: stages[k].get("status") in ("ok", "cached") for k in STAGE_KEYS}
    targets: list[dict[str, Any]] = []

    e2e_ok = all(ok[k] for k in END_TO_END)
    e2e = sum(stages[k]["seconds"] for k in END_TO_END) if e2e_ok else None
    peak = max(stages[k]["peak_mb"] for k in END_TO_END) if e2e_ok else None
    at_l = scale == "L"
    missing = ", ".join(k for k in END_TO_END if not ok[k])
    targets.append(
        {
            "target": "L end to end (without generate) < 15 min",
            "value": f"{e2e / 60:.1f} min ({e2e:.1f} s) at {scale}" if e2e is not None else None,
            "status": _met(e2e < 900) if at_l and e2e is not None else "not measured",
            "why": (f"measured at {scale}, the target is for L" if not at_l else "")
            + (f"; stages missing: {missing}" if missing else "")
            + (_end_to_end_why(stages, e2e) if at_l and e2e is not None and e2e >= 900 else ""),
        }
    )
    targets.append(
        {
            "target": "L peak memory < 12 GB",
            "value": f"{peak / 1024:.2f} GB at {scale}" if peak is not None else None,
            "status": _met(peak < 12 * 1024) if at_l and peak is not None else "not measured",
            "why": (f"measured at {scale}, the target is for L" if not at_l else "")
            + (_peak_why(stages) if at_l and peak is not None and peak >= 12 * 1024 else ""),
        }
    )
    ingest = stages["ingest_vs_floor"]
    targets.append(
        {
            "target": "ingest <= 2x bare DuckDB read",
            "value": f"{ingest['ratio']:.2f}x" if ingest.get("ratio") is not None else None,
            "status": _met(ingest["ratio"] <= 2) if ingest.get("ratio") is not None else "not measured",
            "why": _ingest_why(ingest),
        }
    )
    models = stages["dbt_models"]
    build = stages["dbt_build"]
    targets.append(
        {
            "target": "dbt build <= 1.5x bare SQL",
            "value": (
                f"models only {models['ratio']:.2f}x"
                + (
                    f"; build before scoring, with tests, {build['ratio']:.2f}x"
                    if build.get("ratio") is not None
                    else ""
                )
                if models.get("ratio") is not None
                else None
            ),
            "status": _met(models["ratio"] <= 1.5) if models.get("ratio") is not None else "not measured",
            "why": _dbt_why(models),
        }
    )
    cubes = stages["cube_queries"]
    p95 = cubes.get("p95_ms") if ok["cube_queries"] else None
    targets.append(
        {
            "target": "cube queries p95 < 50 ms at L",
            "value": f"p95 {p95:.1f} ms at {scale}" if p95 is not None else None,
            "status": _met(p95 < 50) if at_l and p95 is not None else "not measured",
            "why": (f"measured at {scale}, the target is for L" if not at_l else "")
            + (f"; {_cube_why(cubes)}" if p95 is not None and p95 >= 50 else ""),
        }
    )
    days = {suffix: _day_share(stages, suffix) for suffix in DAY_SUFFIXES}
    first, second = days[""], days["2"]
    value = None
    if first is not None:
        value = f"{first[0]:.1%} (the day's two dbt runs / the full build's two; before scoring alone {first[1]:.1%})"
        if second is not None:
            value += f"; a second day {second[0]:.1%} (before scoring {second[1]:.1%})"
    measured = [day for day in (first, second) if day is not None]
    targets.append(
        {
            "target": "incremental day <= 10% of a full build",
            "value": value,
            "status": _met(all(day[0] <= 0.10 for day in measured)) if first is not None else "not measured",
            "why": "; ".join(
                _incremental_why(stages, suffix)
                for suffix, day in days.items()
                if day is not None and day[0] > 0.10
            ),
        }
    )
    return targets


def _end_to_end_why(stages: dict[str, Any], seconds: float) -> str:
    """The end-to-end stages, slowest first, and how far their sum is over 15 minutes."""
    slowest = sorted(END_TO_END, key=lambda k: stages[k]["seconds"], reverse=True)
    return f"{seconds:.1f}s, {seconds - 900:.1f}s over 900s, by stage: " + ", ".join(
        f"{STAGE_LABELS[k]} {stages[k]['seconds']:.1f}s" for k in slowest
    )


def _peak_why(stages: dict[str, Any]) -> str:
    """The end-to-end stage that peaked highest."""
    largest = max(END_TO_END, key=lambda k: stages[k]["peak_mb"])
    return f"the largest stage: {STAGE_LABELS[largest]}, {stages[largest]['peak_mb']:,.0f} MB"


def _day_share(stages: dict[str, Any], suffix: str) -> tuple[float, float] | None:
    """(a day's two dbt runs / the full build's two, its run before scoring / the full one's)."""
    keys = (f"dbt_incremental{suffix}", f"dbt_incremental_scored{suffix}", "dbt_build", "dbt_scored")
    if not all(stages[k].get("status") == "ok" for k in keys):
        return None
    inc, inc_scored, build, scored = (stages[k]["seconds"] for k in keys)
    return (inc + inc_scored) / (build + scored), inc / build


def _node_name(unique_id: str) -> str:
    """'model.crmwh.fct_sales' -> 'fct_sales'; a test keeps its name, not its hash suffix."""
    parts = unique_id.split(".")
    return parts[2] if len(parts) > 2 else unique_id


def _nodes(stage: dict[str, Any], n: int = 4) -> str:
    return ", ".join(
        f"{_node_name(s['node'])} {s['seconds']:.1f}s" for s in (stage.get("slowest_nodes") or [])[:n]
    )


def _ingest_why(stage: dict[str, Any]) -> str:
    if stage.get("ratio") is None or stage["ratio"] <= 2:
        return ""
    return (
        f"ingest {stage['seconds']:.1f}s vs bare read {stage['floor_seconds']:.1f}s over {stage.get('files')} files:"
        " ingest hashes and decodes each file, numbers its lines, types and checks every value"
        " (quarantine, manifest, a transaction per batch), where the bare read scans each"
        " source's files in one statement"
    )


def _dbt_why(models: dict[str, Any]) -> str:
    if models.get("ratio") is None or models["ratio"] <= 1.5:
        return ""
    overhead = models["seconds"] - models["floor_seconds"]
    return (
        f"dbt adds {overhead:.1f}s over {models['floor_seconds']:.1f}s of SQL: parsing the project,"
        " compiling Jinja, introspection queries, per-model transactions (tmp table, rename, drop)"
        " and hooks (the cubes kept by difference write their rows into cube_state);"
        f" slowest models: {_nodes(models)}"
    )


def _cube_why(stage: dict[str, Any]) -> str:
    catalog = stage.get("load_cubes_p50_ms")
    share = f" ({catalog:.1f} ms at p50)" if catalog is not None else ""
    return (
        f"the slowest questions scan the largest cube levels; a new connection also reads the catalog{share}"
    )


def _incremental_why(stages: dict[str, Any], suffix: str) -> str:
    inc, scored = stages[f"dbt_incremental{suffix}"], stages[f"dbt_incremental_scored{suffix}"]
    score = stages[f"score_day{suffix}"]
    moved = score.get("moved")
    moves = (
        "moves not recorded"
        if moved is None
        else ", ".join(f"{n:,} customers to another {d.replace('_', ' ')}" for d, n in moved.items())
        or "no customer moved"
    )
    as_of = score.get("as_of")
    scored_as_of = f"as of {as_of}" if as_of else "as of an unrecorded date"
    if as_of and date.fromisoformat(as_of).day == 1:
        scored_as_of += ", a month's first day: the tiers' window of whole months moved"
    return (
        f"{'the first day' if not suffix else 'the second day'}: after its scoring ({scored_as_of};"
        f" {moves}), dim_customer and its children take"
        f" {scored['seconds']:.1f}s (slowest: {_nodes(scored)}): cube_sales and cube_contacts go by"
        f" difference, the other cubes are rebuilt whole; the incremental build before scoring"
        f" takes {inc['seconds']:.1f}s (slowest: {_nodes(inc)})"
    )


def _load_note(report: dict[str, Any]) -> str:
    """How busy the machine was: figures taken with other work running are slower than alone."""
    loads = [x for st in report["stages"].values() for x in (st.get("load_1m") or [])]
    cores = report["machine"].get("cores") or 1
    if not loads:
        return "Machine load: not recorded."
    busiest = max(loads)
    note = f"Machine load (1-minute average around the stages): {min(loads):.1f} to {busiest:.1f} on {cores} cores"
    if busiest > cores:
        note += (
            "; other processes shared the CPUs during this run, so seconds are longer than on an idle"
            " machine (ratios, measured back to back, are less affected)"
        )
    return note + "."


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the machine, one table row per stage, the targets."""
    m = report["machine"]
    lines = [
        f"# crmwh benchmark, scale {report['scale']}",
        "",
        f"{report['customers']:,} customers over {report['days']} days"
        f" (+{len(DAY_SUFFIXES)} days, one incremental run each),"
        f" seed {report['seed']}, generator {report['generator_version']}; run {report['started_at']}"
        f" ({report['total_minutes']:.1f} min in all).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB memory; {m['os']}; Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        _load_note(report),
        "",
        "| stage | status | seconds | peak MB | rows | rows/s | floor seconds | ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def num(value: Any, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    for key, label, _ in STAGES:
        s = report["stages"][key]
        status = s.get("status")
        if status in ("ok", "cached"):
            lines.append(
                f"| {label} | {status} | {num(s.get('seconds'), '.2f')} | {num(s.get('peak_mb'), ',.0f')}"
                f" | {num(s.get('rows'), ',')} | {num(s.get('rows_per_second'), ',.0f')}"
                f" | {num(s.get('floor_seconds'), '.2f')} | {num(s.get('ratio'), '.2f')} |"
            )
        else:
            lines.append(f"| {label} | {status} | | | | | | |")
    cubes = report["stages"]["cube_queries"]
    if cubes.get("status") == "ok":
        floor = cubes.get("floor") or {}
        lines += [
            "",
            f"Cube queries: {cubes['rows']} questions x {cubes['executions'] // max(cubes['rows'], 1)} runs"
            f" through `warehouse.analyst.cube_query` on the published file: p50 {cubes['p50_ms']:.1f} ms,"
            f" p95 {cubes['p95_ms']:.1f} ms."
            + (
                f" The same questions as one GROUPING SETS query over the facts: p50 {floor['p50_ms']:.1f} ms,"
                f" p95 {floor['p95_ms']:.1f} ms (floor seconds and ratio above compare the summed time"
                " of one run of each question)."
                if floor.get("p50_ms") is not None
                else " Floor: " + str(floor.get("error", "not measured"))
            ),
            "",
            (
                f"The questions share one connection, which reads the cube catalog and levels once"
                f" (`analyst.cubes_of`); a new connection, e.g. each `crmwh cube` command, pays that"
                f" once: {cubes['load_cubes_p50_ms']:.1f} ms at p50."
                if cubes.get("load_cubes_p50_ms") is not None
                else ""
            ),
            "",
            "| cube | questions | p50 ms | p95 ms | GROUPING SETS p50 ms | GROUPING SETS p95 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, c in sorted((cubes.get("per_cube") or {}).items()):
            lines.append(
                f"| {name} | {c['questions']} | {c['p50_ms']:.1f} | {c['p95_ms']:.1f} |"
                f" {num(c.get('floor_p50_ms'), '.1f')} | {num(c.get('floor_p95_ms'), '.1f')} |"
            )
    score = report["stages"]["score"]
    if score.get("status") == "ok" and score.get("inner_seconds"):
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in score["inner_seconds"].items() if k != "total")
        lines += [
            "",
            f"Scoring, by its own timings: {parts}; the bare predict_proba: {score.get('floor_seconds') or 0:.2f}s.",
        ]
    train = report["stages"]["train"]
    if train.get("status") == "ok" and train.get("inner_seconds"):
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in train["inner_seconds"].items() if k != "total")
        lines += ["", f"Training, by its own timings: {parts} (AUC {train.get('auc') or float('nan'):.3f})."]
    floor = report["stages"]["ingest_vs_floor"]
    if floor.get("status") == "ok" and floor.get("bare_rows"):
        share = floor["rows"] / floor["bare_rows"]
        lines += [
            "",
            f"Sanity: ingest read {floor['rows']:,} rows where the bare read found {floor['bare_rows']:,}"
            f" ({share:.1%})"
            + (
                "."
                if share > 0.9
                else ": ingest reads far fewer rows than the files hold, the figures"
                " downstream are not representative."
            ),
        ]
    lines += _gates(report["stages"])
    e2e = report.get("end_to_end")
    if e2e:
        lines += [
            "",
            f"End to end without generate ({', '.join(END_TO_END)}): {e2e['seconds']:.1f} s,"
            f" peak {e2e['peak_mb']:,.0f} MB (the largest stage).",
        ]
    lines += ["", "## Targets", "", "| target | value | status | why |", "|---|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['value'] or ''} | {t['status']} | {t['why']} |")
    problems = [(k, s) for k, s in report["stages"].items() if s.get("status") not in ("ok", "cached")]
    if problems:
        lines += ["", "## Stages not measured", ""]
        lines += [
            f"- {k}: {s.get('status')}: {str(s.get('error', '')).splitlines()[0][:300]}" for k, s in problems
        ]
    lines += ["", "## What the rows are", ""]
    lines += [f"- {label}: {ROWS_MEANING[key]}" for key, label, _ in STAGES]
    lines += ["", "## Where dbt's time goes", ""]
    for key in (
        "dbt_build",
        "dbt_models",
        "dbt_scored",
        *DAY_DBT_STAGES,
    ):
        st = report["stages"][key]
        by_type = st.get("node_seconds_by_type") or {}
        if st.get("status") == "ok" and by_type:
            nodes = sum(by_type.values())
            parts = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(by_type.items(), key=lambda kv: -kv[1]))
            lines.append(
                f"- {key}: {st['seconds']:.1f}s wall = {nodes:.1f}s in nodes ({parts})"
                f" + {st['seconds'] - nodes:.1f}s outside them (start-up, parsing, compiling, artifacts)"
            )
    lines += ["", "## Slowest nodes", ""]
    for key in (
        "dbt_build",
        "dbt_models",
        *DAY_DBT_STAGES,
    ):
        s = report["stages"][key]
        if s.get("slowest_nodes"):
            lines.append(f"- {key} (dbt): {_nodes(s, 8)}")
        floor = s.get("floor") or {}
        if floor.get("slowest_nodes"):
            lines.append(f"- {key} floor (direct SQL): {_nodes(floor, 8)}")
    return "\n".join(lines) + "\n"


def _per_cube(questions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({q["cube"] for q in questions}):
        qs = [q for q in questions if q["cube"] == name]
        times = [t for q in qs for t in q["seconds"]]
        floors = [t for q in qs for t in (q.get("floor_seconds") or [])]
        out[name] = {
            "questions": len(qs),
            "p50_ms": _percentile(times, 0.5) * 1000,
            "p95_ms": _percentile(times, 0.95) * 1000,
            "floor_p50_ms": _percentile(floors, 0.5) * 1000 if floors else None,
            "floor_p95_ms": _percentile(floors, 0.95) * 1000 if floors else None,
        }
    return out


def build_report(meta: dict[str, Any], stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Assemble the JSON report: machine, stages (with rows/s and ratios), end to end, targets."""
    finish(stages)
    stages = {k: stages[k] for k in STAGE_KEYS}
    report = {**meta, "stages": stages}
    if all(stages[k].get("status") in ("ok", "cached") for k in END_TO_END):
        report["end_to_end"] = {
            "stages": list(END_TO_END),
            "seconds": sum(stages[k]["seconds"] for k in END_TO_END),
            "peak_mb": max(stages[k]["peak_mb"] for k in END_TO_END),
        }
    report["targets"] = evaluate_targets(report)
    return report


def write_report(report: dict[str, Any], folder: Path, name: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{name}.json"
    md_path = folder / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path.write_text(render_markdown(report))
    return json_path, md_path


# ----------------------------------------------------------------------------- the run


def run(
    scale: str,
    customers: int,
    days: int,
    seed: int,
    work: Path,
    results: Path,
    regenerate: bool = False,
    skip_floors: bool = False,
) -> dict[str, Any]:
    """Run every stage in order (each in its own process) and write ``<results>/<scale>.{md,json}``."""
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    stages: dict[str, dict[str, Any]] = {}
    meta = {
        "scale": scale,
        "customers": customers,
        "days": days,
        "seed": seed,
        "start": START.isoformat(),
        "generator_version": generator_version(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": machine(),
    }

    def save() -> dict[str, Any]:
        meta["total_minutes"] = (time.perf_counter() - t0) / 60
        report = build_report(meta, {k: dict(v) for k, v in stages.items()})
        write_report(report, results, scale)
        return report

    def step(key: str, func: str, **kwargs: Any) -> dict[str, Any]:
        print(f"[bench {scale}] {key} ...", flush=True)
        result = run_stage(f"warehouse.bench:{func}", kwargs, env, logs / f"{key}.log")
        stages[key] = result
        if result.get("status") != "ok":
            result["log"] = str(logs / f"{key}.log")
        extra = f" ({result.get('error', '')[:200]})" if result.get("status") != "ok" else ""
        print(
            f"[bench {scale}] {key}: {result.get('status')} {result.get('seconds', 0) or 0:.2f}s"
            f" peak {result.get('peak_mb')} MB{extra}",
            flush=True,
        )
        save()
        return result

    home = work / "home"
    logs = work / "logs"
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)
    home.mkdir(parents=True)
    env = {"CRMWH_HOME": str(home)}
    for name in ("WAREHOUSE", "PUBLISHED", "LANDING", "MODELS", "VALIDATION", "DBT_PROJECT"):
        os.environ.pop(f"CRMWH_{name}", None)

    # generate (cached by scale + seed + generator version)
    data = cache_dir(customers, days + len(DAY_SUFFIXES), seed)
    record = data / "bench_generate.json"
    if data.exists() and record.exists() and not regenerate:
        stages["generate"] = {**json.loads(record.read_text()), "status": "cached", "cache": str(data)}
        print(f"[bench {scale}] generate: cached in {data}", flush=True)
    else:
        result = step(
            "generate",
            "stage_generate",
            out=str(data),
            customers=customers,
            days=days + len(DAY_SUFFIXES),
            seed=seed,
        )
        if result.get("status") != "ok":
            return save()
        record.write_text(json.dumps({**result, "measured_at": started_at.isoformat(timespec="seconds")}))
        stages["generate"]["cache"] = str(data)
    landing = str(data / "landing")
    env["CRMWH_LANDING"] = landing
    last_full = (START + timedelta(days=days - 1)).isoformat()

    ing = step("ingest", "stage_ingest", landing=landing, until=last_full)
    if ing.get("status") != "ok":
        return save()
    if skip_floors:
        for key in ("ingest_vs_floor", "dbt_models"):
            stages[key] = {"status": "skipped", "error": "skipped with --skip-floors"}
    else:
        step("ingest_vs_floor", "stage_ingest_floor", landing=landing)
    step("validate_raw", "stage_validate_raw", run_id=ing["run_id"])
    # A fresh warehouse: every model builds whole. As in a daily run, the models that read the
    # scores (the cubes) wait until scoring.
    built = step("dbt_build", "stage_dbt", selector=BEFORE_SCORING)
    if built.get("status") != "ok":
        return save()
    # The cube floor asks each question of the cube's compiled SQL; every dbt run rewrites the
    # manifest with the models it ran, so keep those of the two runs that build the cubes.
    cube_manifests = [work / "manifest_build.json", work / "manifest_cubes.json"]
    shutil.copyfile(built["manifest"], cube_manifests[0])
    cube_manifests[1].unlink(missing_ok=True)  # an earlier run's, should this one's build fail
    if not skip_floors:
        models = step(
            "dbt_models",
            "stage_dbt",
            select="resource_type:model",
            exclude="resource_type:test resource_type:unit_test",
            full_refresh=True,
            warehouse_copy=str(work / "dbt_models" / _warehouse_name()),
        )
        if models.get("status") == "ok":
            floor = run_stage(
                "warehouse.bench:stage_dbt_floor",
                {
                    "manifest": models["manifest"],
                    "warehouse_copy": str(work / "dbt_floor" / _warehouse_name()),
                },
                env,
                logs / "dbt_floor.log",
            )
            print(
                f"[bench {scale}] dbt floor: {floor.get('status')} {floor.get('seconds', 0) or 0:.2f}s",
                flush=True,
            )
            stages["dbt_models"]["floor"] = floor
            if floor.get("status") == "ok":
                stages["dbt_models"]["floor_seconds"] = floor["seconds"]
                # The build before scoring against the direct SQL of the models it built.
                stages["dbt_build"]["floor_seconds"] = sum(
                    floor["node_seconds"].get(m, 0.0) for m in built["models"]
                )
            shutil.rmtree(work / "dbt_models", ignore_errors=True)
            shutil.rmtree(work / "dbt_floor", ignore_errors=True)
            save()
    step("features", "stage_features")
    step("train", "stage_train")
    scored = step("score", "stage_score", run_date=last_full)
    if scored.get("status") == "ok":
        floor = run_stage(
            "warehouse.bench:stage_score_floor", {"run_date": last_full}, env, logs / "score_floor.log"
        )
        stages["score"]["floor"] = floor
        if floor.get("status") == "ok":
            stages["score"]["floor_seconds"] = floor["seconds"]
        save()
    after_scoring = step("dbt_scored", "stage_dbt", selector=AFTER_SCORING)
    if after_scoring.get("status") == "ok":
        shutil.copyfile(after_scoring["manifest"], cube_manifests[1])
    step("validate_marts", "stage_validate_marts", run_id=f"bench-{scale}")
    step("validate_scores", "stage_validate_scores", run_id=f"bench-{scale}")
    published = step("publish", "stage_publish")
    if published.get("status") == "ok":
        cubes = step("cube_queries", "stage_cube_queries")
        if cubes.get("status") == "ok":
            floor = run_stage(
                "warehouse.bench:stage_cube_floor",
                {
                    "questions": cubes["questions"],
                    "manifests": [str(m) for m in cube_manifests if m.exists()],
                },
                env,
                logs / "cube_floor.log",
            )
            questions = floor.pop("questions", None) or cubes["questions"]
            cubes["floor"] = floor
            cubes["questions"] = questions
            if floor.get("status") == "ok" and not floor.get("skipped"):
                cubes["floor_seconds"] = sum(_percentile(q["floor_seconds"], 0.5) for q in questions)
            cubes["per_cube"] = _per_cube(questions)
            save()
    for n, suffix in enumerate(DAY_SUFFIXES):
        run_date = (START + timedelta(days=days + n)).isoformat()
        day = step(f"ingest_day{suffix}", "stage_ingest", landing=landing, until=run_date, only_day=True)
        if day.get("status") != "ok":
            break
        # What a daily run does (warehouse.pipeline): the incremental build before scoring,
        # then, once the day's scores are in, the models that read them.
        step(f"dbt_incremental{suffix}", "stage_dbt", selector=BEFORE_SCORING)
        step(f"score_day{suffix}", "stage_score", run_date=run_date)
        step(f"dbt_incremental_scored{suffix}", "stage_dbt", selector=AFTER_SCORING)
    report = save()
    print(f"[bench {scale}] done in {report['total_minutes']:.1f} min", flush=True)
    return report


def _warehouse_name() -> str:
    """The build warehouse's file name: copies keep it, since compiled SQL names the catalog."""
    from warehouse.config import load_settings

    return load_settings().warehouse.name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="S")
    parser.add_argument(
        "--customers", type=int, help="Override the scale's customers (report named c<customers>-d<days>)."
    )
    parser.add_argument(
        "--days", type=int, default=DAYS, help="Days of the full build (one more is generated)."
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--work", type=Path, help="Working folder (default: <cache>/work-<scale>, kept for its logs)."
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="Where the .md and .json go.")
    parser.add_argument("--regenerate", action="store_true", help="Ignore the cached generated data.")
    parser.add_argument(
        "--skip-floors",
        action="store_true",
        help="Skip the ingest and dbt floors (each repeats its whole stage: for L).",
    )
    parser.add_argument(
        "--render-only", action="store_true", help="Rewrite <scale>.md from <scale>.json, run nothing."
    )
    args = parser.parse_args(argv)
    customers = args.customers or SCALES[args.scale]
    scale = args.scale if args.customers is None and args.days == DAYS else f"c{customers}-d{args.days}"
    if args.render_only:
        saved = json.loads((args.results / f"{scale}.json").read_text())
        meta = {k: v for k, v in saved.items() if k not in ("stages", "targets", "end_to_end")}
        write_report(build_report(meta, saved["stages"]), args.results.resolve(), scale)
        print(f"rewrote {args.results / scale}.md")
        return
    # Kept after the run (overwritten by the next one): the stage logs and the warehouse.
    work = (args.work or cache_root() / f"work-{scale}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    report = run(
        scale,
        customers,
        args.days,
        args.seed,
        work,
        args.results.resolve(),
        args.regenerate,
        args.skip_floors,
    )
    print(f"stage logs: {work / 'logs'}")
    print(f"results: {args.results / scale}.md and .json")
    for t in report["targets"]:
        print(f"  {t['status']:13} {t['target']}: {t['value'] or ''}")


if __name__ == "__main__":
    main()
