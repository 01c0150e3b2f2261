"""`crmwh train`: fit the churn model out of time, compare with the champion, register, promote.

The protocol (why it can be trusted):

1. The test cut-off is the latest date whose 90-day label window is fully in the data.
2. Training cut-offs are monthly steps back from ``test − window``, so every training label was
   observable on the test cut-off: nothing the model learns comes from the test period.
3. The boosting model is fitted on the training cut-offs but the latest, calibrated on the
   latest (mining/churn.py), and scored on the test cut-off against two baselines computed on
   the very same customers: days since last purchase, and 1 − P(alive) of a BG/NBD model fitted
   on the purchases before the test cut-off. With the generator's truth available (a
   ``truth.customers`` table, or ``<home or landing's parent>/truth/customers.*``), the AUC
   against the true churn dates is reported too.
4. Above ``settings.train_max_customers`` known customers, the model, the clusters and the
   value models are fitted on a seeded sample of that many customers (the same at every
   cut-off); the test cut-off keeps every customer, so the metrics are the population's.
5. The new version is registered either way; it becomes champion only if its out-of-time AUC
   on this test cut-off is not below the champion's AUC on the same rows.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mining import registry
from mining.churn import fit_churn_models, predict_churn
from mining.features import FEATURES, build_features, build_labels, data_through
from mining.metrics import score_ranking
from mining.segments import fit_clusters, pyramid_tier
from mining.value import PERIOD_DAYS, fit_value_models, purchase_summary
from mining.writeback import quality_rows, write_quality
from warehouse.config import Settings

MIN_HISTORY_DAYS = 90


def labelled_frame(
    con: duckdb.DuckDBPyConnection, as_of: date, settings: Settings, customers: list[str] | None = None
) -> pd.DataFrame:
    """Features of the customers active at ``as_of`` (of ``customers`` if given) with their churn label."""
    feats = build_features(con, as_of, settings.active_window_days, customers)
    active = feats[feats["is_active"]].reset_index(drop=True)
    labels = build_labels(con, as_of, active["customer_id"].tolist(), settings.churn_window_days)
    active["churned"] = labels.to_numpy()
    return active


def plan_cutoffs(
    con: duckdb.DuckDBPyConnection, settings: Settings, n_train: int, step_days: int = 30
) -> tuple[list[date], date]:
    """(training cut-offs oldest first, test cut-off) as described in the module docstring."""
    last = data_through(con)
    first = con.execute("select min(date_day) from marts.fct_sales").fetchone()[0]
    window = settings.churn_window_days
    test = last + timedelta(days=1) - timedelta(days=window)
    latest_train = test - timedelta(days=window)
    train = [latest_train - timedelta(days=step_days * i) for i in range(n_train)][::-1]
    train = [c for c in train if c >= first + timedelta(days=MIN_HISTORY_DAYS)]
    if len(train) < 2:
        raise ValueError(
            f"the marts hold sales from {first} to {last}: training needs at least "
            f"{MIN_HISTORY_DAYS + 2 * window + step_days} days ({MIN_HISTORY_DAYS} of history, two cut-offs, "
            "a test window); load a longer history"
        )
    return train, test


def sample_customers(
    con: duckdb.DuckDBPyConnection, max_customers: int, seed: int
) -> tuple[list[str] | None, int]:
    """(a seeded sample of ``max_customers`` known customers, sorted, or None for all; how many there are).

    Why a sample: the churn model, the clusters and the BG/NBD / Gamma-Gamma population
    parameters learn as well from a few hundred thousand customers as from millions, while
    training time and memory grow with every row. The same customers serve every cut-off, so
    the sample is one population followed through time. ``max_customers`` of 0 means no cap.
    """
    ids = con.execute(
        """select distinct customer_id from marts.dim_customer
        where customer_key <> -1 and customer_id is not null order by customer_id"""
    ).fetchnumpy()["customer_id"]
    total = len(ids)
    if max_customers <= 0 or total <= max_customers:
        return None, total
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=max_customers, replace=False))
    return [str(i) for i in ids[chosen]], total


def _read_truth(path: Path) -> pd.DataFrame:
    """A truth file's customer_id and true_churn_date (a CSV's as text: its other columns mix
    types, which pandas warns about when it guesses them)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, usecols=lambda c: c in ("customer_id", "true_churn_date"), dtype=str)


def load_truth(
    con: duckdb.DuckDBPyConnection, settings: Settings, truth_dir: Path | None = None
) -> pd.Series | None:
    """The generator's true churn dates by customer_id, if this warehouse's data came with them.

    Looked up in ``truth_dir`` if given, else a ``truth.customers`` table in the warehouse,
    else ``<home>/truth`` and ``<landing's parent>/truth`` (where the generator writes it).
    """
    if truth_dir is not None:
        path = Path(truth_dir) / "customers.csv"
        parquet = Path(truth_dir) / "customers.parquet"
        if not path.exists() and not parquet.exists():
            raise FileNotFoundError(f"no customers.csv or customers.parquet in the truth folder {truth_dir}")
        frame = _read_truth(parquet if parquet.exists() else path)
        dates = pd.to_datetime(frame["true_churn_date"], errors="coerce")
        return pd.Series(dates.dt.date.to_numpy(), index=frame["customer_id"].to_numpy())
    has_table = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'truth' and table_name = 'customers'"
    ).fetchone()[0]
    if has_table:
        frame = con.execute("select customer_id, true_churn_date from truth.customers").df()
    else:
        frame = None
        for folder in (settings.home / "truth", settings.landing.parent / "truth"):
            for name in ("customers.parquet", "customers.csv"):
                path = Path(folder) / name
                if path.exists():
                    frame = _read_truth(path)
                    break
            if frame is not None:
                break
        if frame is None or "true_churn_date" not in frame.columns:
            return None
    dates = pd.to_datetime(frame["true_churn_date"], errors="coerce")
    return pd.Series(dates.dt.date.to_numpy(), index=frame["customer_id"].to_numpy())


def in_sample(summary: pd.DataFrame, sample: list[str] | None) -> pd.DataFrame:
    """The rows of a per-customer frame (indexed by customer_id) that are in the training sample."""
    return summary if sample is None else summary[summary.index.isin(sample)]


def truth_labels(truth: pd.Series, customer_ids: pd.Series, as_of: date, window_days: int) -> np.ndarray:
    """1 when the customer's true churn date falls before the end of the label window."""
    end = as_of + timedelta(days=window_days)
    dates = truth.reindex(customer_ids.to_numpy())
    return np.array([d is not None and not pd.isna(d) and d < end for d in dates], dtype=int)


def train(
    settings: Settings,
    n_cutoffs: int = 6,
    seed: int | None = None,
    clusters: int = 5,
    con: duckdb.DuckDBPyConnection | None = None,
    features: list[str] | None = None,
    truth_dir: Path | None = None,
) -> dict[str, Any]:
    """Train, evaluate out of time, register and maybe promote. Returns the report (also stored).

    ``features`` restricts the model to a subset of :data:`mining.features.FEATURES` (ablations:
    a challenger without, say, the contact features competes with the champion like any other).
    """
    seed = settings.seed if seed is None else seed
    own = con is None
    con = con or duckdb.connect(str(settings.warehouse))
    try:
        return _train(con, settings, n_cutoffs, seed, clusters, list(features or FEATURES), truth_dir)
    finally:
        if own:
            con.close()


def should_promote(new_auc: float, champion_auc: float | None) -> bool:
    """Promote unless the challenger is worse out of time than the champion on the same rows."""
    if champion_auc is None or np.isnan(champion_auc):
        return True
    return not np.isnan(new_auc) and new_auc >= champion_auc


def _train(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    n_cutoffs: int,
    seed: int,
    clusters: int,
    features: list[str],
    truth_dir: Path | None,
) -> dict[str, Any]:
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown features {unknown}: choose from mining.features.FEATURES")
    started = time.perf_counter()
    train_cutoffs, test_cutoff = plan_cutoffs(con, settings, n_cutoffs)
    sample, known = sample_customers(con, settings.train_max_customers, seed)
    frames = [labelled_frame(con, c, settings, sample) for c in train_cutoffs]
    training = pd.concat(frames, ignore_index=True)
    test_all = build_features(con, test_cutoff, settings.active_window_days)
    test_all["pyramid_tier"] = pyramid_tier(test_all, settings.tier_shares)
    test = test_all[test_all["is_active"]].reset_index(drop=True)
    test["churned"] = build_labels(
        con, test_cutoff, test["customer_id"].tolist(), settings.churn_window_days
    ).to_numpy()
    features_seconds = time.perf_counter() - started

    fit_started = time.perf_counter()
    fitted = fit_churn_models(training, features, seed, settings.threads)
    fit_seconds = time.perf_counter() - fit_started

    y = test["churned"].to_numpy(dtype=int)
    prob = predict_churn(fitted["model"], test, features, settings.threads)
    logistic_prob = fitted["logistic"].predict_proba(test[features].to_numpy(dtype=float))[:, 1]
    summary = purchase_summary(con, test_cutoff)
    value_models = fit_value_models(in_sample(summary, sample), seed)
    bgnbd = value_models["bgnbd"]
    p_alive = (
        pd.Series(
            bgnbd.p_alive(summary["frequency"], summary["recency"], summary["T"].clip(lower=1 / PERIOD_DAYS)),  # type: ignore[attr-defined]
            index=summary.index,
        )
        .reindex(test["customer_id"])
        .fillna(1.0)
        .to_numpy()
    )
    metrics = {
        "model": score_ranking(y, prob, prob),
        "logistic": score_ranking(y, logistic_prob, logistic_prob),
        "baseline_recency": score_ranking(y, test["recency_days"].to_numpy()),
        "baseline_p_alive": score_ranking(y, 1.0 - p_alive, 1.0 - p_alive),
    }
    truth = load_truth(con, settings, truth_dir)
    if truth is not None:
        y_true = truth_labels(truth, test["customer_id"], test_cutoff, settings.churn_window_days)
        metrics["against_truth"] = {
            "model": score_ranking(y_true, prob),
            "baseline_recency": score_ranking(y_true, test["recency_days"].to_numpy()),
            "baseline_p_alive": score_ranking(y_true, 1.0 - p_alive),
            "observed_label": score_ranking(y_true, y),
        }

    latest = data_through(con) + timedelta(days=1)
    latest_feats = build_features(con, latest, settings.active_window_days, sample)
    cluster_pipe, profiles = fit_clusters(latest_feats, clusters, seed, settings.threads)
    # BG/NBD and Gamma-Gamma on the latest history: population parameters move slowly and the
    # fit costs far more than applying it, so scoring reuses them (as it reuses the churn model).
    value_fit_started = time.perf_counter()
    latest_value_models = fit_value_models(in_sample(purchase_summary(con, latest), sample), seed)
    value_fit_seconds = time.perf_counter() - value_fit_started

    champion = registry.champion(settings.models)
    champion_auc = None
    if champion is not None:
        champ_art, _ = registry.load(settings.models, champion)
        champ_prob = predict_churn(champ_art["model"], test, champ_art["features"], settings.threads)
        champion_auc = score_ranking(y, champ_prob)["auc"]
    new_auc = metrics["model"]["auc"]
    promote = should_promote(new_auc, champion_auc)

    metadata = {
        "family": "churn",
        "features": features,
        "training_window": {
            "cutoffs": [str(c) for c in train_cutoffs],
            "first_cutoff": str(train_cutoffs[0]),
            "last_cutoff": str(train_cutoffs[-1]),
            "labels_observed_through": str(
                train_cutoffs[-1] + timedelta(days=settings.churn_window_days - 1)
            ),
            "rows": len(training),
            # the customers training fitted on (churn model, clusters, value models), of all known
            "customers": {"sampled": len(sample) if sample is not None else known, "of": known},
            "churn_rate": float(training["churned"].mean()),
        },
        "test": {"cutoff": str(test_cutoff), "rows": len(test), "churn_rate": float(y.mean())},
        "calibration": fitted["calibration"],
        "fit_cutoffs": fitted["fit_cutoffs"],
        "metrics": metrics,
        "champion_before": champion,
        "champion_auc_on_test": champion_auc,
        "promoted": promote,
        "seed": seed,
        "churn_window_days": settings.churn_window_days,
        "active_window_days": settings.active_window_days,
        "clusters": profiles.to_dict(orient="records"),
        "value_models": {
            "fitted_as_of": str(latest),
            "bgnbd": latest_value_models["bgnbd"].to_dict(),  # type: ignore[attr-defined]
            "gamma_gamma": latest_value_models["gamma_gamma"].to_dict(),  # type: ignore[attr-defined]
        },
        "seconds": {
            "features": round(features_seconds, 2),
            "fit": round(fit_seconds, 2),
            "value_fit": round(value_fit_seconds, 2),
        },
    }
    artifact = {
        "model": fitted["model"],
        "logistic": fitted["logistic"],
        "driver_mask": fitted["driver_mask"],
        "features": features,
        "clusters": cluster_pipe,
        "cluster_profiles": profiles,
        "value_models": latest_value_models,
    }
    version = registry.register(settings.models, artifact, metadata)
    if promote:
        reason = (
            "first model"
            if champion is None
            else f"out-of-time AUC {new_auc:.4f} >= champion {champion} {champion_auc:.4f} on {test_cutoff}"
        )
        registry.promote(settings.models, version, reason)

    test["prob"] = prob
    test["y"] = y
    test["baseline"] = test["recency_days"]
    write_quality(con, quality_rows(test, version, "backtest", test_cutoff))
    metadata.update(
        version=version, seconds=dict(metadata["seconds"], total=round(time.perf_counter() - started, 2))
    )
    return metadata
