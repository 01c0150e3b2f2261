"""The MetricFlow semantic layer (dbt_project/models/semantic): the metrics parse into dbt's
semantic manifest, and ``mf query`` answers from the build warehouse with the same figures as
the marts and the cubes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _built import Built, fetch, get_built

from warehouse.analyst import metricflow_project

METRICS = {
    "net_sales", "margin", "profit", "active_customers", "churn_rate", "retention", "complaint_rate",
    "campaign_conversion", "uplift", "roi",
}  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, landing_clean: Path) -> Built:
    return get_built(tmp_path_factory, landing_clean)


def test_semantic_manifest_declares_the_metrics_and_saved_queries(built: Built) -> None:
    manifest = json.loads((built.settings.home / "dbt" / "target" / "semantic_manifest.json").read_text())
    assert METRICS <= {m["name"] for m in manifest["metrics"]}
    assert {"monthly_net_sales_by_channel", "monthly_customer_health", "campaign_effectiveness"} <= {
        q["name"] for q in manifest["saved_queries"]
    }
    spines = manifest["project_configuration"]["time_spines"]
    assert [s["node_relation"]["alias"] for s in spines] == ["metricflow_time_spine"]


def test_mf_query_matches_the_marts_and_the_cubes(built: Built, tmp_path: Path) -> None:
    folder = metricflow_project(built.settings)
    out = tmp_path / "mf.csv"
    mf = Path(sys.executable).with_name("mf")
    env = {
        **os.environ,
        "CRMWH_WAREHOUSE": str(built.warehouse),
        "DBT_PROFILES_DIR": str(folder),
        "DBT_PROJECT_DIR": str(folder),
    }
    args = [
        "query",
        "--metrics",
        "net_sales,active_customers",
        "--group-by",
        "metric_time__month",
        "--csv",
        str(out),
    ]
    done = subprocess.run([str(mf), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and out.exists(), done.stdout + done.stderr
    with out.open() as fh:
        got = {row["metric_time__month"][:7]: row for row in csv.DictReader(fh)}

    sales = dict(fetch(built.warehouse, "select month, sum(net_sales_krw) from marts.fct_sales group by 1"))
    active = dict(
        fetch(
            built.warehouse,
            "select month, active from cubes.cube_customer_base"
            " where grouping_level = 'pyramid_tier,relationship_stage,signup_channel'",
        )
    )
    assert sorted(got) == sorted(sales)
    assert {m: int(float(r["net_sales"])) for m, r in got.items()} == {m: int(v) for m, v in sales.items()}
    assert {m: int(float(r["active_customers"])) for m, r in got.items() if r["active_customers"]} == active
