"""crm_daily: the daily warehouse run for one logical date, wired from warehouse.pipeline.

begin → ingest (one mapped task per source) → validate_raw → build → score → build_scored
→ validate_marts → validate_scores → publish → report, then finish (always runs) closes the run
in ops.runs. The steps are the same functions ``crmwh run --date D`` calls. A failed critical
expectation fails its task without retry; publish never runs and BI keeps the last version.

Every task that touches the build warehouse takes the one slot of the ``crmwh_warehouse``
pool: DuckDB allows a single writer per file. ``max_active_runs=1`` keeps days in order, so
``airflow backfill create --dag-id crm_daily --from-date A --to-date B`` runs A, A+1, ... B.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from airflow.sdk import CronDataIntervalTimetable, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from warehouse import ops, pipeline
from warehouse.config import load_settings
from warehouse.contracts import LOCAL_TZ, SOURCES

POOL = "crmwh_warehouse"


def logical_day() -> date:
    """The business day of this run: the logical date in Seoul time (the sources' clock)."""
    return get_current_context()["logical_date"].astimezone(ZoneInfo(LOCAL_TZ)).date()


@dag(
    dag_id="crm_daily",
    # Interval [D 02:00, D+1 02:00) Seoul: the run for D starts at 02:00 on D+1, once D is delivered.
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone=LOCAL_TZ),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"pool": POOL, "retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["crmwh"],
    doc_md=__doc__,
)
def crm_daily():
    @task
    def begin() -> str:
        context = get_current_context()
        run_id = f"airflow__{logical_day().isoformat()}__{context['run_id']}"
        return pipeline.begin(load_settings(), logical_day(), run_id, trigger="airflow")

    # Parameters are called crm_run, not run_id: Airflow injects its own run_id into tasks.
    @task(map_index_template="{{ source_name }}")
    def ingest(crm_run: str, source: str) -> dict:
        get_current_context()["source_name"] = source  # names the mapped task in the UI
        return pipeline.run_step(load_settings(), crm_run, logical_day(), "ingest", source)

    @task
    def step(crm_run: str, name: str) -> dict:
        try:
            return pipeline.run_step(load_settings(), crm_run, logical_day(), name)
        except ops.StepBlocked as blocked:
            # A gate, not a glitch: retrying cannot make the data pass.
            raise AirflowFailException(str(blocked)) from blocked

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def finish(crm_run: str) -> dict:
        result = pipeline.finish(load_settings(), crm_run)
        if result["status"] != "success":
            raise AirflowFailException(f"run {crm_run} ended {result['status']}; see ops.steps")
        return result

    crm_run = begin()
    previous = ingest.partial(crm_run=crm_run).expand(source=list(SOURCES))
    for name in pipeline.available_steps():
        if name == "ingest":
            continue
        current = step.override(task_id=name)(crm_run, name)
        previous >> current
        previous = current
    previous >> finish(crm_run)


crm_daily()
