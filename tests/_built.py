"""One built and published warehouse shared by the cubes, analyst and semantic-layer tests.

tests/test_cubes.py, tests/test_analyst.py and tests/test_semantic.py each declare a thin
``built`` fixture calling :func:`get_built`, which builds once per session (a fixture imported
into several modules would be built once per module): conftest's small clean generated set
(``landing_clean``: 300 customers, 60 days) is ingested, built with dbt (marts, cubes,
semantic models, every data test including the cube reconciliations) and published.

The churn window is shortened to CHURN_WINDOW_DAYS through the dbt var, so that within the
60 days of data January's window closes and churned/retained are exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from warehouse.config import Settings, load_settings

CHURN_WINDOW_DAYS = 20
_CACHE: dict[str, Built] = {}


@dataclass(frozen=True)
class Built:
    settings: Settings
    warehouse: Path  # the build warehouse (dbt's target; MetricFlow reads it)
    published: Path  # the published read-only file analysts open


def get_built(tmp_path_factory: pytest.TempPathFactory, landing_clean: Path) -> Built:
    """Ingest, build and publish ``landing_clean`` once per test session."""
    if "built" in _CACHE:
        return _CACHE["built"]
    from warehouse.build import build
    from warehouse.ingest import ingest
    from warehouse.publish import publish, published_path

    home = tmp_path_factory.mktemp("cubes_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMWH_HOME", str(home))
        for name in ("WAREHOUSE", "PUBLISHED", "LANDING", "MODELS", "VALIDATION"):
            mp.delenv(f"CRMWH_{name}", raising=False)
        settings = load_settings()
    ingest(settings.warehouse, Path(landing_clean) / "landing")
    build(settings, vars={"churn_window_days": CHURN_WINDOW_DAYS})
    publish(settings, run_id="test-cubes")
    _CACHE["built"] = Built(
        settings=settings, warehouse=settings.warehouse, published=published_path(settings)
    )
    return _CACHE["built"]


def fetch(database: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of one query against a warehouse file, opened read-only and closed again."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
