"""The marts gate: the Great Expectations suite a build must pass before anything is published.

BI tools join facts to dimensions and slice cubes; what breaks them silently is a duplicated
key (double-counted sales), a NULL foreign key (rows lost in an inner join), an unexpected
channel value (a slice that sums to less than the total), a NULL in a cube dimension (a
rolled-up row that looks like a missing one) or a personal field leaking out of the raw layer.
Those expectations are critical: one failure blocks publish. Plausibility checks (shares of
unknown members, ranges) are warnings: recorded in ``marts._validation`` / ``ops.validations``,
never blocking.

Each table is one suite ``marts.<table>`` run through ``expectations.runner.run_suite`` on a
DataFrame of only the columns its expectations need. A table of more than BATCH_ROWS rows (the
facts at L) is validated in parts split by a hash of its unique key, with the results one batch
would give (``expectations.runner.run_suite_in_parts``), so memory stays bounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expectations.runner import (
    BATCH_ROWS,
    DUCKDB_MEMORY,
    ExpectationSpec,
    columns_read,
    fetch_frame,
    gate_summary,
    parts_by_key,
    run_suite,
    run_suite_in_parts,
)
from warehouse.contracts import SOURCES

MONTH_REGEX = r"^\d{4}-\d{2}$"
SALES_CHANNELS = ["store", "web", "app"]
IDENTIFIED_BY = ["id", "phone", "login", "anonymous"]
FEEDBACK_TYPES = ["voc", "nps", "csat"]
PYRAMID_TIERS = ["platinum", "gold", "iron", "lead", "unscored", "unknown"]
STAGES = ["prospect", "customer", "client", "advocate", "partner", "unscored", "unknown"]
# Personal and free-text columns of the sources: they stay in raw and never reach a BI schema.
PRIVATE_COLUMNS = sorted({c for s in SOURCES.values() for c in (*s.pii, *s.free_text)})
BI_SCHEMAS = ("marts", "cubes", "mining")


def crit(expectation: str, **kwargs: Any) -> ExpectationSpec:
    return ExpectationSpec(expectation, kwargs, critical=True)


def warn(expectation: str, **kwargs: Any) -> ExpectationSpec:
    return ExpectationSpec(expectation, kwargs, critical=False)


def unique_key(column: str) -> list[ExpectationSpec]:
    return [
        crit("ExpectColumnValuesToNotBeNull", column=column),
        crit("ExpectColumnValuesToBeUnique", column=column),
    ]


def not_null(*columns: str) -> list[ExpectationSpec]:
    return [crit("ExpectColumnValuesToNotBeNull", column=c) for c in columns]


@dataclass(frozen=True)
class TableSuite:
    """One suite: the SQL giving the frame (default: the listed columns of the table), and specs."""

    name: str
    specs: list[ExpectationSpec]
    sql: str | None = None
    columns: list[str] = field(default_factory=list)


def table_suites() -> list[TableSuite]:
    """The expectations on the star schema (MARTS.md), table by table."""
    non_empty = crit("ExpectTableRowCountToBeBetween", min_value=1)
    return [
        TableSuite(
            "dim_customer",
            [
                non_empty,
                *unique_key("customer_key"),
                *not_null("customer_id", "valid_from", "valid_to", "is_current"),
                crit("ExpectCompoundColumnsToBeUnique", column_list=["customer_id", "valid_from"]),
                crit("ExpectColumnValuesToBeInSet", column="pyramid_tier", value_set=PYRAMID_TIERS),
                crit("ExpectColumnValuesToBeInSet", column="relationship_stage", value_set=STAGES),
                warn("ExpectColumnValuesToNotBeNull", column="age_band", mostly=0.95),
            ],
        ),
        TableSuite(
            "dim_customer_current",
            # SCD2: exactly one current version per customer.
            [crit("ExpectColumnValuesToBeBetween", column="current_versions", min_value=1, max_value=1)],
            sql="select customer_id, count(*) filter (where is_current) as current_versions"
            " from marts.dim_customer group by customer_id",
        ),
        TableSuite("dim_date", [non_empty, *unique_key("date_day")]),
        TableSuite("dim_product", [non_empty, *unique_key("product_key")]),
        TableSuite("dim_store", [*unique_key("store_key")]),
        TableSuite("dim_staff", [*unique_key("staff_key")]),
        TableSuite("dim_campaign", [*unique_key("campaign_key")]),
        TableSuite("dim_channel", [non_empty, *unique_key("channel"), *not_null("channel_group")]),
        TableSuite(
            "fct_sales",
            [
                non_empty,
                *unique_key("sales_line_id"),
                *not_null("customer_key", "product_key", "date_day", "net_sales_krw", "qty"),
                crit("ExpectColumnValuesToBeInSet", column="sales_channel", value_set=SALES_CHANNELS),
                crit("ExpectColumnValuesToMatchRegex", column="month", regex=MONTH_REGEX),
            ],
        ),
        TableSuite(
            "fct_sales_members",
            # A member's sale should find its customer version; a few may not (late deliveries).
            [warn("ExpectColumnValuesToNotBeInSet", column="customer_key", value_set=[-1], mostly=0.99)],
            sql="select customer_key from marts.fct_sales where customer_id is not null",
        ),
        TableSuite(
            "fct_contacts",
            [
                non_empty,
                *unique_key("contact_id"),
                *not_null("customer_key", "contact_channel", "contact_at"),
                crit("ExpectColumnValuesToBeInSet", column="identified_by", value_set=IDENTIFIED_BY),
                crit("ExpectColumnValuesToMatchRegex", column="month", regex=MONTH_REGEX),
            ],
        ),
        TableSuite(
            "fct_campaign_touches",
            [
                *unique_key("touch_id"),
                *not_null("campaign_id", "customer_key"),
                crit(
                    "ExpectColumnValuesToBeInSet", column="assigned_group", value_set=["treatment", "control"]
                ),
            ],
        ),
        TableSuite(
            "fct_feedback",
            [
                *unique_key("feedback_id"),
                crit("ExpectColumnValuesToBeInSet", column="feedback_type", value_set=FEEDBACK_TYPES),
                warn("ExpectColumnValuesToBeBetween", column="score", min_value=0, max_value=10),
            ],
        ),
        TableSuite(
            "fct_customer_month",
            [
                non_empty,
                crit("ExpectCompoundColumnsToBeUnique", column_list=["customer_id", "month"]),
                *not_null("customer_key", "month_start"),
                crit("ExpectColumnValuesToMatchRegex", column="month", regex=MONTH_REGEX),
            ],
        ),
        TableSuite(
            "published_columns",
            [crit("ExpectColumnValuesToNotBeInSet", column="column_name", value_set=PRIVATE_COLUMNS)],
            # Customer-level tables only (a catalog's "name" column names a cube, not a person).
            sql="""
            select table_schema || '.' || table_name as table_name, column_name
            from information_schema.columns
            where table_schema in ('marts', 'cubes', 'mining') and not starts_with(table_name, '_')
              and (table_schema, table_name) in (
                  select (table_schema, table_name) from information_schema.columns
                  where column_name in ('customer_id', 'customer_key'))
            """,
        ),
    ]


def cube_suites(con) -> list[TableSuite]:
    """Each cube: no NULL dimension (rolled-up is 'ALL'), and each cell exactly once.

    Dimensions are the cube's text columns (measures are numbers), so a cube added later is
    checked without listing it here.
    """
    cubes = con.execute(
        """
        select table_name, list(column_name order by ordinal_position) filter (where data_type = 'VARCHAR')
        from information_schema.columns
        where table_schema = 'cubes'
        group by table_name
        having bool_or(column_name = 'grouping_level')
        order by table_name
        """
    ).fetchall()
    suites = []
    for table, dims in cubes:
        specs = [crit("ExpectTableRowCountToBeBetween", min_value=1), *not_null(*dims)]
        specs.append(crit("ExpectCompoundColumnsToBeUnique", column_list=list(dims)))
        suites.append(TableSuite(table, specs, sql=f'select {", ".join(dims)} from cubes."{table}"'))
    return suites


def _unique_key(suite: TableSuite) -> list[str]:
    """The columns a suite expects unique: rows sharing them must meet in one part."""
    for spec in suite.specs:
        if spec.expectation == "ExpectColumnValuesToBeUnique":
            return [spec.kwargs["column"]]
        if spec.expectation == "ExpectCompoundColumnsToBeUnique":
            return list(spec.kwargs["column_list"])
    return []


def _parts(con, suite: TableSuite) -> int:
    """How many parts a table's suite is validated in: 1 unless the table is big and the suite
    can be split (a plain table with a unique key and no `mostly` threshold)."""
    if suite.sql or not _unique_key(suite) or any("mostly" in spec.kwargs for spec in suite.specs):
        return 1
    rows = con.execute(f'select count(*) from marts."{suite.name}"').fetchone()[0]
    return max(1, math.ceil(rows / BATCH_ROWS))


def _frame_sql(suite: TableSuite) -> str:
    if suite.sql:
        return suite.sql
    columns = ", ".join(f'"{c}"' for c in columns_read(suite.specs)) or "*"
    return f'select {columns} from marts."{suite.name}"'


def validate_marts(warehouse: Path, run_id: str, settings: Any) -> dict:
    """Run every marts and cubes suite on the build warehouse for ``run_id``.

    Returns ``{"success", "critical_failures", "warnings", "suites", "failures", "results"}``;
    ``success`` is False when a critical expectation failed. A table a suite names that the
    build did not produce is itself a critical failure (the contract of MARTS.md is broken).
    """
    import duckdb

    con = duckdb.connect(str(warehouse))
    results: list[dict] = []
    try:
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY}'")
        con.execute("create schema if not exists marts")
        con.execute(
            "create table if not exists marts._validation (run_id varchar, suite varchar,"
            ' expectation varchar, "column" varchar, success boolean, critical boolean,'
            " observed varchar, validated_at timestamp)"
        )
        con.execute("delete from marts._validation where run_id = ?", [run_id])
        suites = table_suites() + cube_suites(con)
        for suite in suites:
            prefix = "cubes" if suite.name.startswith("cube") else "marts"
            name = f"{prefix}.{suite.name}"
            try:
                parts = _parts(con, suite)
                frame = fetch_frame(con, _frame_sql(suite)) if parts == 1 else None
            except duckdb.Error as error:
                results.append(_missing(run_id, name, error))
                continue
            if frame is not None:
                results += run_suite(frame, name, suite.specs, run_id, con, "marts", settings.validation)
                del frame
            else:
                frames = parts_by_key(con, _frame_sql(suite), _unique_key(suite), parts)
                results += run_suite_in_parts(
                    frames, name, suite.specs, run_id, con, "marts", settings.validation
                )[0]
        if missing := [r for r in results if r["expectation"] == "TableExists"]:
            con.executemany(
                "insert into marts._validation values (?, ?, ?, ?, ?, ?, ?, ?)",
                [list(r.values()) for r in missing],
            )
    finally:
        con.close()
    return {**gate_summary(results), "results": results}


def _missing(run_id: str, suite: str, error: Exception) -> dict:
    from datetime import datetime

    return {
        "run_id": run_id,
        "suite": suite,
        "expectation": "TableExists",
        "column": None,
        "success": False,
        "critical": True,
        "observed": f"error: {str(error).splitlines()[0][:300]} (rebuild the marts: `crmwh build`)",
        "validated_at": datetime.now(),
    }
