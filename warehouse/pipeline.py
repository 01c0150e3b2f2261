"""The daily run, step by step: the functions ``crmwh run`` and the Airflow DAGs both call.

One logical date D is one run: load every delivery up to D, validate the raw layer, build the
marts incrementally, score the customers as of D, build the models that read the scores (the
cubes), validate marts, cubes and scores, publish, and write a report. Each step is recorded
in ``ops.steps`` and the run in ``ops.runs``. A critical expectation that fails raises ``StepBlocked``: the run
stops before publish, so BI tools keep the last good version, byte for byte. Warnings are
recorded and the run goes on.

Every step is idempotent for its date (ingest skips files it already holds, dbt rebuilds its
window, scoring replaces the scores of D), so an Airflow retry or a second run of the same
date changes nothing, and a backfill A..B is the same as running A, A+1, ..., B in turn.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from warehouse import ops
from warehouse.config import Settings, load_settings
from warehouse.contracts import SOURCES

# The order of a daily run; "ingest" is one step per source (``ingest:<source>``).
STEPS: tuple[str, ...] = (
    "ingest",
    "validate_raw",
    "build",
    "score",
    "build_scored",
    "validate_marts",
    "validate_scores",
    "publish",
    "report",
)


def new_run_id(logical_date: date, trigger: str = "cli") -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{trigger}__{logical_date.isoformat()}__{stamp}_{secrets.token_hex(2)}"


def as_date(value: date | str) -> date:
    """Accept a date or 'YYYY-MM-DD' (Airflow hands strings through XCom)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def delivery_days(landing: Path, until: date) -> list[date]:
    """Delivery dates (``dt=`` folders) present in the landing, up to and including ``until``.

    A run for D loads every delivery up to D that is not loaded yet (ingest skips the others),
    never a later one: a day's marts and scores only know what had arrived by that day.
    """
    days = set()
    for folder in landing.glob("*/dt=*"):
        try:
            day = date.fromisoformat(folder.name[3:])
        except ValueError:
            continue
        if day <= until:
            days.add(day)
    return sorted(days)


# ------------------------------------------------------------------------------ the steps
# Each takes (settings, run_id, day) and returns a small JSON-able summary with "rows".


def ingest_source(settings: Settings, run_id: str, day: date, source: str) -> dict:
    """Load one source's deliveries up to ``day`` into ``raw.<source>``."""
    from warehouse.ingest import ingest

    if source not in SOURCES:
        raise click.BadParameter(f"unknown source {source!r}; choose one of {sorted(SOURCES)}")
    days = delivery_days(settings.landing, day)
    if not days:
        return {"rows": 0, "files": 0, "sources": {}}
    result = ingest(settings.warehouse, settings.landing, days=days, sources=[source], run_id=run_id)
    summary = result["sources"].get(source, {})
    return {
        "rows": int(summary.get("rows_loaded", 0) or 0),
        "files": len(result["files"]),
        "sources": result["sources"],
    }


def validate_raw(settings: Settings, run_id: str, day: date) -> dict:
    """The raw-layer suite (expectations/raw.py); critical failures block the run."""
    from expectations.raw import validate_raw as run_raw_suite

    _forget_validations(settings, "raw._validation", run_id)
    result = run_raw_suite(settings.warehouse, run_id, settings)
    rows = ops.copy_validations_from(settings.warehouse, run_id, "validate_raw", "raw._validation")
    return _gate("validate_raw", result, rows)


def build(settings: Settings, run_id: str, day: date) -> dict:
    """dbt build of staging, facts and dimensions: the incremental models rebuild their window
    (the last lookback_days days of data, and any older day a late or corrected file touched).

    No dbt vars are passed: a var that changes every day would make dbt re-parse the whole
    project on every run, and the window is derived from the data itself."""
    from warehouse.build import BEFORE_SCORING
    from warehouse.build import build as dbt_build

    result = dbt_build(settings, selector=BEFORE_SCORING)
    return {"rows": sum(result["nodes"].values()), "nodes": result["nodes"], "seconds": result["seconds"]}


def validate_marts(settings: Settings, run_id: str, day: date) -> dict:
    """The marts suite (expectations/marts.py); critical failures block publish."""
    from expectations.marts import validate_marts as run_marts_suite

    result = run_marts_suite(settings.warehouse, run_id, settings)
    return _gate("validate_marts", result, _copy_suite_rows(settings, run_id, "validate_marts", result))


def _copy_suite_rows(settings: Settings, run_id: str, step: str, result: dict) -> int:
    rows = result.get("results") or []
    return ops.record_validations(settings.warehouse, run_id, step, rows)


def _gate(step: str, result: dict, recorded: int) -> dict:
    summary = {
        "rows": recorded,
        "success": bool(result.get("success")),
        "critical_failures": int(result.get("critical_failures", 0)),
        "warnings": int(result.get("warnings", 0)),
    }
    if summary["critical_failures"] > 0:
        raise ops.StepBlocked(
            f"{step}: {summary['critical_failures']} critical expectation(s) failed; see ops.validations"
            f" (step = '{step}', critical and not success) and fix the data they name, then rerun."
        )
    return summary


def score(settings: Settings, run_id: str, day: date) -> dict:
    """Score every customer with the champion model as of the day after ``day`` (features see
    the deliveries through ``day`` only). Before the first champion exists (a fresh warehouse)
    the weekly training runs once here, so the first daily run can publish scores."""
    from mining import registry
    from mining.score import score as score_customers

    detail: dict = {}
    if registry.champion(settings.models) is None:
        from mining.train import train

        trained = train(settings)
        detail["bootstrap_train"] = {k: trained.get(k) for k in ("version", "promoted") if k in trained}
        if registry.champion(settings.models) is None:
            raise RuntimeError(
                f"{settings.models}: training registered no champion (see its report); run `crmwh train`"
                " and promote a version before scoring."
            )
    result = score_customers(settings, as_of=day + timedelta(days=1), rebuild=False, validate=False)
    detail.update({k: result.get(k) for k in ("as_of", "model_version", "customers", "history_appended")})
    return {"rows": int(result.get("customers") or 0), **detail}


def build_scored(settings: Settings, run_id: str, day: date) -> dict:
    """Build the dbt models that read mining.customer_scores (dim_customer and its children:
    the cubes), so tiers and stages in the marts and cubes match the scores just written."""
    from warehouse.build import AFTER_SCORING
    from warehouse.build import build as dbt_build

    result = dbt_build(settings, selector=AFTER_SCORING)
    return {"rows": sum(result["nodes"].values()), "nodes": result["nodes"], "selector": AFTER_SCORING}


def validate_scores(settings: Settings, run_id: str, day: date) -> dict:
    """The scores suite (expectations/scores.py) on mining.customer_scores; critical failures
    block publish, so BI never sees scores that break their own contract."""
    from expectations.scores import validate_scores as run_scores_suite

    _forget_validations(settings, "mining._validation", run_id)
    con = ops.connect(settings.warehouse)
    try:
        result = run_scores_suite(con, settings, run_id=run_id)
    finally:
        con.close()
    rows = ops.copy_validations_from(settings.warehouse, run_id, "validate_scores", "mining._validation")
    return _gate("validate_scores", result, rows)


def _forget_validations(settings: Settings, table: str, run_id: str) -> None:
    """Drop a suite's earlier rows for this run id, so a retried step is not counted twice."""
    schema, _, name = table.partition(".")
    con = ops.connect(settings.warehouse)
    try:
        exists = con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", [schema, name]
        ).fetchone()[0]
        if exists:
            con.execute(f"delete from {table} where run_id = ?", [run_id])
    finally:
        con.close()


STEP_FUNCTIONS: dict[str, Callable[[Settings, str, date], dict]] = {
    "validate_raw": validate_raw,
    "build": build,
    "validate_marts": validate_marts,
    "score": score,
    "build_scored": build_scored,
    "validate_scores": validate_scores,
}


def publish(settings: Settings, run_id: str, day: date) -> dict:
    """Swap a read-only copy of marts, cubes, mining and ops in for BI tools."""
    from warehouse.publish import publish as publish_copy

    result = publish_copy(settings, run_id=run_id)
    return {
        "rows": sum(result["tables"].values()),
        "version": result["version"],
        "sha256": result["sha256"],
        "tables": len(result["tables"]),
    }


def report(settings: Settings, run_id: str, day: date) -> dict:
    """Write the run report (Markdown and JSON) under ``<home>/reports/``: what ran, how long,
    what each gate said, and what BI tools now read."""
    con = ops.connect(settings.warehouse)
    try:
        steps = con.execute(
            "select step, status, seconds, rows from ops.steps where run_id = ? order by started_at", [run_id]
        ).fetchall()
        checks = con.execute(
            "select step, count(*), count(*) filter (not success),"
            " count(*) filter (not success and critical) from ops.validations where run_id = ?"
            " group by step order by step",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    from warehouse.publish import current_version, version_info

    version = current_version(settings)
    info = version_info(settings, version) if version else {}
    data = {
        "run_id": run_id,
        "logical_date": day.isoformat(),
        "steps": [dict(zip(("step", "status", "seconds", "rows"), s, strict=True)) for s in steps],
        "validations": [
            dict(zip(("step", "expectations", "failed", "critical_failed"), c, strict=True)) for c in checks
        ],
        "published_version": version,
        "published_run_id": info.get("run_id"),
        "published_tables": info.get("tables", {}),
    }
    folder = settings.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"run_{day.isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str))
    lines = [f"# crmwh run {day.isoformat()}", "", f"run id: `{run_id}`", "", "| step | status | s | rows |"]
    lines.append("|---|---|---:|---:|")
    lines += [f"| {s['step']} | {s['status']} | {s['seconds']} | {s['rows']} |" for s in data["steps"]]
    lines += ["", "| validation step | expectations | failed | critical failed |", "|---|---:|---:|---:|"]
    lines += [
        f"| {v['step']} | {v['expectations']} | {v['failed']} | {v['critical_failed']} |"
        for v in data["validations"]
    ]
    lines += ["", f"Published version: `{version}` (run `{info.get('run_id')}`)", ""]
    lines += [f"- {name}: {rows} rows" for name, rows in sorted(data["published_tables"].items())]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return {"rows": len(data["published_tables"]), "report": str(stem.with_suffix(".md"))}


def train(settings: Settings, run_id: str, day: date) -> dict:
    """The weekly retrain: fit a challenger out of time on the marts as they stand, register
    it, and promote it only if it beats the champion on the same test cut-off."""
    from mining.train import train as train_model

    result = train_model(settings)
    metrics = result.get("metrics", {}).get("model", {})
    return {
        "rows": int(result.get("training_window", {}).get("rows", 0) or 0),
        "version": result.get("version"),
        "promoted": bool(result.get("promoted")),
        "auc": metrics.get("auc"),
        "champion_before": result.get("champion_before"),
        "champion_auc_on_test": result.get("champion_auc_on_test"),
    }


STEP_FUNCTIONS.update({"publish": publish, "report": report, "train": train})


# -------------------------------------------------------------------------- run plumbing


def begin(settings: Settings, day: date | str, run_id: str | None = None, trigger: str = "cli") -> str:
    """Open a run's row in ops.runs and return its id (an Airflow run id keeps its own)."""
    day = as_date(day)
    run_id = run_id or new_run_id(day, trigger)
    return ops.start_run(settings.warehouse, run_id, day, day, trigger)


def run_step(settings: Settings, run_id: str, day: date | str, name: str, source: str | None = None) -> dict:
    """Run one step for ``day`` and record it in ops.steps (``ingest`` needs ``source``)."""
    day = as_date(day)
    if name == "ingest":
        if source is None:
            raise ValueError("the ingest step runs per source: pass source=")
        with ops.step(settings.warehouse, run_id, f"ingest:{source}", day) as record:
            out = ingest_source(settings, run_id, day, source)
            record.update(rows=out["rows"], detail=out)
        return out
    if name not in STEP_FUNCTIONS:
        raise ValueError(
            f"step {name!r} is not available; the pipeline runs {available_steps()} (see warehouse/pipeline.py)"
        )
    with ops.step(settings.warehouse, run_id, name, day) as record:
        out = STEP_FUNCTIONS[name](settings, run_id, day)
        record.update(rows=out.get("rows"), detail=out)
    return out


def available_steps() -> list[str]:
    """The steps of a daily run whose implementation exists, in order."""
    return [s for s in STEPS if s == "ingest" or s in STEP_FUNCTIONS]


def run_retrain(settings: Settings, day: date | str, trigger: str = "cli", run_id: str | None = None) -> dict:
    """The weekly retrain as one audited run (what crm_retrain schedules)."""
    day = as_date(day)
    run_id = begin(settings, day, run_id or new_run_id(day, f"{trigger}-retrain"), trigger)
    try:
        out = run_step(settings, run_id, day, "train")
    finally:
        result = finish(settings, run_id, final_step="train")
    return {**result, "train": out}


def finish(settings: Settings, run_id: str, final_step: str = "publish") -> dict:
    """Close the run from what its steps recorded: 'blocked' if a gate stopped it, 'failed'
    on an error, 'success' only when ``final_step`` (publish, for a daily run) succeeded."""
    con = ops.connect(settings.warehouse)
    try:
        rows = con.execute("select step, status from ops.steps where run_id = ?", [run_id]).fetchall()
    finally:
        con.close()
    statuses = {step: status for step, status in rows}
    if "blocked" in statuses.values():
        status = "blocked"
    elif "failed" in statuses.values() or "running" in statuses.values():
        status = "failed"
    elif statuses.get(final_step) == "success":
        status = "success"
    else:
        status = "failed"
    errors = [f"{step}: {status}" for step, status in rows if status not in ("success",)]
    version = None
    if statuses.get("publish") == "success":
        con = ops.connect(settings.warehouse)
        try:
            detail = con.execute(
                "select detail from ops.steps where run_id = ? and step = 'publish'", [run_id]
            ).fetchone()[0]
        finally:
            con.close()
        version = json.loads(detail).get("version")
    ops.finish_run(settings.warehouse, run_id, status, "; ".join(errors) or None, version)
    return {"run_id": run_id, "status": status, "published_version": version}


def run_day(settings: Settings, day: date | str, trigger: str = "cli", run_id: str | None = None) -> dict:
    """Run every available step for one logical date, stopping at the first failure or gate."""
    day = as_date(day)
    run_id = begin(settings, day, run_id, trigger)
    try:
        for name in available_steps():
            if name == "ingest":
                for source in SOURCES:
                    run_step(settings, run_id, day, "ingest", source)
            else:
                run_step(settings, run_id, day, name)
    except ops.StepBlocked:
        pass
    except Exception:
        finish(settings, run_id)
        raise
    return {"logical_date": day.isoformat(), **finish(settings, run_id)}


def run_range(
    settings: Settings, date_from: date | str, date_to: date | str, trigger: str = "backfill"
) -> list[dict]:
    """A backfill: one run per day from ``date_from`` to ``date_to`` inclusive, in order,
    stopping at the first day that does not succeed (later days build on earlier ones)."""
    start, end = as_date(date_from), as_date(date_to)
    if end < start:
        raise click.BadParameter(f"--to {end} is before --from {start}")
    results = []
    day = start
    while day <= end:
        result = run_day(settings, day, trigger)
        results.append(result)
        if result["status"] != "success":
            break
        day += timedelta(days=1)
    return results


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@click.command("run")
@click.option("--date", "day", default=None, help="Logical date YYYY-MM-DD: one daily run.")
@click.option("--from", "date_from", default=None, help="Backfill from this date (inclusive).")
@click.option("--to", "date_to", default=None, help="Backfill to this date (inclusive).")
def command(day: str | None, date_from: str | None, date_to: str | None) -> None:
    """Run the daily pipeline for one date, or a backfill over a date range."""
    for value in (day, date_from, date_to):
        if value is not None and not _DATE.match(value):
            raise click.BadParameter(f"{value!r}: dates are YYYY-MM-DD")
    settings = load_settings()
    if day and not (date_from or date_to):
        results = [run_day(settings, day)]
    elif date_from and date_to and not day:
        results = run_range(settings, date_from, date_to)
    else:
        raise click.UsageError("give either --date D, or --from A --to B")
    for result in results:
        click.echo(
            f"{result['logical_date']}  {result['status']:8} run={result['run_id']}"
            f" published={result['published_version']}"
        )
    if any(r["status"] != "success" for r in results):
        raise SystemExit(1)
