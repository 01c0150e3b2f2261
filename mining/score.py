"""`crmwh score [--as-of D]`: score every customer with the champion and write the mining tables.

Scoring is separate from training (mining/train.py) so a daily run never refits anything: it
reads the champion's artifact, builds the features as of the date, and writes
``mining.customer_score_history`` (append only), ``customer_scores``, ``tier_migration``,
``prediction_ledger`` (closing the outcomes whose window has passed) and ``model_quality``.
The dbt models that slice by tier and stage are then rebuilt, so the cubes see the new scores.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mining import registry
from mining.churn import predict_churn, reason_codes, risk_band
from mining.features import build_features, data_through
from mining.segments import assign_clusters, pyramid_tier, relationship_stage, rfm_segment
from mining.value import fit_value_models, purchase_summary, value_scores
from mining.writeback import (
    append_history,
    close_outcomes,
    record_predictions,
    refresh_customer_scores,
    refresh_ledger_quality,
    refresh_tier_migration,
    write_segment_profiles,
)
from warehouse.config import Settings


def score_frame(
    con: duckdb.DuckDBPyConnection, settings: Settings, as_of: date, artifact: dict[str, Any], version: str
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every known customer's scores as of ``as_of`` (one row each), and the step timings."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    feats = build_features(con, as_of, settings.active_window_days)
    timings["features"] = time.perf_counter() - t

    t = time.perf_counter()
    features = artifact["features"]
    active = feats["is_active"].to_numpy(dtype=bool)
    prob = np.full(len(feats), np.nan)
    band = np.where(feats["is_closed"].to_numpy(dtype=bool), "closed", "inactive").astype(object)
    drivers = np.full(len(feats), None, dtype=object)
    if active.any():
        act = feats[active]
        prob[active] = predict_churn(artifact["model"], act, features, settings.threads)
        band[active] = risk_band(prob[active])
        drivers[active] = reason_codes(artifact["logistic"], act, features, mask=artifact.get("driver_mask"))
    timings["churn"] = time.perf_counter() - t

    t = time.perf_counter()
    summary = purchase_summary(con, as_of)
    values = pd.DataFrame(
        index=pd.Index([], name="customer_id"),
        columns=["p_alive", "expected_purchases_90d", "clv_12m_krw", "clv_12m_p10_krw", "clv_12m_p90_krw"],
    )
    notes: list[str] = []
    if len(summary) >= 10 and (summary["frequency"] > 0).any():
        try:
            # the champion's BG/NBD and Gamma-Gamma (fitted at training); refit if it has none
            models = artifact.get("value_models") or fit_value_models(
                summary, settings.seed, settings.train_max_customers
            )
            values = value_scores(summary, models, settings.clv_monthly_discount_rate, settings.seed)
        except ValueError as exc:
            # Too little or too odd a purchase history for the CLV models (e.g. a warehouse a
            # few weeks old): churn scores and segments still go out, the value columns stay
            # empty, and the report says why.
            notes.append(f"CLV not scored: {exc}")
    else:
        notes.append(f"CLV not scored: {len(summary)} buyers, too few repeat purchases before {as_of}")
    values = values.reindex(feats["customer_id"])
    timings["clv"] = time.perf_counter() - t

    t = time.perf_counter()
    segment, code = rfm_segment(feats)
    out = pd.DataFrame(
        {
            "customer_id": feats["customer_id"].to_numpy(),
            "as_of_date": as_of,
            "churn_probability": prob,
            "churn_risk_band": band,
            "top_churn_drivers": drivers,
            "p_alive": values["p_alive"].to_numpy(dtype=float),
            "expected_purchases_90d": values["expected_purchases_90d"].to_numpy(dtype=float),
            "clv_12m_krw": values["clv_12m_krw"].to_numpy(dtype=float),
            "clv_12m_p10_krw": values["clv_12m_p10_krw"].to_numpy(dtype=float),
            "clv_12m_p90_krw": values["clv_12m_p90_krw"].to_numpy(dtype=float),
            "pyramid_tier": pyramid_tier(feats, settings.tier_shares),
            "relationship_stage": relationship_stage(feats, settings),
            "rfm_segment": segment,
            "segment_cluster": assign_clusters(
                artifact["clusters"], artifact["cluster_profiles"], feats, settings.threads
            ),
            "model_version": version,
            "scored_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            "rfm_code": code,
            "is_active": active,
            "main_channel": feats["main_channel"].to_numpy(),
            "region": feats["region"].to_numpy(),
            "recency_days": feats["recency_days"].to_numpy(dtype=float),
        }
    )
    timings["segments"] = time.perf_counter() - t
    out.attrs["notes"] = notes
    return out, timings


def score(
    settings: Settings,
    as_of: date | None = None,
    rebuild: bool = True,
    validate: bool = True,
    version: str | None = None,
) -> dict[str, Any]:
    """Score with the champion (or ``version``) as of ``as_of`` (default: the day after the data).

    Returns counts and timings. Raises if no model is registered (run `crmwh train` first).
    """
    version = version or registry.champion(settings.models)
    if version is None:
        raise RuntimeError(f"no champion model in {settings.models}/churn: run `crmwh train` first")
    artifact, _meta = registry.load(settings.models, version)
    started = time.perf_counter()
    con = duckdb.connect(str(settings.warehouse))
    try:
        as_of = as_of or data_through(con) + timedelta(days=1)
        scores, timings = score_frame(con, settings, as_of, artifact, version)
        t = time.perf_counter()
        appended = append_history(con, scores)
        current = refresh_customer_scores(con)
        migrations = refresh_tier_migration(con, as_of)
        recorded = record_predictions(con, scores, settings.churn_window_days)
        closed = close_outcomes(con, settings.churn_window_days)
        quality = refresh_ledger_quality(con)
        write_segment_profiles(con, artifact["cluster_profiles"], version, scores["segment_cluster"])
        timings["write"] = time.perf_counter() - t
        validation = None
        if validate:
            from expectations.scores import validate_scores

            validation = validate_scores(con, settings, run_id=f"score-{as_of}-{version}")
    finally:
        con.close()
    report: dict[str, Any] = {
        "as_of": str(as_of),
        "model_version": version,
        "customers": len(scores),
        "active_scored": int(scores["churn_probability"].notna().sum()),
        "history_appended": appended,
        "customer_scores": current,
        "tier_migration_rows": migrations,
        "predictions_recorded": recorded,
        "outcomes_closed": closed,
        "quality_rows": quality,
        "validation": validation,
        "notes": scores.attrs.get("notes", []),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
    }
    if rebuild:
        from warehouse.build import AFTER_SCORING, build

        t = time.perf_counter()
        report["dbt"] = build(settings, selector=AFTER_SCORING)
        report["seconds"]["dbt"] = round(time.perf_counter() - t, 2)
    report["seconds"]["total"] = round(time.perf_counter() - started, 2)
    return report
