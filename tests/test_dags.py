"""The Airflow DAGs: they import cleanly, wire the pipeline's steps, and run with `airflow dags test`.

Airflow reads its configuration when first imported, so everything here runs in a subprocess
with AIRFLOW_HOME in a temporary folder (SQLite metadata, no example DAGs).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = ROOT / ".venv" / "bin" / "airflow"

INSPECT = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=%r)
out = {"errors": {k: v[-300:] for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in sorted(bag.dags.items()):
    out["dags"][dag_id] = {
        "max_active_runs": dag.max_active_runs,
        "timetable": type(dag.timetable).__name__,
        "tasks": {
            t.task_id: {
                "pool": t.pool,
                "trigger_rule": getattr(t.trigger_rule, "value", str(t.trigger_rule)),
                "downstream": sorted(t.downstream_task_ids),
                "retries": t.retries,
            }
            for t in dag.tasks
        },
    }
print("JSON" + json.dumps(out))
"""


def airflow_env(airflow_home: Path, crmwh_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        CRMWH_HOME=str(crmwh_home),
        PATH=f"{AIRFLOW.parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow")
    done = subprocess.run(
        [sys.executable, "-c", INSPECT % str(ROOT / "dags")],
        env=airflow_env(home, home / "crmwh"),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("JSON")), None)
    assert line, done.stderr[-3000:]
    return json.loads(line[4:])


def test_dags_import_without_errors(dagbag):
    assert dagbag["errors"] == {}
    assert set(dagbag["dags"]) == {"crm_daily", "crm_retrain"}


def test_crm_daily_wires_the_pipeline_steps_in_order(dagbag):
    from warehouse.pipeline import available_steps

    tasks = dagbag["dags"]["crm_daily"]["tasks"]
    chain = ["begin", *available_steps(), "finish"]
    assert set(tasks) == set(chain)
    for upstream, downstream in zip(chain, chain[1:], strict=False):
        expected = [downstream] if upstream != "begin" else sorted(chain[1:])
        assert tasks[upstream]["downstream"] == expected, upstream
    # DuckDB's single writer: every task that opens the build file shares one pool slot.
    assert {t["pool"] for t in tasks.values()} == {"crmwh_warehouse"}
    assert tasks["finish"]["trigger_rule"] == "all_done" and tasks["finish"]["retries"] == 0
    assert dagbag["dags"]["crm_daily"]["max_active_runs"] == 1
    assert dagbag["dags"]["crm_daily"]["timetable"] == "CronDataIntervalTimetable"


# ------------------------------------------------------------------ end to end on demo data
# landing_clean (conftest): 300 customers, 60 days from 2024-01-01. A is late in that window so
# the first run loads most of the history; A+1..A+2 are incremental days; A+3 is planted bad.
A = "2024-02-25"
DAYS = ["2024-02-25", "2024-02-26", "2024-02-27"]
BAD_DAY = "2024-02-28"
MARTS_MD_MODELS = {
    "marts": {
        "dim_customer",
        "dim_date",
        "dim_product",
        "dim_store",
        "dim_staff",
        "dim_campaign",
        "dim_channel",
        "fct_sales",
        "fct_contacts",
        "fct_campaign_touches",
        "fct_customer_month",
        "fct_feedback",
    },
    "cubes": {"cube_sales", "cube_contacts", "cube_marketing", "cube_financial", "cube_customer_base"},
    "mining": {
        "customer_scores",
        "customer_score_history",
        "tier_migration",
        "prediction_ledger",
        "model_quality",
    },
}
# Columns stamped with the wall clock or a run id: they differ between two runs by design.
VOLATILE = {
    "scored_at",
    "recorded_at",
    "_loaded_at",
    "_run_id",
    "loaded_at",
    "validated_at",
    "closed_outcome_at",
}


def crmwh_env(home: Path, landing: Path, models: Path, airflow_home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMWH_")}
    env.update(CRMWH_HOME=str(home), CRMWH_LANDING=str(landing), CRMWH_MODELS=str(models))
    if airflow_home is not None:
        env.update(
            {k: v for k, v in airflow_env(airflow_home, home).items() if k.startswith(("AIRFLOW", "PATH"))}
        )
    return env


def fingerprint(published: Path) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content hash of every BI table (ops excluded)."""
    import duckdb

    con = duckdb.connect(str(published), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name, list(column_name order by ordinal_position)"
            " from information_schema.columns where table_schema in ('marts', 'cubes', 'mining')"
            " group by all order by all"
        ).fetchall()
        out = {}
        for schema, table, columns in tables:
            kept = ", ".join(f'"{c}"' for c in columns if c not in VOLATILE)
            out[f"{schema}.{table}"] = con.execute(
                f"select count(*), coalesce(md5(string_agg(j, '|' order by j)), '')"
                f' from (select to_json(s)::varchar as j from (select {kept} from {schema}."{table}") as s)'
            ).fetchone()
        return out
    finally:
        con.close()


def run(cmd: list[str], env: dict[str, str], log: Path) -> int:
    with open(log, "w") as out:
        return subprocess.run(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, timeout=1800
        ).returncode


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, landing_clean):
    """Two warehouses over the same landing, built concurrently (2 cores):

    - X: ``crmwh run --from A --to A+2`` (a backfill, CLI);
    - Y: ``airflow dags test crm_daily A``, then ``crmwh run --date`` A+1 and A+2, then A+2 again;
      then A+3 from a landing where that day's customers file is out of range (blocked).
    Both score with one champion trained beforehand on mart-shaped synthetic data (training
    needs 300+ days; the daily run only scores).
    """
    import time

    import duckdb

    from mining.synth import synthesize_marts
    from mining.train import train
    from warehouse.config import load_settings
    from warehouse.publish import file_sha256

    base = tmp_path_factory.mktemp("e2e")
    landing = Path(landing_clean) / "landing"
    timings: dict[str, float] = {}
    t = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("CRMWH_")]:
            mp.delenv(key)
        mp.setenv("CRMWH_HOME", str(base / "trainer"))
        trainer = load_settings()
        trainer.warehouse.parent.mkdir(parents=True)
        con = duckdb.connect(str(trainer.warehouse))
        synthesize_marts(con, 500, date(2023, 1, 1), 400, seed=3)
        con.close()
        assert train(trainer, n_cutoffs=2)["promoted"] is True
    models = trainer.models
    timings["train champion (synthetic marts)"] = time.perf_counter() - t

    crmwh = str(ROOT / ".venv" / "bin" / "crmwh")
    x_home, y_home, airflow_home = base / "x", base / "y", base / "airflow"
    backfill = subprocess.Popen(
        [crmwh, "run", "--from", DAYS[0], "--to", DAYS[-1]],
        env=crmwh_env(x_home, landing, models),
        stdout=open(base / "x.log", "w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    y_env = crmwh_env(y_home, landing, models, airflow_home)
    t = time.perf_counter()
    assert run([str(AIRFLOW), "db", "migrate"], y_env, base / "migrate.log") == 0
    timings["airflow db migrate"] = time.perf_counter() - t
    pool = [str(AIRFLOW), "pools", "set", "crmwh_warehouse", "1", "DuckDB single writer"]
    assert run(pool, y_env, base / "pool.log") == 0
    t = time.perf_counter()
    dags_test = run([str(AIRFLOW), "dags", "test", "crm_daily", A], y_env, base / "dags_test.log")
    timings["airflow dags test crm_daily"] = time.perf_counter() - t
    published = y_home / "published" / "crmwh.duckdb"
    after_dags_test = {"rc": dags_test, "exists": published.exists()}
    if published.exists():
        after_dags_test["fingerprint"] = fingerprint(published)
    for day in DAYS[1:]:
        assert run([crmwh, "run", "--date", day], y_env, base / f"y_{day}.log") == 0, base / f"y_{day}.log"
    y_daily = fingerprint(published)
    t = time.perf_counter()
    assert run([crmwh, "run", "--date", DAYS[-1]], y_env, base / "y_rerun.log") == 0
    timings["one incremental daily run (crmwh run --date)"] = time.perf_counter() - t
    y_rerun = fingerprint(published)

    bad_landing = base / "landing_bad"
    shutil.copytree(landing, bad_landing)
    # The customer system re-sends 3 earlier customer versions under their original key
    # (customer_id, updated_at) with another household_size: two different rows under one key,
    # which the raw suite's critical uniqueness check refuses.
    bad_file = next((bad_landing / "customers" / f"dt={BAD_DAY}").glob("*.csv"))
    resent = {}
    for path in sorted((bad_landing / "customers").glob("dt=2024-01-*/*.csv")):
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                resent.setdefault(row["customer_id"], row)
    resent_rows = list(resent.values())[:3]
    assert len(resent_rows) == 3, "the landing has too few customers to plant the failure"
    with open(bad_file, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    with open(bad_file, "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        writer.writerows({**r, "household_size": str(int(r["household_size"]) % 9 + 1)} for r in resent_rows)
    before_bad = (file_sha256(published), os.readlink(published))
    bad_rc = run(
        [crmwh, "run", "--date", BAD_DAY], crmwh_env(y_home, bad_landing, models), base / "y_bad.log"
    )
    after_bad = (file_sha256(published), os.readlink(published))

    assert backfill.wait(timeout=1800) == 0, (base / "x.log").read_text()[-3000:]
    return {
        "base": base,
        "trainer": trainer,
        "airflow_home": airflow_home,
        "y_home": y_home,
        "x_published": x_home / "published" / "crmwh.duckdb",
        "published": published,
        "after_dags_test": after_dags_test,
        "y_daily": y_daily,
        "y_rerun": y_rerun,
        "bad": {"rc": bad_rc, "before": before_bad, "after": after_bad, "file": bad_file},
        "timings": timings,
    }


@pytest.mark.slow
def test_dags_test_runs_end_to_end_and_publishes_every_marts_md_model(e2e):
    print({k: round(v, 1) for k, v in e2e["timings"].items()})
    after = e2e["after_dags_test"]
    assert after["rc"] == 0, (e2e["base"] / "dags_test.log").read_text()[-5000:]
    published = {name.split(".")[0]: set() for name in after["fingerprint"]}
    for name, (rows, _) in after["fingerprint"].items():
        schema, table = name.split(".")
        published[schema].add(table)
        # tier_migration needs two scorings, model_quality a closed 90-day window: empty here.
        if table in MARTS_MD_MODELS.get(schema, set()) and table not in ("tier_migration", "model_quality"):
            assert rows > 0, f"{name} is empty"
    for schema, models in MARTS_MD_MODELS.items():
        assert models <= published.get(schema, set()), (
            f"{schema}: missing {models - published.get(schema, set())}"
        )


@pytest.mark.slow
def test_the_airflow_run_is_audited_like_a_cli_run(e2e):
    import duckdb

    con = duckdb.connect(str(e2e["published"]), read_only=True)
    try:
        runs = con.execute(
            "select trigger, date_from::varchar, status from ops.runs order by started_at"
        ).fetchall()
        steps = con.execute(
            "select distinct step from ops.steps where run_id = (select min_by(run_id, started_at) from ops.runs)"
        ).fetchall()
        checks = con.execute("select count(*), count(*) filter (critical) from ops.validations").fetchone()
    finally:
        con.close()
    assert runs[0] == ("airflow", A, "success")
    # Read from a later run's published copy, so the Airflow run's own publish and report show.
    from warehouse.contracts import SOURCES
    from warehouse.pipeline import available_steps

    expected = {f"ingest:{s}" for s in SOURCES} | (set(available_steps()) - {"ingest"})
    assert {s for (s,) in steps} == expected
    assert checks[0] > 0 and checks[1] > 0


@pytest.mark.slow
def test_running_the_same_date_twice_changes_no_count(e2e):
    assert e2e["y_rerun"] == e2e["y_daily"]


@pytest.mark.slow
def test_a_three_day_backfill_equals_three_daily_runs(e2e):
    assert fingerprint(e2e["x_published"]) == e2e["y_daily"]


@pytest.mark.slow
def test_a_planted_critical_failure_blocks_publish_and_keeps_the_published_bytes(e2e):
    import duckdb

    bad = e2e["bad"]
    assert bad["rc"] == 1
    assert bad["after"] == bad["before"]
    con = duckdb.connect(str(e2e["y_home"] / "warehouse" / "build.duckdb"), read_only=True)
    try:
        run_id, status = con.execute(
            "select run_id, status from ops.runs where date_from = ? order by started_at desc limit 1",
            [BAD_DAY],
        ).fetchone()
        steps = dict(con.execute("select step, status from ops.steps where run_id = ?", [run_id]).fetchall())
        failed = con.execute(
            'select suite, "column" from ops.validations where run_id = ? and critical and not success',
            [run_id],
        ).fetchall()
    finally:
        con.close()
    assert status == "blocked"
    assert steps["validate_raw"] == "blocked" and "build" not in steps and "publish" not in steps
    assert failed == [("raw.customers", "customer_id,updated_at")]


@pytest.mark.slow
def test_crm_retrain_registers_a_challenger_and_audits_the_run(e2e):
    import duckdb

    from mining import registry

    trainer = e2e["trainer"]
    assert registry.versions(trainer.models) == ["churn-0001"]
    env = crmwh_env(trainer.home, trainer.landing, trainer.models, e2e["airflow_home"])
    log = e2e["base"] / "retrain.log"
    assert run([str(AIRFLOW), "dags", "test", "crm_retrain", "2024-03-03"], env, log) == 0, log.read_text()[
        -5000:
    ]
    assert registry.versions(trainer.models) == ["churn-0001", "churn-0002"]
    # Promotion follows the out-of-time comparison the challenger's metadata records.
    promoted = registry.metadata(trainer.models, "churn-0002")["promoted"]
    assert registry.champion(trainer.models) == ("churn-0002" if promoted else "churn-0001")
    con = duckdb.connect(str(trainer.warehouse), read_only=True)
    try:
        status = con.execute("select trigger, date_from::varchar, status from ops.runs").fetchall()
        steps = con.execute(
            "select step, status, detail::json->>'version', (detail::json->>'promoted')::boolean from ops.steps"
        ).fetchall()
    finally:
        con.close()
    assert status == [("airflow", "2024-03-03", "success")]
    assert steps == [("train", "success", "churn-0002", promoted)]
