"""Training's customer cap (settings.train_max_customers): a seeded sample, and nothing else moves.

On mart-shaped synthetic data with 3,000 customers: a cap of 1,000 fits on exactly 1,000
customers, the same ones on every call, whose feature rows are those of the full table; a cap
at or above 3,000 trains a model whose metadata is identical to training without a cap.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import duckdb
import pandas as pd
import pytest

from mining.features import build_features
from mining.synth import synthesize_marts
from mining.train import labelled_frame, plan_cutoffs, sample_customers, train
from warehouse.config import load_settings

CUSTOMERS = 3000


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    home = tmp_path_factory.mktemp("mining_sample")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMWH_HOME", str(home))
        for name in ("WAREHOUSE", "MODELS", "VALIDATION", "LANDING", "PUBLISHED", "TRAIN_MAX_CUSTOMERS"):
            mp.delenv(f"CRMWH_{name}", raising=False)
        settings = load_settings()
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse))
    synthesize_marts(con, CUSTOMERS, date(2024, 1, 1), 540, seed=11)
    con.close()
    return settings


def _with_cap(settings, cap: int, name: str):
    return dataclasses.replace(settings, train_max_customers=cap, models=settings.home / name)


def test_the_default_cap_and_its_environment_variable(monkeypatch):
    assert load_settings().train_max_customers == 200_000
    monkeypatch.setenv("CRMWH_TRAIN_MAX_CUSTOMERS", "50000")
    assert load_settings().train_max_customers == 50_000


def test_the_sample_is_seeded_and_exactly_the_cap(settings):
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        everyone = {r[0] for r in con.execute("select customer_id from marts.dim_customer").fetchall()} - {
            None
        }
        sample, known = sample_customers(con, 1000, seed=1)
        assert known == len(everyone) == CUSTOMERS
        assert len(sample) == len(set(sample)) == 1000 and set(sample) <= everyone
        assert sample == sorted(sample)
        assert sample_customers(con, 1000, seed=1) == (sample, CUSTOMERS)
        other, _ = sample_customers(con, 1000, seed=2)
        assert len(set(other) & set(sample)) < 500  # another seed, another sample (~333 shared)
        assert sample_customers(con, CUSTOMERS, seed=1) == (None, CUSTOMERS)
        assert sample_customers(con, 0, seed=1) == (None, CUSTOMERS)

        # a sampled customer's features are the same as in the full table
        cutoff = plan_cutoffs(con, settings, 4)[0][-1]
        full = labelled_frame(con, cutoff, settings)
        part = labelled_frame(con, cutoff, settings, sample)
        expected = full[full["customer_id"].isin(sample)].reset_index(drop=True)
        assert len(part) == len(expected) > 0
        pd.testing.assert_frame_equal(part, expected)
    finally:
        con.close()


def test_capped_training_fits_on_the_sample(settings):
    report = train(_with_cap(settings, 1000, "models_cap1000"), n_cutoffs=4, seed=1)
    assert report["training_window"]["customers"] == {"sampled": 1000, "of": CUSTOMERS}
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        sample, _ = sample_customers(con, 1000, seed=1)
        cutoffs = [date.fromisoformat(c) for c in report["training_window"]["cutoffs"]]
        full_rows = sum(
            int(labelled_frame(con, c, settings)["customer_id"].isin(sample).sum()) for c in cutoffs
        )
        test_rows = int(build_features(con, date.fromisoformat(report["test"]["cutoff"]))["is_active"].sum())
        latest = build_features(con, date.fromisoformat(report["value_models"]["fitted_as_of"]))
        clustered = int((latest["is_active"] & latest["customer_id"].isin(sample)).sum())
    finally:
        con.close()
    # the training rows are the sampled customers' rows; the test set keeps every active customer
    assert report["training_window"]["rows"] == full_rows == 2100
    assert report["test"]["rows"] == test_rows == 1809
    # the clusters are fitted on the sampled customers active at the latest date
    assert sum(c["customers"] for c in report["clusters"]) == clustered == 600


def test_a_cap_above_the_customers_changes_nothing(settings):
    uncapped = train(_with_cap(settings, 0, "models_nocap"), n_cutoffs=4, seed=1)
    above = train(_with_cap(settings, CUSTOMERS, "models_cap_above"), n_cutoffs=4, seed=1)
    assert uncapped["training_window"]["customers"] == {"sampled": CUSTOMERS, "of": CUSTOMERS}

    def stable(meta: dict) -> str:
        return json.dumps({k: v for k, v in meta.items() if k != "seconds"}, sort_keys=True, default=str)

    assert stable(above) == stable(uncapped)
    # and as stored in the registry, but for the registration time
    stored = [
        json.loads((settings.home / name / "churn" / "churn-0001" / "metadata.json").read_text())
        for name in ("models_nocap", "models_cap_above")
    ]
    for meta in stored:
        del meta["seconds"], meta["registered_at"]
    assert stored[0] == stored[1]
