"""Scores for a churn ranking: discrimination, precision where it matters, and calibration.

Why these four: AUC says how well the model orders customers, PR-AUC how well it finds the
(rarer) churners, lift at the top decile what a retention campaign aimed at the riskiest tenth
gains over random targeting, and the Brier score whether the probabilities can be used as
probabilities (a campaign's expected savings are computed from them).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def lift_at_top(y_true: np.ndarray, score: np.ndarray, share: float = 0.1) -> float:
    """Churn rate among the ``share`` highest scores divided by the overall churn rate.

    Ties at the cut are broken by a stable sort on the score, so the figure is reproducible.
    """
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    if y.size == 0 or y.mean() == 0:
        return math.nan
    k = max(1, int(math.ceil(share * y.size)))
    top = np.argsort(-s, kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate − mean prediction| over equal-width probability bins, weighted by size."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prob, dtype=float)
    if y.size == 0:
        return math.nan
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / y.size)


def score_ranking(y_true: np.ndarray, score: np.ndarray, prob: np.ndarray | None = None) -> dict[str, float]:
    """AUC, PR-AUC, lift at the top decile (from ``score``); Brier and calibration from ``prob``.

    A slice with a single class has no AUC: those figures are NaN rather than an error, so a
    quality table can still show the slice's size and churn rate.
    """
    y = np.asarray(y_true, dtype=int)
    s = np.asarray(score, dtype=float)
    out: dict[str, float] = {
        "n": float(y.size),
        "churn_rate": float(y.mean()) if y.size else math.nan,
        "auc": math.nan,
        "pr_auc": math.nan,
        "lift_top_decile": lift_at_top(y, s),
        "brier": math.nan,
        "calibration_error": math.nan,
        "mean_prediction": math.nan,
    }
    if y.size and 0 < y.sum() < y.size:
        out["auc"] = float(roc_auc_score(y, s))
        out["pr_auc"] = float(average_precision_score(y, s))
    if prob is not None and y.size:
        p = np.asarray(prob, dtype=float)
        out["brier"] = float(brier_score_loss(y, p))
        out["calibration_error"] = expected_calibration_error(y, p)
        out["mean_prediction"] = float(p.mean())
    return out
