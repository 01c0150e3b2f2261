"""The churn model: gradient boosting, calibrated out of time, with a logistic companion.

Why this shape:

- Training rows are (customer, cut-off) pairs from several past cut-offs, so the model learns
  how customers behaved before many different dates, not the quirks of one month.
- The gradient-boosting pipeline is fitted on every training cut-off but the latest; its
  probabilities are then calibrated (isotonic, sigmoid when rows are few) on the latest
  training cut-off, which it has not seen. Calibrating on a *later* period than the one the
  model learnt from corrects for drift as well as for the model's own over-confidence.
- The logistic pipeline is the simple baseline the boosting must beat, and it gives the
  per-customer reason codes (see :func:`reason_codes`).
"""

from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from mining.features import FEATURE_LABELS

# Risk bands on the calibrated probability (a campaign works the high band first).
RISK_BANDS: tuple[tuple[str, float], ...] = (("high", 0.5), ("medium", 0.25), ("low", 0.0))


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """sign(x)·log(1+|x|): tames money and count tails for the linear model, keeps the sign."""
    return np.sign(x) * np.log1p(np.abs(x))


class EmptyColumnsToZero(TransformerMixin, BaseEstimator):
    """Fill columns that had no value at all in training with 0 (keep other NaNs as they are).

    Why: histogram boosting treats NaN as "missing" natively, which we want, but cannot bin a
    column without a single observed value (e.g. no CSAT survey in the training period).
    """

    def fit(self, X: np.ndarray, y: object = None) -> EmptyColumnsToZero:
        self.empty_ = np.all(np.isnan(np.asarray(X, dtype=float)), axis=0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=float, copy=True)
        X[:, self.empty_] = 0.0
        return X


class MedianImputer(TransformerMixin, BaseEstimator):
    """Fill missing values with the column's training median, and a column with no value at all
    with 0: the arithmetic of ``SimpleImputer(strategy="median", keep_empty_features=True)``.

    Why not SimpleImputer: its median goes through numpy masked arrays. On training's matrix at
    L (567,672 rows × 56 features) it took 7.5 s to fit, np.nanmedian 0.3 s, same medians.
    """

    def fit(self, X: np.ndarray, y: object = None) -> MedianImputer:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": such columns get 0
            medians = np.nanmedian(np.asarray(X, dtype=float), axis=0)
        self.statistics_ = np.nan_to_num(medians, nan=0.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        return np.where(np.isnan(X), self.statistics_, X)


def make_gb_pipeline(seed: int) -> Pipeline:
    """Histogram gradient boosting: handles missing values natively, fast on a million rows."""
    return Pipeline(
        [
            ("empty", EmptyColumnsToZero()),
            (
                "model",
                # Shallow trees, many of them: churn signals are mostly monotone and interact
                # little, and a CRM's training set is thousands to a few million rows.
                HistGradientBoostingClassifier(
                    max_iter=200,
                    learning_rate=0.05,
                    max_depth=3,
                    min_samples_leaf=100,
                    l2_regularization=1.0,
                    early_stopping=False,
                    random_state=seed,
                ),
            ),
        ]
    )


def make_logistic_pipeline(seed: int) -> Pipeline:
    """Median-impute, signed log, standardize, L2 logistic regression.

    Newton-Cholesky suits many rows and few features: at L (567,672 rows, 56 features) it
    converged in 4 iterations and 2 s where lbfgs took 99 iterations and 8 s; out of time, the
    logistic AUC was 0.8337 either way.
    """
    return Pipeline(
        [
            ("impute", MedianImputer()),
            ("log", FunctionTransformer(signed_log1p, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=0.5, solver="newton-cholesky", max_iter=2000, random_state=seed)),
        ]
    )


def matrix(frame: pd.DataFrame, features: list[str] | tuple[str, ...]) -> np.ndarray:
    """The model matrix in the registered feature order (a missing column is a hard error)."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise KeyError(
            f"feature columns {missing} are missing from the feature table: the model was trained "
            "with features this code no longer builds; retrain with `crmwh train`"
        )
    return frame[list(features)].to_numpy(dtype=float)


def threads_for(rows: int, max_threads: int) -> int:
    """Threads for scikit-learn's OpenMP loops: one for fewer than 50,000 rows, else the
    setting ``threads``.

    Why: OpenMP's threads wait passively (mining/__init__.py), and waking them costs more than
    a small input's work. Fitting the churn model on the first rows of training's matrix at L,
    on 1 / 2 threads: 5,000 rows 0.37 / 0.79 s, 20,000 rows 1.02 / 1.31 s, 50,000 rows 2.28 /
    2.03 s, 200,000 rows 9.08 / 6.29 s. The pipeline runs one step at a time (one slot in the
    warehouse pool), so the cores are the step's own; on a machine shared with other heavy
    jobs, ``threads: 1`` keeps it to one.
    """
    return max(1, max_threads) if rows >= 50_000 else 1


def fit_churn_models(
    train: pd.DataFrame, features: list[str], seed: int, max_threads: int = 2
) -> dict[str, object]:
    """Fit the calibrated boosting model and the logistic model on a training frame.

    ``train`` holds ``as_of_date``, the features and ``churned``. The latest cut-off in it is
    held back for calibration; the others fit the boosting model.
    """
    cutoffs = sorted(train["as_of_date"].unique())
    if len(cutoffs) < 2:
        raise ValueError(
            f"training needs at least two cut-offs (one to fit, one to calibrate), got {cutoffs}: "
            "load more history or pass more --cutoffs"
        )
    calib_mask = (train["as_of_date"] == cutoffs[-1]).to_numpy()
    X = matrix(train, features)
    y = train["churned"].to_numpy(dtype=int)
    if len(np.unique(y[~calib_mask])) < 2 or len(np.unique(y[calib_mask])) < 2:
        raise ValueError(
            "the training cut-offs hold only one class of the churn label: "
            f"churn rates by cut-off {train.groupby('as_of_date')['churned'].mean().to_dict()}"
        )
    with threadpool_limits(limits=threads_for(len(X), max_threads)):
        gb = make_gb_pipeline(seed).fit(X[~calib_mask], y[~calib_mask])
        method = "isotonic" if calib_mask.sum() >= 5000 else "sigmoid"
        calibrated = CalibratedClassifierCV(FrozenEstimator(gb), method=method)
        calibrated.fit(X[calib_mask], y[calib_mask])
        logistic = make_logistic_pipeline(seed).fit(X, y)
    return {
        "model": calibrated,
        "logistic": logistic,
        "driver_mask": driver_mask(logistic, X, y),
        "calibration": {"method": method, "cutoff": str(cutoffs[-1]), "rows": int(calib_mask.sum())},
        "fit_cutoffs": [str(c) for c in cutoffs[:-1]],
    }


def predict_churn(
    model: object, frame: pd.DataFrame, features: list[str], max_threads: int = 2
) -> np.ndarray:
    """Calibrated churn probability for each row."""
    with threadpool_limits(limits=threads_for(len(frame), max_threads)):
        return model.predict_proba(matrix(frame, features))[:, 1]  # type: ignore[attr-defined]


def risk_band(prob: np.ndarray) -> np.ndarray:
    """'high' / 'medium' / 'low' by :data:`RISK_BANDS`."""
    out = np.full(prob.shape, RISK_BANDS[-1][0], dtype=object)
    for name, floor in reversed(RISK_BANDS):
        out[prob >= floor] = name
    return out


def standardized(logistic: Pipeline, X: np.ndarray) -> np.ndarray:
    """The logistic pipeline's input to its final model (impute, signed log, scale), in numpy.

    Same arithmetic as ``logistic[:-1].transform(X)``, several times faster on a million rows
    (no per-step validation), which matters because scoring explains every active customer.
    """
    impute, scale = logistic.named_steps["impute"], logistic.named_steps["scale"]
    filled = np.where(np.isnan(X), impute.statistics_, X)
    return (signed_log1p(filled) - scale.mean_) / scale.scale_


def driver_mask(logistic: Pipeline, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Features whose logistic coefficient has the sign of their own correlation with churn.

    With correlated inputs a linear model may give a feature the "wrong" sign to offset a
    neighbour (e.g. complaints in 3 months against complaints in 12). Such terms are real in
    the model's arithmetic but mislead a reader ("few complaints raise your risk"), so they are
    left out of the reason codes.
    """
    z = standardized(logistic, X)
    yc = y - y.mean()
    corr = (z - z.mean(axis=0)).T @ yc
    coef = logistic[-1].coef_[0]
    return (np.sign(coef) == np.sign(corr)) & (coef != 0)


def reason_codes(
    logistic: Pipeline,
    frame: pd.DataFrame,
    features: list[str],
    top: int = 3,
    mask: np.ndarray | None = None,
) -> list[str]:
    """Each customer's top drivers of churn risk, as a readable '; '-separated string.

    How: in the logistic model the log-odds are a sum over features of coefficient ×
    standardized value, where a standardized value of 0 is the average training customer. Each
    term is therefore that feature's push on this customer's risk relative to an average
    customer. The ``top`` largest positive terms among the features allowed by ``mask`` (see
    :func:`driver_mask`) are the drivers, strongest first, worded "<feature> high|low". They explain
    the logistic companion exactly and the boosting model approximately (both learn from the
    same rows; what an agent needs is which behaviours push the risk up, not the exact split).
    Customers with no positive term get an empty string.
    """
    z = standardized(logistic, matrix(frame, features))
    coef = logistic[-1].coef_[0]
    contrib = z * coef
    if mask is not None:
        contrib[:, ~np.asarray(mask, dtype=bool)] = -np.inf
    k = min(top, contrib.shape[1])
    # the k largest terms per row (argpartition, then order those k): no full sort of every row
    part = np.argpartition(-contrib, k - 1, axis=1)[:, :k]
    part_vals = np.take_along_axis(contrib, part, axis=1)
    order = np.take_along_axis(part, np.argsort(-part_vals, axis=1, kind="stable"), axis=1)
    top_vals = np.take_along_axis(contrib, order, axis=1)
    top_z = np.take_along_axis(z, order, axis=1)
    # Each driver is one of 2 × len(features) phrases; a row's drivers are a tuple of phrase
    # codes (-1 = none). Rows share few distinct tuples, so the strings are built once per tuple.
    phrases = [f"{FEATURE_LABELS.get(f, f)} {d}" for f in features for d in ("high", "low")]
    codes = np.where(top_vals > 0, order * 2 + (top_z < 0), -1).astype(np.int64)
    base = len(phrases) + 1
    key = np.zeros(len(codes), dtype=np.int64)
    for j in range(k):
        key = key * base + (codes[:, j] + 1)
    unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    texts = np.array(["; ".join(phrases[c] for c in codes[i] if c >= 0) for i in first], dtype=object)
    return texts[inverse].tolist()


def snapshot_dates(frame: pd.DataFrame) -> list[date]:
    return sorted(pd.to_datetime(frame["as_of_date"]).dt.date.unique())
