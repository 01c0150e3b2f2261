"""Run the dbt project (staging → intermediate → marts → cubes) on the build warehouse.

``build`` is the one function the DAG, ``crmwh build`` and the tests call. It runs ``dbt build``
in-process (``dbtRunner``), so a failure surfaces as a Python exception naming the failing
nodes rather than as an exit code to parse. dbt writes its artifacts under ``settings.home``,
never into the repository, and reads the warehouse path from ``CRMWH_WAREHOUSE``, which is
set here to an absolute path because dbt resolves relative paths from its own directory.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from warehouse.config import Settings, load_settings
from warehouse.contracts import LINEAGE_COLUMNS, SOURCES

SOURCES_YML = "models/staging/_raw__sources.yml"
# A daily run builds in two steps around scoring: first BEFORE_SCORING (a selector of
# dbt_project/selectors.yml: staging, facts, dimensions, incremental where they can be), then,
# once the day's scores are in, AFTER_SCORING (a selector too): dim_customer, which carries
# the scores, and the models below it (the cubes sliced by tier and stage).
BEFORE_SCORING = "before_scoring"
AFTER_SCORING = "after_scoring"


class BuildError(RuntimeError):
    """dbt failed; the message lists every failing node and what it said."""


def _dbt_dirs(settings: Settings) -> dict[str, Path]:
    base = settings.home / "dbt"
    return {"target": base / "target", "logs": base / "logs"}


@contextmanager
def _warehouse_env(settings: Settings):
    """Point profiles.yml at the build warehouse and its memory limit for one dbt invocation."""
    values = {
        "CRMWH_WAREHOUSE": str(Path(settings.warehouse).resolve()),
        "CRMWH_BUILD_MEMORY_LIMIT": settings.build_memory_limit,
    }
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def storage_settings(settings: Settings) -> dict[str, str]:
    """The build profile's fixed DuckDB settings (those without Jinja), such as its compression:
    what must be SET to write tables as dbt writes them (the bench's floor)."""
    import yaml

    profile = yaml.safe_load((Path(settings.dbt_project) / "profiles.yml").read_text())
    values = profile["crmwh"]["outputs"]["build"].get("settings", {})
    return {name: str(value) for name, value in values.items() if "{{" not in str(value)}


def run_dbt(settings: Settings, args: list[str]) -> Any:
    """Invoke one dbt command in-process with the project, profile and artifact paths set."""
    from dbt.cli.main import dbtRunner

    dirs = _dbt_dirs(settings)
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    Path(settings.warehouse).parent.mkdir(parents=True, exist_ok=True)
    project = str(Path(settings.dbt_project).resolve())
    full_args = [
        *args,
        "--no-use-colors",
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target-path",
        str(dirs["target"]),
        "--log-path",
        str(dirs["logs"]),
    ]
    with _warehouse_env(settings):
        try:
            return dbtRunner().invoke(full_args)
        finally:
            _release_warehouse()


def _release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a run.

    dbt-duckdb caches one DuckDB environment per process; left open, it holds the build
    warehouse's write lock, so the ingest, the mining code or a read-only reader started
    later in the same process (a DAG task, a test) could not open the file.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a pinned dependency
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        if env is not None:
            env.close()
            DuckDBConnectionManager._ENV = None


def _failures(result: Any) -> list[str]:
    failures = []
    for node_result in getattr(result.result, "results", None) or []:
        status = str(node_result.status).lower()
        if status in ("error", "fail", "runtimeerror"):
            message = (node_result.message or "").strip().splitlines()
            failures.append(f"{node_result.node.unique_id} [{status}]: {' '.join(message)[:400]}")
    return failures


def build(
    settings: Settings,
    full_refresh: bool = False,
    select: str | None = None,
    vars: dict[str, Any] | None = None,
    exclude: str | None = None,
    selector: str | None = None,
) -> dict[str, Any]:
    """Run ``dbt build`` (seeds, snapshots, models, tests, unit tests) on the build warehouse.

    ``vars`` reach the models, e.g. ``{"run_date": "2024-03-01", "lookback_days": 7}``: the
    incremental facts rebuild from run_date - lookback_days. Returns node counts by type and
    status; raises BuildError naming each failing node (fix the data or model it names, then
    rerun: every model is idempotent). ``select``/``exclude`` take dbt selection syntax, e.g.
    exclude="resource_type:test resource_type:unit_test" to only materialize; ``selector``
    names a selection of dbt_project/selectors.yml.
    """
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        # Only tests whose every parent is selected: a cube's reconciliation test must not run
        # when only the marts were built.
        args += ["--select", select, "--indirect-selection", "cautious"]
    if exclude:
        args += ["--exclude", exclude]
    if selector:
        args += ["--selector", selector]
    clean_vars = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in (vars or {}).items()}
    if clean_vars:
        args += ["--vars", json.dumps(clean_vars)]
    started = time.perf_counter()
    result = run_dbt(settings, args)
    seconds = round(time.perf_counter() - started, 2)
    failures = _failures(result)
    if not result.success or failures:
        detail = "\n  ".join(failures) or str(result.exception)
        raise BuildError(
            f"dbt build failed on {settings.warehouse} (logs: {_dbt_dirs(settings)['logs']}):\n  {detail}"
        )
    counts: dict[str, int] = {}
    for node_result in result.result.results:
        kind = node_result.node.resource_type
        key = str(getattr(kind, "value", kind))
        counts[key] = counts.get(key, 0) + 1
    return {
        "status": "success",
        "seconds": seconds,
        "full_refresh": full_refresh,
        "select": select,
        "vars": clean_vars,
        "nodes": counts,
        "warehouse": str(settings.warehouse),
    }


def docs(settings: Settings) -> Path:
    """Generate the dbt docs site (catalog from the build warehouse); returns its index.html."""
    result = run_dbt(settings, ["docs", "generate"])
    if not result.success:
        raise BuildError(f"dbt docs generate failed on {settings.warehouse}: {result.exception}")
    return _dbt_dirs(settings)["target"] / "index.html"


def sources_yaml() -> str:
    """The dbt source declaration of the raw layer, derived from warehouse.contracts.

    dbt_project/models/staging/_raw__sources.yml must equal this text (a test checks it), so
    the contracts stay the single place where a source's columns are declared.
    """
    lines = [
        "# Generated from warehouse/contracts.py by warehouse.build.sources_yaml(); do not edit.",
        "version: 2",
        "",
        "sources:",
        "  - name: raw",
        "    schema: raw",
        "    description: The raw layer written by warehouse.ingest, one table per source contract.",
        "    tables:",
    ]

    def table(name: str, description: str, columns: tuple[tuple[str, str], ...]) -> None:
        lines.append(f"      - name: {name}")
        lines.append(f"        description: {json.dumps(description)}")
        lines.append("        columns:")
        for column, dtype in columns:
            lines.append(f"          - name: {column}")
            lines.append(f"            data_type: {json.dumps(dtype.lower())}")

    lineage = LINEAGE_COLUMNS
    for source in SOURCES.values():
        table(source.name, source.grain, source.columns + lineage)
        for nested in source.nested:
            parent = tuple((k, source.column_type(k)) for k in source.key)
            table(
                nested.table,
                f"one row per element of {source.name}.{nested.field}, for every version",
                parent + (("line_no", "INTEGER"),) + nested.columns + lineage,
            )
    table(
        "_files",
        "one row per landed file version: its delivery date (dt) orders 'latest delivery wins'",
        (
            ("file_id", "BIGINT"),
            ("source", "VARCHAR"),
            ("path", "VARCHAR"),
            ("dt", "DATE"),
            ("sha256", "VARCHAR"),
            ("bytes", "BIGINT"),
            ("rows_read", "BIGINT"),
            ("rows_loaded", "BIGINT"),
            ("rows_quarantined", "BIGINT"),
            ("status", "VARCHAR"),
            ("run_id", "VARCHAR"),
            ("loaded_at", "TIMESTAMP"),
        ),
    )
    table(
        "_replaced_days",
        "the days of the rows a correction deleted, per replaced file, and of the calls whose phone a"
        " customers file gave to a customer or took away; replaced_at is the change's _loaded_at"
        " (warehouse/ingest.py)",
        (("file_id", "BIGINT"), ("source", "VARCHAR"), ("day", "DATE"), ("replaced_at", "TIMESTAMP")),
    )
    return "\n".join(lines) + "\n"


@click.command("build")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental facts from all raw data.")
@click.option("--select", "select", default=None, help="dbt node selection, e.g. 'marts' or '+fct_sales'.")
@click.option("--exclude", "exclude", default=None, help="dbt nodes to leave out, e.g. 'resource_type:test'.")
@click.option(
    "--run-date",
    default=None,
    help="Business date YYYY-MM-DD of the run; incremental facts rebuild from it minus the lookback.",
)
@click.option(
    "--lookback-days",
    type=int,
    default=None,
    help="Days before --run-date to rebuild (default 7, dbt var lookback_days).",
)
@click.option("--docs", "with_docs", is_flag=True, help="Also generate the dbt docs site afterwards.")
def command(
    full_refresh: bool,
    select: str | None,
    exclude: str | None,
    run_date: str | None,
    lookback_days: int | None,
    with_docs: bool,
) -> None:
    """Run dbt build (staging, marts, cubes, tests) on the build warehouse."""
    settings = load_settings()
    vars: dict[str, Any] = {}
    if run_date:
        vars["run_date"] = run_date
    if lookback_days is not None:
        vars["lookback_days"] = lookback_days
    try:
        summary = build(settings, full_refresh=full_refresh, select=select, vars=vars, exclude=exclude)
    except BuildError as error:
        raise click.ClickException(str(error)) from error
    nodes = ", ".join(f"{n} {k}s" for k, n in sorted(summary["nodes"].items()))
    click.echo(f"dbt build ok in {summary['seconds']} s: {nodes}")
    if with_docs:
        click.echo(f"docs: {docs(settings)}")
