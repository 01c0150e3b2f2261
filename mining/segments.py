"""Customer segments of MARTS.md: the pyramid, relationship stages, RFM segments, k-means clusters.

Why rules in code and thresholds in configuration: the rules are the published definitions
(MARTS.md) and change rarely; the thresholds (tier shares, what makes a client, an advocate, a
partner) are business choices that marketing tunes, so they come from ``warehouse.config``.
Every function takes the feature table of :func:`mining.features.build_features` and returns
one value per row, in row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from mining.churn import MedianImputer, signed_log1p, threads_for
from warehouse.config import Settings

TIERS: tuple[str, ...] = ("platinum", "gold", "iron", "lead")
STAGES: tuple[str, ...] = ("prospect", "customer", "client", "advocate", "partner")
RFM_SEGMENTS: tuple[str, ...] = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "need_attention",
    "at_risk",
    "hibernating",
    "lapsed",
    "prospect",
)
# Behaviour the clusters are built on, and how each reads in a profile.
CLUSTER_FEATURES: dict[str, str] = {
    "recency_days": "recent",
    "orders_365d": "frequent",
    "avg_order_value_365d": "big-basket",
    "share_store_365d": "store",
    "share_web_365d": "web",
    "share_app_365d": "app",
    "contacts_365d": "high-contact",
    "complaints_365d": "complaining",
    "campaign_open_rate": "campaign-responsive",
    "return_line_share_365d": "returning",
}


def pyramid_tier(frame: pd.DataFrame, tier_shares: dict[str, float]) -> np.ndarray:
    """Tier by trailing-12-month profit (``profit_12m``), shares counted over all rows.

    Customers with positive profit are ranked by profit (ties by customer_id); the top
    round(5 % · N) are platinum, up to round(20 % · N) gold, up to round(70 % · N) iron (with
    the default shares), everyone else — and every customer without positive profit or with a
    closed account — lead.
    Cumulative rounding keeps each tier within one customer of its configured share.
    """
    n = len(frame)
    out = np.full(n, "lead", dtype=object)
    if n == 0:
        return out
    profit = frame["profit_12m"].fillna(0).to_numpy(dtype=float)
    if "is_closed" in frame.columns:  # a closed account holds no place in the live pyramid
        profit = np.where(frame["is_closed"].to_numpy(dtype=bool), 0.0, profit)
    order = np.lexsort((frame["customer_id"].to_numpy(), -profit))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    cumulative = 0.0
    lower = 0
    for tier in TIERS[:-1]:
        cumulative += float(tier_shares.get(tier, 0.0))
        upper = int(round(cumulative * n))
        out[(rank > lower) & (rank <= upper) & (profit > 0)] = tier
        lower = upper
    return out


def relationship_stage(frame: pd.DataFrame, settings: Settings) -> np.ndarray:
    """prospect → customer → client → advocate → partner, each stage requiring the previous one.

    - customer: at least one purchase before the date;
    - client: at least ``client_min_purchases_12m`` purchases in the last 12 months;
    - advocate: a client who referred a customer who signed up, or whose latest NPS answer in
      the last 12 months is at least ``advocate_min_nps``;
    - partner: an advocate with ``partner_min_tenure_days`` of tenure who took part in the
      business (VOC suggestions + survey responses in 12 months ≥ partner_min_participations).
    """
    orders_total = frame["orders_total"].to_numpy(dtype=float)
    orders_12m = frame["orders_365d"].to_numpy(dtype=float)
    nps = frame["nps_last_365d"].to_numpy(dtype=float)
    referrals = frame["referrals_made"].to_numpy(dtype=float)
    tenure = frame["tenure_days"].fillna(0).to_numpy(dtype=float)
    participation = frame["suggestions"].to_numpy(dtype=float) + frame["surveys_365d"].to_numpy(dtype=float)
    min_part = settings.partner_min_participations

    customer = orders_total > 0
    client = customer & (orders_12m >= settings.client_min_purchases_12m)
    advocate = client & ((referrals > 0) | (nps >= settings.advocate_min_nps))
    partner = advocate & (tenure >= settings.partner_min_tenure_days) & (participation >= min_part)
    out = np.full(len(frame), "prospect", dtype=object)
    out[customer] = "customer"
    out[client] = "client"
    out[advocate] = "advocate"
    out[partner] = "partner"
    return out


def _quintile(values: np.ndarray, ascending: bool) -> np.ndarray:
    """Scores 1-5 by rank (5 = best); ranks split ties by position so quintiles stay balanced."""
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=int)
    key = values if ascending else -values
    order = np.argsort(key, kind="stable")
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    return (ranks * 5 // n + 1).astype(int)


def rfm_segment(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(segment, 'RFM' code) per row; quintiles over customers who bought in the last 12 months.

    R scores recency (5 = most recent), F orders in 12 months, M 12-month net sales. Named
    segments follow the common RFM grid: champions R≥4 F≥4; loyal F≥4; potential_loyalist
    R≥4 F 2-3; new R=5 F=1; at_risk R≤2 F≥3; hibernating R≤2 F≤2; need_attention otherwise.
    Buyers silent for 12 months are 'lapsed', those who never bought 'prospect'.
    """
    n = len(frame)
    segment = np.full(n, "prospect", dtype=object)
    code = np.full(n, "", dtype=object)
    bought = frame["orders_total"].to_numpy(dtype=float) > 0
    recent = frame["orders_365d"].to_numpy(dtype=float) > 0
    segment[bought & ~recent] = "lapsed"
    idx = np.flatnonzero(recent)
    if idx.size == 0:
        return segment, code
    sub = frame.iloc[idx]
    r = _quintile(sub["recency_days"].to_numpy(dtype=float), ascending=False)
    f = _quintile(sub["orders_365d"].to_numpy(dtype=float), ascending=True)
    m = _quintile(sub["net_sales_365d"].to_numpy(dtype=float), ascending=True)
    seg = np.full(idx.size, "need_attention", dtype=object)
    seg[(r <= 2) & (f <= 2)] = "hibernating"
    seg[(r <= 2) & (f >= 3)] = "at_risk"
    seg[(r == 5) & (f == 1)] = "new"
    seg[(r >= 4) & (f >= 2) & (f <= 3)] = "potential_loyalist"
    seg[f >= 4] = "loyal"
    seg[(r >= 4) & (f >= 4)] = "champions"
    segment[idx] = seg
    code[idx] = [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)]
    return segment, code


def fit_clusters(
    frame: pd.DataFrame, k: int, seed: int, max_threads: int = 2
) -> tuple[Pipeline, pd.DataFrame]:
    """k-means on the behaviour of active customers, with a readable profile per cluster.

    Returns the fitted pipeline and a profile table (cluster, label, customers, share, and the
    mean of each behaviour feature). A label names the two features whose cluster mean is
    furthest from the overall mean in standard deviations, e.g. "k2: frequent, app".
    """
    active = frame[frame["is_active"]]
    X = active[list(CLUSTER_FEATURES)].to_numpy(dtype=float)
    pipe = Pipeline(
        [
            ("impute", MedianImputer()),
            ("log", FunctionTransformer(signed_log1p, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
            ("kmeans", KMeans(n_clusters=k, n_init=4, random_state=seed)),
        ]
    )
    with threadpool_limits(limits=threads_for(len(X), max_threads)):
        labels = pipe.fit_predict(X)
    z = pipe[:-1].transform(X)
    rows = []
    names = list(CLUSTER_FEATURES)
    for c in range(k):
        mask = labels == c
        centre = z[mask].mean(axis=0) if mask.any() else np.zeros(len(names))
        top = np.argsort(-np.abs(centre))[:2]
        words = []
        for j in top:
            word = CLUSTER_FEATURES[names[j]]
            if names[j] == "recency_days":  # high recency_days means long silence
                word = "lapsing" if centre[j] > 0 else "recent"
            elif centre[j] < 0:
                word = f"low {word}"
            words.append(word)
        row = {
            "cluster": c,
            "label": f"k{c}: {', '.join(words)}",
            "customers": int(mask.sum()),
            "share": float(mask.mean()) if mask.size else 0.0,
        }
        for j, name in enumerate(names):
            row[f"mean_{name}"] = float(np.nanmean(X[mask, j])) if mask.any() else float("nan")
        rows.append(row)
    return pipe, pd.DataFrame(rows)


def assign_clusters(
    pipe: Pipeline, profiles: pd.DataFrame, frame: pd.DataFrame, max_threads: int = 2
) -> np.ndarray:
    """The cluster label of each active row; 'inactive' for customers without a purchase in 12 months."""
    out = np.full(len(frame), "inactive", dtype=object)
    active = frame["is_active"].to_numpy(dtype=bool)
    if active.any():
        X = frame.loc[active, list(CLUSTER_FEATURES)].to_numpy(dtype=float)
        with threadpool_limits(limits=threads_for(len(X), max_threads)):
            ids = pipe.predict(X)
        label_of = profiles.set_index("cluster")["label"]
        out[active] = label_of.reindex(ids).to_numpy()
    return out
