"""End to end on generated data: generator → ingest → dbt marts → train → score → dim_customer.

The facts: out of time, the churn model beats both baselines (recency alone, BG/NBD P(alive))
on the generator's data, and its AUC against the generator's true churn dates is reported; after
scoring, the rebuilt dim_customer carries the pyramid tier and relationship stage of the scores.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from warehouse.config import load_settings

CUSTOMERS = 3000
DAYS = 540
START = date(2023, 1, 1)
# The marts the features read, with everything they are built from.
MARTS = "+dim_customer +fct_sales +fct_contacts +fct_feedback +fct_campaign_touches +fct_customer_month"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from warehouse.build import build
    from warehouse.generate import generate
    from warehouse.ingest import ingest

    home = tmp_path_factory.mktemp("mining_e2e")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMWH_HOME", str(home))
        for name in ("WAREHOUSE", "MODELS", "VALIDATION", "LANDING", "PUBLISHED"):
            mp.delenv(f"CRMWH_{name}", raising=False)
        settings = load_settings()
        out = home / "generated"
        generate(out, CUSTOMERS, START, DAYS, seed=5, clean=True)
        ingest(settings.warehouse, out / "landing")
        build(settings, select=MARTS)
    return settings, out / "truth"


@pytest.mark.slow
def test_churn_model_beats_baselines_out_of_time_on_generated_data(pipeline):
    from mining.train import train

    settings, truth = pipeline
    report = train(settings, seed=3, truth_dir=truth)
    m = report["metrics"]
    print(
        "\nout-of-time AUC: model {:.4f}  logistic {:.4f}  recency {:.4f}  p_alive {:.4f}  vs truth {:.4f}".format(
            m["model"]["auc"],
            m["logistic"]["auc"],
            m["baseline_recency"]["auc"],
            m["baseline_p_alive"]["auc"],
            m["against_truth"]["model"]["auc"],
        )
    )
    assert m["model"]["auc"] > m["baseline_recency"]["auc"]
    assert m["model"]["auc"] > m["baseline_p_alive"]["auc"]
    assert m["model"]["lift_top_decile"] > 1.5
    assert m["against_truth"]["model"]["auc"] > 0.6
    assert report["promoted"]


@pytest.mark.slow
def test_scores_reach_dim_customer(pipeline):
    from mining.score import score
    from warehouse.build import build

    settings, _ = pipeline
    report = score(settings, rebuild=False, validate=False)
    build(settings, select="dim_customer")
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        unscored, scored, mismatched = con.execute(
            """select count(*) filter (where d.pyramid_tier = 'unscored'), count(s.customer_id),
                      count(*) filter (where s.pyramid_tier <> d.pyramid_tier
                                          or s.relationship_stage <> d.relationship_stage)
            from marts.dim_customer as d
            left join mining.customer_scores as s using (customer_id)
            where d.is_current and d.customer_key <> -1"""
        ).fetchone()
    finally:
        con.close()
    assert scored == report["customers"] and mismatched == 0
    assert unscored == 0
