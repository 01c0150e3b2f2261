"""Training, the registry's champion rule and scoring, on mart-shaped synthetic data.

The synthetic marts (mining/synth.py) carry a latent churn date per customer, so the facts
below are about behaviour: the model beats both baselines out of time, a weaker challenger is
registered but not promoted, scoring writes every mining table once per date.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from mining import registry
from mining.score import score
from mining.synth import synthesize_marts
from mining.train import should_promote, train
from warehouse.config import load_settings


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("mining_synth")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMWH_HOME", str(home))
        for name in ("WAREHOUSE", "MODELS", "VALIDATION", "LANDING", "PUBLISHED"):
            mp.delenv(f"CRMWH_{name}", raising=False)
        settings = load_settings()
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse))
    synthesize_marts(con, 3000, date(2024, 1, 1), 540, seed=11)
    con.close()
    first = train(settings, n_cutoffs=4, seed=1)
    return settings, first


def test_model_beats_both_baselines_out_of_time(trained):
    _, report = trained
    m = report["metrics"]
    assert m["model"]["auc"] > m["baseline_recency"]["auc"]
    assert m["model"]["auc"] > m["baseline_p_alive"]["auc"]
    assert m["model"]["pr_auc"] > m["baseline_recency"]["pr_auc"]
    assert m["against_truth"]["model"]["auc"] > m["against_truth"]["baseline_recency"]["auc"]
    # the test cut-off's label window is the last 90 days of data; training labels end before it
    assert report["test"]["cutoff"] == str(date(2024, 1, 1) + timedelta(days=540 - 90))
    assert report["training_window"]["labels_observed_through"] < report["test"]["cutoff"]
    assert report["calibration"]["cutoff"] == report["training_window"]["last_cutoff"]


def test_registry_keeps_the_champion_against_a_weaker_challenger(trained):
    settings, first = trained
    assert registry.champion(settings.models) == first["version"] == "churn-0001"
    weak = train(settings, n_cutoffs=4, seed=1, features=["tenure_days", "points_balance_last"])
    assert weak["version"] == "churn-0002" and not weak["promoted"]
    assert weak["champion_auc_on_test"] == pytest.approx(first["metrics"]["model"]["auc"])
    assert registry.champion(settings.models) == "churn-0001"
    meta = registry.metadata(settings.models, "churn-0002")
    assert meta["features"] == ["tenure_days", "points_balance_last"]
    assert meta["training_window"]["cutoffs"] == first["training_window"]["cutoffs"]


def test_promotion_rule():
    assert should_promote(0.80, None)
    assert should_promote(0.80, 0.80)
    assert not should_promote(0.79, 0.80)
    assert not should_promote(float("nan"), 0.80)


def test_scoring_writes_every_table_once_per_date(trained):
    settings, first = trained
    test_cutoff = date.fromisoformat(first["test"]["cutoff"])
    report = score(settings, as_of=test_cutoff, rebuild=False, validate=True)
    assert report["model_version"] == "churn-0001"
    assert report["validation"]["success"], report["validation"]
    again = score(settings, as_of=test_cutoff, rebuild=False, validate=False)
    assert again["history_appended"] == 0 and again["predictions_recorded"] == 0
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        n, active, with_prob, with_drivers = con.execute(
            """select count(*), count(*) filter (where churn_risk_band not in ('inactive', 'closed')),
                      count(churn_probability), count(*) filter (where top_churn_drivers <> '')
            from mining.customer_scores"""
        ).fetchone()
        assert n == report["customers"] and active == with_prob == report["active_scored"]
        assert with_drivers > 0.9 * active
        # the window of the test cut-off is fully in the data: every prediction has its outcome
        open_, closed = con.execute(
            """select count(*) filter (where outcome_churned is null), count(outcome_churned)
            from mining.prediction_ledger"""
        ).fetchone()
        assert open_ == 0 and closed == active
        realized = con.execute(
            """select auc from mining.model_quality
            where source = 'ledger' and slice_dimension = 'overall' and as_of_date = ?""",
            [test_cutoff],
        ).fetchone()[0]
        # realized outcomes are the backtest's labels, so the realized AUC is the backtest AUC
        assert realized == pytest.approx(first["metrics"]["model"]["auc"], abs=1e-9)
        tiers = dict(
            con.execute("select pyramid_tier, count(*) from mining.customer_scores group by 1").fetchall()
        )
        assert tiers["platinum"] <= round(0.05 * n) and tiers["gold"] <= round(0.20 * n) - round(0.05 * n)
        profiles = con.execute("select label, customers from mining.segment_profiles").fetchall()
        assert len(profiles) == 5 and all(
            label.startswith(f"k{i}: ") for i, (label, _) in enumerate(profiles)
        )
        clusters = dict(
            con.execute(
                "select segment_cluster, count(*) from mining.customer_scores"
                " where segment_cluster <> 'inactive' group by 1"
            ).fetchall()
        )
        # each profile counts this scoring's customers in its cluster (not the training sample's)
        assert dict(profiles) == {label: clusters.get(label, 0) for label, _ in profiles}
        assert sum(clusters.values()) == active
        validation = con.execute(
            "select count(*), count(*) filter (where not success) from mining._validation"
        ).fetchone()
        assert validation[0] > 10 and validation[1] == 0
    finally:
        con.close()


def test_reason_codes_name_the_features_that_push_risk_up():
    import numpy as np
    import pandas as pd

    from mining.churn import driver_mask, make_logistic_pipeline, reason_codes

    rng = np.random.default_rng(0)
    n = 4000
    silence = rng.exponential(30, n)  # raises churn
    orders = rng.poisson(5, n).astype(float)  # lowers churn
    noise = rng.normal(size=n)
    twin = orders + rng.normal(scale=0.01, size=n)  # a near-copy of orders
    logit = 0.05 * (silence - 30) - 0.6 * (orders - 5)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    features = ["recency_days", "orders_90d", "contacts_90d", "orders_365d"]
    frame = pd.DataFrame(dict(zip(features, [silence, orders, noise, twin], strict=True)))
    X = frame.to_numpy()
    logistic = make_logistic_pipeline(seed=0).fit(X, y)
    mask = driver_mask(logistic, X, y)
    assert mask[0] and mask[1]
    customers = pd.DataFrame(
        {
            "recency_days": [200.0, 1.0],
            "orders_90d": [5.0, 0.0],
            "contacts_90d": [0.0, 0.0],
            "orders_365d": [5.0, 0.0],
        }
    )
    codes = reason_codes(logistic, customers, features, top=1, mask=mask)
    assert codes[0] == "days since last purchase high"
    assert codes[1] in ("orders in last 3 months low", "orders in last 12 months low")


def test_median_imputer_fills_as_sklearn_simple_imputer_does():
    import numpy as np
    from sklearn.impute import SimpleImputer

    from mining.churn import MedianImputer

    X = np.array(
        [
            [1.0, np.nan, np.nan, 4.0],
            [np.nan, 2.0, np.nan, 1.0],
            [3.0, 8.0, np.nan, np.nan],
            [10.0, np.nan, np.nan, 2.0],
        ]
    )
    ours = MedianImputer().fit(X)
    assert ours.statistics_.tolist() == [3.0, 5.0, 0.0, 2.0]  # the third column has no value: 0
    theirs = SimpleImputer(strategy="median", keep_empty_features=True).fit(X)
    new = np.array([[np.nan, np.nan, np.nan, np.nan], [7.0, 7.0, 7.0, 7.0]])
    assert np.array_equal(ours.transform(new), theirs.transform(new))
    assert ours.transform(new).tolist() == [[3.0, 5.0, 0.0, 2.0], [7.0, 7.0, 7.0, 7.0]]


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise():
    import os
    import subprocess
    import sys

    # what OpenMP sees once scikit-learn has loaded it through a mining module
    code = "import mining.churn, os, sklearn; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "passive"
    env["OMP_WAIT_POLICY"] = "active"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "active"


def test_openmp_threads_only_for_inputs_worth_waking_them():
    from mining.churn import threads_for

    assert [threads_for(49_999, 2), threads_for(50_000, 2), threads_for(10**6, 4)] == [1, 2, 4]
    assert threads_for(10**6, 0) == 1
