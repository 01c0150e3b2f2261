"""crm_retrain: the weekly churn-model retrain and promotion, wired from warehouse.pipeline.

begin → train (fit out of time, register, promote only if it beats the champion on the same
test cut-off) → finish. It reads the marts of the build warehouse, so it shares the
``crmwh_warehouse`` pool with crm_daily: DuckDB's single writer, and a model is never fitted
on marts half-way through a rebuild. The next crm_daily run scores with whichever version is
champion then. The same step runs from the command line as ``crmwh train``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from airflow.sdk import CronTriggerTimetable, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from warehouse import pipeline
from warehouse.config import load_settings
from warehouse.contracts import LOCAL_TZ

POOL = "crmwh_warehouse"


def logical_day():
    return get_current_context()["logical_date"].astimezone(ZoneInfo(LOCAL_TZ)).date()


@dag(
    dag_id="crm_retrain",
    # Sundays 05:00 Seoul, after Saturday's daily run has published.
    schedule=CronTriggerTimetable("0 5 * * 0", timezone=LOCAL_TZ),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"pool": POOL, "retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["crmwh", "mining"],
    doc_md=__doc__,
)
def crm_retrain():
    @task
    def begin() -> str:
        run_id = f"airflow-retrain__{logical_day().isoformat()}__{get_current_context()['run_id']}"
        return pipeline.begin(load_settings(), logical_day(), run_id, trigger="airflow")

    @task
    def train(crm_run: str) -> dict:
        return pipeline.run_step(load_settings(), crm_run, logical_day(), "train")

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def finish(crm_run: str) -> dict:
        result = pipeline.finish(load_settings(), crm_run, final_step="train")
        if result["status"] != "success":
            raise AirflowFailException(f"retrain {crm_run} ended {result['status']}; see ops.steps")
        return result

    crm_run = begin()
    train(crm_run) >> finish(crm_run)


crm_retrain()
