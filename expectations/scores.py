"""The Great Expectations suite for ``mining.customer_scores``: the gate before scores reach the cubes.

Why a suite on model output: a scoring bug (a probability of 1.3, a tier nobody defined, two
rows for a customer) would flow silently into every cube sliced by tier or stage. Critical
expectations are the column contract of MARTS.md; warnings flag a drift worth a look (a mean
churn probability pinned at 0 or 1 usually means the features broke, not the customers).
Results land in ``mining._validation`` through the shared runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from expectations.runner import ExpectationSpec, fetch_frame, gate_summary, run_suite

if TYPE_CHECKING:
    import duckdb

    from warehouse.config import Settings

SUITE = "mining.customer_scores"
RISK_BANDS = ["high", "medium", "low", "inactive", "closed"]


def score_expectations() -> list[ExpectationSpec]:
    from mining.segments import RFM_SEGMENTS, STAGES, TIERS

    def crit(name: str, **kwargs: Any) -> ExpectationSpec:
        return ExpectationSpec(name, kwargs, critical=True)

    return [
        crit("ExpectColumnValuesToNotBeNull", column="customer_id"),
        crit("ExpectColumnValuesToBeUnique", column="customer_id"),
        crit("ExpectColumnValuesToNotBeNull", column="as_of_date"),
        crit("ExpectColumnValuesToNotBeNull", column="model_version"),
        crit("ExpectColumnValuesToBeBetween", column="churn_probability", min_value=0, max_value=1),
        crit("ExpectColumnValuesToBeInSet", column="churn_risk_band", value_set=RISK_BANDS),
        crit("ExpectColumnValuesToBeBetween", column="p_alive", min_value=0, max_value=1),
        crit("ExpectColumnValuesToBeBetween", column="expected_purchases_90d", min_value=0),
        crit("ExpectColumnValuesToBeBetween", column="clv_12m_krw", min_value=0),
        crit(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            column_A="clv_12m_p90_krw",
            column_B="clv_12m_p10_krw",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
        crit("ExpectColumnValuesToNotBeNull", column="pyramid_tier"),
        crit("ExpectColumnValuesToBeInSet", column="pyramid_tier", value_set=list(TIERS)),
        crit("ExpectColumnValuesToNotBeNull", column="relationship_stage"),
        crit("ExpectColumnValuesToBeInSet", column="relationship_stage", value_set=list(STAGES)),
        crit("ExpectColumnValuesToBeInSet", column="rfm_segment", value_set=list(RFM_SEGMENTS)),
        crit("ExpectColumnValuesToNotBeNull", column="segment_cluster"),
        ExpectationSpec(
            "ExpectColumnMeanToBeBetween",
            {"column": "churn_probability", "min_value": 0.01, "max_value": 0.99},
        ),
    ]


def validate_scores(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> dict[str, Any]:
    """Run the suite on ``mining.customer_scores``; returns success and failure counts."""
    df = fetch_frame(con, "select * from mining.customer_scores")
    rows = run_suite(
        df, SUITE, score_expectations(), run_id, con, schema="mining", validation_dir=settings.validation
    )
    return {**gate_summary(rows), "rows": len(df)}
