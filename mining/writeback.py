"""Write-back of scores into schema ``mining`` of the build warehouse (MARTS.md "Mining outputs").

Why this split of tables: ``customer_score_history`` is the append-only record (an as-of date
scored by a model version is written once; scoring it again changes nothing), and every other
table is derived from it or from the ledger, so each can be rebuilt and re-running a scoring is
idempotent. ``prediction_ledger`` keeps each prediction until its churn window has closed in the
data, then records what actually happened — the honest, after-the-fact model quality.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd

from mining.features import build_labels, data_through
from mining.metrics import score_ranking

SCORE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("customer_id", "VARCHAR"),
    ("as_of_date", "DATE"),
    ("churn_probability", "DOUBLE"),
    ("churn_risk_band", "VARCHAR"),
    ("top_churn_drivers", "VARCHAR"),
    ("p_alive", "DOUBLE"),
    ("expected_purchases_90d", "DOUBLE"),
    ("clv_12m_krw", "DOUBLE"),
    ("clv_12m_p10_krw", "DOUBLE"),
    ("clv_12m_p90_krw", "DOUBLE"),
    ("pyramid_tier", "VARCHAR"),
    ("relationship_stage", "VARCHAR"),
    ("rfm_segment", "VARCHAR"),
    ("segment_cluster", "VARCHAR"),
    ("model_version", "VARCHAR"),
    ("scored_at", "TIMESTAMP"),
)
# Kept in the history (and the ledger) for slicing model quality; not part of customer_scores.
HISTORY_EXTRA: tuple[tuple[str, str], ...] = (
    ("rfm_code", "VARCHAR"),
    ("is_active", "BOOLEAN"),
    ("main_channel", "VARCHAR"),
    ("region", "VARCHAR"),
    ("recency_days", "DOUBLE"),
)

QUALITY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model_version", "VARCHAR"),
    ("source", "VARCHAR"),
    ("as_of_date", "DATE"),
    ("slice_dimension", "VARCHAR"),
    ("slice_value", "VARCHAR"),
    ("n", "BIGINT"),
    ("churn_rate", "DOUBLE"),
    ("auc", "DOUBLE"),
    ("pr_auc", "DOUBLE"),
    ("lift_top_decile", "DOUBLE"),
    ("brier", "DOUBLE"),
    ("calibration_error", "DOUBLE"),
    ("mean_prediction", "DOUBLE"),
    ("baseline_auc", "DOUBLE"),
    ("baseline_pr_auc", "DOUBLE"),
    ("baseline_lift_top_decile", "DOUBLE"),
    ("computed_at", "TIMESTAMP"),
)


def _ddl(columns: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{name} {typ}" for name, typ in columns)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema ``mining`` and its tables if absent (existing rows are kept)."""
    con.execute("create schema if not exists mining")
    con.execute(
        f"create table if not exists mining.customer_score_history ({_ddl(SCORE_COLUMNS + HISTORY_EXTRA)})"
    )
    con.execute(
        """create table if not exists mining.prediction_ledger (
            prediction_id VARCHAR, customer_id VARCHAR, as_of_date DATE, model_version VARCHAR,
            churn_probability DOUBLE, churn_risk_band VARCHAR, predicted_churn BOOLEAN,
            window_end DATE, region VARCHAR, main_channel VARCHAR, pyramid_tier VARCHAR,
            recency_days DOUBLE, recorded_at TIMESTAMP,
            outcome_churned BOOLEAN, outcome_recorded_at TIMESTAMP)"""
    )
    con.execute(f"create table if not exists mining.model_quality ({_ddl(QUALITY_COLUMNS)})")


def append_history(con: duckdb.DuckDBPyConnection, scores: pd.DataFrame) -> int:
    """Append a scoring run to the history unless its (as_of_date, model_version) is already there.

    Returns the rows appended (0 when the run was already recorded).
    """
    ensure_tables(con)
    as_of = scores["as_of_date"].iloc[0]
    version = scores["model_version"].iloc[0]
    seen = con.execute(
        "select count(*) from mining.customer_score_history where as_of_date = ? and model_version = ?",
        [as_of, version],
    ).fetchone()[0]
    if seen:
        return 0
    cols = [name for name, _ in SCORE_COLUMNS + HISTORY_EXTRA]
    con.register("_scores_in", scores[cols])
    try:
        con.execute(
            f"insert into mining.customer_score_history ({', '.join(cols)}) select {', '.join(cols)} from _scores_in"
        )
    finally:
        con.unregister("_scores_in")
    return len(scores)


def refresh_customer_scores(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild ``mining.customer_scores``: each customer's latest as_of_date (its latest model run)."""
    cols = ", ".join(name for name, _ in SCORE_COLUMNS)
    con.execute(
        f"""create or replace table mining.customer_scores as
        select {cols} from mining.customer_score_history
        where as_of_date = (select max(as_of_date) from mining.customer_score_history)
        qualify row_number() over (partition by customer_id order by scored_at desc, model_version desc) = 1
        order by customer_id"""
    )
    return con.execute("select count(*) from mining.customer_scores").fetchone()[0]


_MIGRATION_SQL = """
with
runs as (
    select as_of_date, customer_id, pyramid_tier, relationship_stage
    from mining.customer_score_history
    where as_of_date = $start or as_of_date = $end
    qualify row_number() over (
        partition by as_of_date, customer_id order by scored_at desc, model_version desc) = 1
),
pairs as (
    select
        coalesce(a.customer_id, b.customer_id) as customer_id,
        coalesce(a.pyramid_tier, 'new') as from_tier,
        coalesce(b.pyramid_tier, 'gone') as to_tier,
        coalesce(a.relationship_stage, 'new') as from_stage,
        coalesce(b.relationship_stage, 'gone') as to_stage
    from (select * from runs where as_of_date = $start) as a
    full join (select * from runs where as_of_date = $end) as b using (customer_id)
)
select $start::date as period_start, $end::date as period_end, 'pyramid_tier' as dimension,
       from_tier as from_value, to_tier as to_value, count(*) as customers
from pairs group by all
union all
select $start::date, $end::date, 'relationship_stage', from_stage, to_stage, count(*)
from pairs group by all
"""


def refresh_tier_migration(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> int:
    """Maintain ``mining.tier_migration`` from consecutive scored dates in the history.

    One row per (period, dimension, from, to) with the number of customers. A customer first
    seen in the later date comes from 'new'; one no longer scored goes to 'gone'. With
    ``as_of`` only the periods that end or start on that date are (re)computed — a daily run
    touches two days of history, not all of it; without it every period is rebuilt.
    """
    con.execute("create schema if not exists mining")
    con.execute(
        """create table if not exists mining.tier_migration (period_start DATE, period_end DATE,
        dimension VARCHAR, from_value VARCHAR, to_value VARCHAR, customers BIGINT)"""
    )
    dates = [
        r[0]
        for r in con.execute(
            "select distinct as_of_date from mining.customer_score_history order by 1"
        ).fetchall()
    ]
    periods = list(zip(dates, dates[1:], strict=False))
    if as_of is None:
        con.execute("delete from mining.tier_migration")
    else:
        periods = [(a, b) for a, b in periods if as_of in (a, b)]
        # a date scored between two earlier ones splits their period
        con.execute(
            "delete from mining.tier_migration where period_start < ? and period_end > ?", [as_of, as_of]
        )
    for start, end in periods:
        con.execute(
            "delete from mining.tier_migration where period_start = ? and period_end = ?", [start, end]
        )
        con.execute(f"insert into mining.tier_migration {_MIGRATION_SQL}", {"start": start, "end": end})
    return con.execute("select count(*) from mining.tier_migration").fetchone()[0]


def record_predictions(con: duckdb.DuckDBPyConnection, scores: pd.DataFrame, window_days: int) -> int:
    """Add this run's churn predictions (active customers only) to the ledger, once per prediction."""
    ensure_tables(con)
    rows = scores[scores["churn_probability"].notna()].copy()
    if rows.empty:
        return 0
    rows["prediction_id"] = (
        rows["customer_id"] + "|" + rows["as_of_date"].astype(str) + "|" + rows["model_version"]
    )
    rows["predicted_churn"] = rows["churn_probability"] >= 0.5
    rows["window_end"] = rows["as_of_date"].iloc[0] + timedelta(days=window_days)
    cols = [
        "prediction_id",
        "customer_id",
        "as_of_date",
        "model_version",
        "churn_probability",
        "churn_risk_band",
        "predicted_churn",
        "window_end",
        "region",
        "main_channel",
        "pyramid_tier",
        "recency_days",
    ]
    con.register("_pred_in", rows[cols])
    try:
        before = con.execute("select count(*) from mining.prediction_ledger").fetchone()[0]
        con.execute(
            f"""insert into mining.prediction_ledger ({", ".join(cols)}, recorded_at)
            select {", ".join("p." + c for c in cols)}, now()::timestamp
            from _pred_in as p
            anti join mining.prediction_ledger as l using (prediction_id)"""
        )
        after = con.execute("select count(*) from mining.prediction_ledger").fetchone()[0]
    finally:
        con.unregister("_pred_in")
    return after - before


def close_outcomes(con: duckdb.DuckDBPyConnection, window_days: int, through: date | None = None) -> int:
    """Fill ``outcome_churned`` for predictions whose window [as_of, as_of + window) is over.

    A window is over when the sales data reach its last day (``through`` defaults to the last
    sales day in the marts). Outcomes use the same label as training. Returns rows closed.
    """
    ensure_tables(con)
    through = through or data_through(con)
    open_dates = [
        r[0]
        for r in con.execute(
            """select distinct as_of_date from mining.prediction_ledger
            where outcome_churned is null and window_end <= ?::date + 1 order by 1""",
            [through],
        ).fetchall()
    ]
    closed = 0
    for as_of in open_dates:
        ids = [
            r[0]
            for r in con.execute(
                "select distinct customer_id from mining.prediction_ledger "
                "where as_of_date = ? and outcome_churned is null",
                [as_of],
            ).fetchall()
        ]
        labels = build_labels(con, as_of, ids, window_days)
        frame = pd.DataFrame({"customer_id": labels.index, "churned": labels.to_numpy()})
        con.register("_outcomes", frame)
        try:
            con.execute(
                """update mining.prediction_ledger as l
                set outcome_churned = o.churned, outcome_recorded_at = now()::timestamp
                from _outcomes as o
                where l.customer_id = o.customer_id and l.as_of_date = ? and l.outcome_churned is null""",
                [as_of],
            )
        finally:
            con.unregister("_outcomes")
        closed += len(ids)
    return closed


def quality_rows(
    frame: pd.DataFrame,
    model_version: str,
    source: str,
    as_of: date,
    slices: tuple[tuple[str, str], ...] = (
        ("channel", "main_channel"),
        ("region", "region"),
        ("tier", "pyramid_tier"),
    ),
) -> pd.DataFrame:
    """Quality figures overall and per slice from ``frame`` (y, prob, baseline columns).

    ``y`` is the realized label, ``prob`` the calibrated churn probability, ``baseline`` the
    naive score (days since last purchase: the longer the silence, the likelier the churn).
    """
    groups: list[tuple[str, str, pd.DataFrame]] = [("overall", "ALL", frame)]
    for dimension, column in slices:
        for value, part in frame.groupby(column, dropna=False, sort=True):
            groups.append((dimension, "unknown" if pd.isna(value) else str(value), part))
    rows = []
    for dimension, value, part in groups:
        y = part["y"].to_numpy(dtype=int)
        model = score_ranking(y, part["prob"].to_numpy(), part["prob"].to_numpy())
        base = score_ranking(y, part["baseline"].fillna(part["baseline"].max()).to_numpy())
        rows.append(
            {
                "model_version": model_version,
                "source": source,
                "as_of_date": as_of,
                "slice_dimension": dimension,
                "slice_value": value,
                "n": int(model["n"]),
                **{k: model[k] for k in ("churn_rate", "auc", "pr_auc", "lift_top_decile", "brier")},
                "calibration_error": model["calibration_error"],
                "mean_prediction": model["mean_prediction"],
                "baseline_auc": base["auc"],
                "baseline_pr_auc": base["pr_auc"],
                "baseline_lift_top_decile": base["lift_top_decile"],
            }
        )
    out = pd.DataFrame(rows)
    out["computed_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
    return out


def write_quality(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> int:
    """Replace the quality rows of the same (model_version, source, as_of_date) with ``rows``."""
    ensure_tables(con)
    if rows.empty:
        return 0
    cols = [name for name, _ in QUALITY_COLUMNS]
    keys = rows[["model_version", "source", "as_of_date"]].drop_duplicates()
    for version, source, as_of in keys.itertuples(index=False):
        con.execute(
            "delete from mining.model_quality where model_version = ? and source = ? and as_of_date = ?",
            [version, source, as_of],
        )
    con.register("_quality_in", rows[cols])
    try:
        con.execute(
            f"insert into mining.model_quality ({', '.join(cols)}) select {', '.join(cols)} from _quality_in"
        )
    finally:
        con.unregister("_quality_in")
    return len(rows)


def refresh_ledger_quality(con: duckdb.DuckDBPyConnection) -> int:
    """Realized quality ('ledger' rows) for every (model_version, as_of_date) with closed outcomes."""
    frame = con.execute(
        """select model_version, as_of_date, outcome_churned::int as y, churn_probability as prob,
                  recency_days as baseline, region, main_channel, pyramid_tier
        from mining.prediction_ledger where outcome_churned is not null"""
    ).df()
    written = 0
    for (version, as_of), part in frame.groupby(["model_version", "as_of_date"], sort=True):
        as_of_date = pd.Timestamp(as_of).date()
        written += write_quality(con, quality_rows(part, str(version), "ledger", as_of_date))
    return written


def write_segment_profiles(
    con: duckdb.DuckDBPyConnection, profiles: pd.DataFrame, model_version: str, clusters: pd.Series
) -> int:
    """Replace ``mining.segment_profiles``: the readable profile of each behavioural cluster of
    the model that scored (label, mean behaviour at training), with ``customers`` and ``share``
    counted over this scoring's active customers (``clusters``: each scored customer's
    segment_cluster). The training sample's figures stay as ``trained_customers`` and
    ``trained_share``: at scale the clusters are fitted on a sample."""
    ensure_tables(con)
    counts = clusters[clusters != "inactive"].value_counts()
    customers = counts.reindex(profiles["label"], fill_value=0).to_numpy()
    frame = profiles.rename(columns={"customers": "trained_customers", "share": "trained_share"})
    frame.insert(2, "customers", customers)
    frame.insert(3, "share", customers / max(int(counts.sum()), 1))
    frame = frame.assign(model_version=model_version)
    con.register("_profiles_in", frame)
    try:
        con.execute(
            "create or replace table mining.segment_profiles as select * from _profiles_in order by cluster"
        )
    finally:
        con.unregister("_profiles_in")
    return len(frame)
