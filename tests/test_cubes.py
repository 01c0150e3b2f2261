"""The OLAP cubes (dbt_project/models/cubes): grouping levels, 'ALL' members, and measures that
agree with the facts they summarise, recomputed here independently of the cube SQL."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from _built import CHURN_WINDOW_DAYS, Built, fetch, get_built

CUBE_DIMENSIONS = {
    "cube_sales": ["month", "sales_channel", "category", "region", "pyramid_tier"],
    "cube_contacts": ["month", "contact_channel", "reason", "resolution", "pyramid_tier"],
    "cube_marketing": ["campaign", "campaign_channel", "objective", "assigned_group", "month"],
    "cube_financial": ["month", "pyramid_tier", "region", "credit_grade_band"],
    "cube_customer_base": ["month", "pyramid_tier", "relationship_stage", "signup_channel"],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, landing_clean: Path) -> Built:
    return get_built(tmp_path_factory, landing_clean)


def _frame(built: Built, sql: str):
    con = duckdb.connect(str(built.published), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def test_cube_sales_levels_are_the_designed_grouping_sets(built: Built) -> None:
    levels = {r[0] for r in fetch(built.published, "select distinct kept_dimensions from cubes.cube_sales")}
    assert levels == {
        "ALL",
        "month", "sales_channel", "category", "region", "pyramid_tier",
        "month,sales_channel", "month,category", "month,region", "month,pyramid_tier",
        "sales_channel,category", "sales_channel,region", "sales_channel,pyramid_tier",
        "category,region", "category,pyramid_tier", "region,pyramid_tier",
        "month,sales_channel,category", "month,sales_channel,pyramid_tier", "month,region,pyramid_tier",
        "month,sales_channel,category,region,pyramid_tier",
    }  # fmt: skip


@pytest.mark.parametrize("cube", sorted(CUBE_DIMENSIONS))
def test_rolled_up_dimensions_hold_all_and_kept_ones_never_null(built: Built, cube: str) -> None:
    dims = CUBE_DIMENSIONS[cube]
    frame = _frame(built, f"select * from cubes.{cube}")
    assert len(frame) > 0
    for _, row in frame.drop_duplicates("grouping_level").iterrows():
        rolled = set() if row.grouping_level == "none" else set(row.grouping_level.split(","))
        assert rolled <= set(dims), (cube, row.grouping_level)
        kept = set(dims) - rolled
        level_rows = frame[frame.grouping_level == row.grouping_level]
        # kept_dimensions is the complement, in cube order ('ALL' for the grand total)
        assert set(level_rows.kept_dimensions) == {",".join(d for d in dims if d in kept) or "ALL"}
        for dim in dims:
            values = level_rows[dim]
            assert values.notna().all(), (cube, row.grouping_level, dim)
            if dim in kept:
                assert (values != "ALL").all(), (cube, row.grouping_level, dim)
            else:
                assert (values == "ALL").all(), (cube, row.grouping_level, dim)
        # grouping_id is the bitmask of rolled-up dimensions, first dimension most significant
        expected_id = sum(1 << (len(dims) - 1 - i) for i, d in enumerate(dims) if d not in kept)
        assert set(level_rows.grouping_id) == {expected_id}
        # one row per combination of kept values
        assert not level_rows.duplicated(subset=dims).any(), (cube, row.grouping_level)


def test_cube_sales_grouping_level_names_exactly_the_dimensions_holding_all(built: Built) -> None:
    """MARTS.md: grouping_level names the rolled-up dimensions ('none' when none is)."""
    dims = CUBE_DIMENSIONS["cube_sales"]
    rows = fetch(built.published, f"select {', '.join(dims)}, grouping_level from cubes.cube_sales")
    assert len(rows) > 0
    for *values, level in rows:
        holding_all = {d for d, v in zip(dims, values, strict=True) if v == "ALL"}
        named = set() if level == "none" else set(level.split(","))
        assert holding_all == named, (values, level)
        assert (level == "none") == (not holding_all), (values, level)
        if level != "none":  # named in cube order, each once
            assert level == ",".join(d for d in dims if d in named), level
    levels = {level for *_, level in rows}
    assert {"none", "month,sales_channel,category,region,pyramid_tier"} <= levels


def test_cube_sales_distinct_counts_per_level_match_the_facts(built: Built) -> None:
    sales = _frame(built, "select * from marts.fct_sales")
    positive = sales[sales.net_sales_krw > 0]
    cube = _frame(built, "select * from cubes.cube_sales")

    by_channel = cube[cube.kept_dimensions == "sales_channel"].set_index("sales_channel")
    expected_buyers = positive.groupby("sales_channel").customer_id.nunique()
    expected_orders = positive.groupby("sales_channel").order_id.nunique()
    for channel in sales.sales_channel.unique():
        assert by_channel.loc[channel, "buyers"] == expected_buyers.get(channel, 0)
        assert by_channel.loc[channel, "orders"] == expected_orders.get(channel, 0)
        assert (
            by_channel.loc[channel, "net_sales_krw"]
            == sales[sales.sales_channel == channel].net_sales_krw.sum()
        )

    # a POS order is one store's receipt: receipt numbers restart in every store
    store_orders = sales[sales.sales_channel == "store"].groupby("order_id").store_id.nunique()
    assert len(store_orders) > 0 and (store_orders == 1).all()
    products = _frame(built, "select product_key, category from marts.dim_product")
    by_category = cube[cube.kept_dimensions == "category"].set_index("category")
    positive_categories = positive.merge(products, on="product_key", how="left").fillna(
        {"category": "unknown"}
    )
    expected = positive_categories.groupby("category").order_id.nunique()
    assert by_category.orders.to_dict() == expected.to_dict()

    total = cube[cube.kept_dimensions == "ALL"].iloc[0]
    assert total.grouping_level == "month,sales_channel,category,region,pyramid_tier"
    assert total.buyers == positive.customer_id.nunique()
    assert total.orders == positive.order_id.nunique()
    assert total.net_sales_krw == sales.net_sales_krw.sum()
    assert total.margin_krw == sales.margin_krw.sum()
    # buyers is non-additive: customers buy in several channels, so the channel rows overcount
    assert by_channel.buyers.sum() > total.buyers


def test_cube_sales_tier_is_unscored_before_any_scoring(built: Built) -> None:
    tiers = {
        r[0]
        for r in fetch(
            built.published,
            "select distinct pyramid_tier from cubes.cube_sales where kept_dimensions = 'pyramid_tier'",
        )
    }
    # members are 'unscored' until mining.customer_scores exists; non-member sales are 'unknown'
    assert tiers == {"unscored", "unknown"}


def test_cube_marketing_uplift_and_roi_match_the_touches(built: Built) -> None:
    touches = _frame(built, "select * from marts.fct_campaign_touches")
    cube = _frame(built, "select * from cubes.cube_marketing")
    per_campaign = cube[cube.kept_dimensions == "campaign,campaign_channel,objective"].set_index("campaign")
    assert set(per_campaign.index) == set(touches.campaign_id)
    for campaign, group in touches.groupby("campaign_id"):
        treatment = group[group.assigned_group == "treatment"]
        control = group[group.assigned_group == "control"]
        row = per_campaign.loc[campaign]
        assert row.targeted == len(group)
        assert row.converted == group.converted.sum()
        if len(treatment) and len(control):
            expected = treatment.converted.mean() - control.converted.mean()
            assert row.uplift == pytest.approx(round(expected, 4), abs=1e-4)
        cost = group.cost_krw.fillna(0).sum()
        if cost:
            expected_roi = (group.attributed_sales_krw.fillna(0).sum() - cost) / cost
            assert row.roi == pytest.approx(round(expected_roi, 4), abs=1e-4)
    # uplift compares the groups, so it is only defined where assigned_group is rolled up
    assert cube[cube.assigned_group != "ALL"].uplift.isna().all()
    assert (
        cube[(cube.assigned_group == "ALL") & (cube.control_targeted > 0) & (cube.treatment_targeted > 0)]
        .uplift.notna()
        .all()
    )


def _purchase_days(built: Built) -> tuple[dict[str, list[date]], date]:
    """Each customer's purchase days (one per order with positive net sales, sorted), and the
    last day with sales data."""
    sales = _frame(built, "select customer_id, order_id, date_day, net_sales_krw from marts.fct_sales")
    members = sales[sales.customer_id.notna()]
    orders = members.groupby(["customer_id", "order_id"]).agg(
        day=("date_day", "min"), net=("net_sales_krw", "sum")
    )
    purchases = orders[orders.net > 0].reset_index()
    purchases["day"] = purchases.day.map(lambda d: d.date() if hasattr(d, "date") else d)
    by_customer = purchases.groupby("customer_id").day.apply(sorted).to_dict()
    data_end = max(d.date() if hasattr(d, "date") else d for d in sales.date_day)
    return by_customer, data_end


def _month_end(month: str) -> date:
    year, number = map(int, month.split("-"))
    return date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)


def test_customer_lifecycle_month_rows_match_purchase_history(built: Built) -> None:
    """Each active customer month's purchase dates and count, recomputed from fct_sales."""
    by_customer, data_end = _purchase_days(built)
    months = sorted({d.strftime("%Y-%m") for days in by_customer.values() for d in days})
    expected = set()
    for customer, days in by_customer.items():
        for month in months:
            as_of = min(_month_end(month), data_end)
            before = [d for d in days if d <= as_of]
            if not before or (as_of - before[-1]).days >= 365:
                continue
            after = [d for d in days if d > as_of]
            in_month = sum(d.strftime("%Y-%m") == month for d in days)
            expected.add((customer, month, as_of, days[0], before[-1], after[0] if after else None, in_month))
    rows = fetch(
        built.published,
        "select customer_id, month, as_of_date, first_purchase_date, last_purchase_date,"
        " next_purchase_date, purchases from cubes.customer_lifecycle_month",
    )
    assert len(rows) == len(expected) > 100
    assert set(rows) == expected


def test_cube_customer_base_matches_purchase_history(built: Built) -> None:
    """active / new / churned recomputed from fct_sales with the MARTS.md definitions."""
    by_customer, data_end = _purchase_days(built)
    closed = dict(
        fetch(
            built.published,
            "select customer_id, closed_at from marts.dim_customer where is_current and closed_at is not null",
        )
    )
    # month is never rolled up: the grand total over the other dimensions is one row per month
    cube = _frame(
        built,
        "select * from cubes.cube_customer_base"
        " where grouping_level = 'pyramid_tier,relationship_stage,signup_channel'",
    )
    assert set(cube.kept_dimensions) == {"month"}
    assert len(cube) > 0
    for _, row in cube.iterrows():
        as_of = min(_month_end(row.month), data_end)
        active = {
            c
            for c, days in by_customer.items()
            if any(as_of - timedelta(days=364) <= d <= as_of for d in days)
        }
        new = {c for c in active if by_customer[c][0].strftime("%Y-%m") == row.month}
        assert row.active == len(active), row.month
        assert row.new == len(new), row.month
        if as_of + timedelta(days=CHURN_WINDOW_DAYS) <= data_end:
            churned = {
                c
                for c in active
                if not any(as_of < d <= as_of + timedelta(days=CHURN_WINDOW_DAYS) for d in by_customer[c])
                or (c in closed and as_of < closed[c] <= as_of + timedelta(days=CHURN_WINDOW_DAYS))
            }
            assert row.churned == len(churned), row.month
            assert row.retained == len(active) - len(churned), row.month
        else:
            assert pd.isna(row.churned) and pd.isna(row.retained)  # NULL while the window is open


def test_cube_financial_and_contacts_reconcile(built: Built) -> None:
    months = _frame(built, "select * from marts.fct_customer_month")
    fin = _frame(built, "select * from cubes.cube_financial")
    total = fin[fin.kept_dimensions == "ALL"].iloc[0]
    assert total.profit_krw == months.profit_krw.fillna(0).sum()
    assert total.revenue_krw == months.revenue_krw.fillna(0).sum()
    per_month = fin[fin.kept_dimensions == "month"].set_index("month")
    expected = months.groupby("month").customer_id.nunique()
    assert per_month.customers.to_dict() == expected.to_dict()
    # sets without month count a customer once across months, in each region it lived in
    assert total.customers == months.customer_id.nunique()
    regions = _frame(built, "select customer_key, region from marts.dim_customer")
    months = months.merge(regions, on="customer_key", how="left").fillna({"region": "unknown"})
    months["delinquent"] = months.days_past_due.fillna(0) >= 30
    for dims in (["region"], ["month", "region"]):
        level = fin[fin.kept_dimensions == ",".join(dims)].set_index(dims)
        customers = months.groupby(dims).customer_id.nunique()
        delinquent = months[months.delinquent].groupby(dims).customer_id.nunique()
        assert level.customers.to_dict() == customers.to_dict()
        assert (
            level.delinquent_customers.to_dict()
            == delinquent.reindex(customers.index, fill_value=0).to_dict()
        )

    contacts = _frame(built, "select * from marts.fct_contacts")
    cube = _frame(built, "select * from cubes.cube_contacts")
    by_channel = cube[cube.kept_dimensions == "contact_channel"].set_index("contact_channel")
    assert by_channel.contacts.to_dict() == contacts.groupby("contact_channel").size().to_dict()
    assert (
        by_channel.customers.to_dict() == contacts.groupby("contact_channel").customer_id.nunique().to_dict()
    )
    complaints = contacts.groupby("contact_channel").is_complaint.sum()
    for channel, row in by_channel.iterrows():
        assert row.complaints == complaints[channel]
        assert row.complaint_rate == pytest.approx(round(complaints[channel] / row.contacts, 4), abs=1e-4)


def _tampered_data_test(built: Built, tmp_path: Path, test: str, tamper: str) -> list[tuple[str, int]]:
    """(status, failures) of the dbt data test `test` on a copy of the built warehouse, before
    and after the copy is changed by the SQL `tamper`."""
    from dataclasses import replace

    from warehouse.build import run_dbt

    copy = tmp_path / "tampered.duckdb"
    shutil.copyfile(built.warehouse, copy)
    settings = replace(built.settings, warehouse=copy, home=tmp_path)

    def run() -> tuple[str, int]:
        results = run_dbt(settings, ["test", "--select", test]).result.results
        [result] = [r for r in results if r.node.resource_type == "test"]
        return str(result.status).lower(), result.failures

    before = run()
    con = duckdb.connect(str(copy))
    con.execute(tamper)
    con.close()
    return [before, run()]


def test_reconciliation_data_test_fails_on_a_tampered_cube(built: Built, tmp_path) -> None:
    """The dbt data test that reconciles cube_sales with fct_sales catches a wrong cube row."""
    [before, after] = _tampered_data_test(
        built,
        tmp_path,
        "assert_cube_sales_reconciles_to_fct_sales",
        "update cubes.cube_sales set net_sales_krw = net_sales_krw + 1"
        " where kept_dimensions = 'month' and month = (select min(month) from cubes.cube_sales where month <> 'ALL')",
    )
    assert before[0] == "pass"
    assert after[0] == "fail"


def test_same_within_data_test_fails_on_an_order_split_across_channels(built: Built, tmp_path) -> None:
    """fct_sales' same_within test (cube_sales counts an order once per cell) catches an order
    whose lines disagree on their channel, and passes on the built rows."""
    assert _tampered_data_test(
        built,
        tmp_path,
        "same_within_fct_sales_month__sales_channel__customer_key__order_id",
        """update marts.fct_sales
        set sales_channel = case when sales_channel = 'store' then 'web' else 'store' end
        where sales_line_id = (
            select min(sales_line_id) from marts.fct_sales
            where order_id = (select min(order_id) from marts.fct_sales group by order_id having count(*) > 1 limit 1)
        )""",
    ) == [("pass", 0), ("fail", 1)]


def test_every_cube_level_equals_its_grouping_set_computed_alone(built: Built) -> None:
    """Each level of each cube, computed in one GROUPING SETS query with all the others, equals
    the same set computed alone (the bench's cube floor): the shortcuts that count rows or
    flagged lines instead of distinct values hold set by set."""
    import json

    from warehouse.bench import cubes_over_facts, floor_query

    manifest = json.loads((built.settings.home / "dbt" / "target" / "manifest.json").read_text())
    compiled = {
        name: sql
        for name, sql in cubes_over_facts(manifest, built.settings).items()
        if name in CUBE_DIMENSIONS
    }
    # cube_sales and cube_contacts read their rows from their state, the others the facts
    assert all("cube_state" not in sql for sql in compiled.values())
    assert set(compiled) == set(CUBE_DIMENSIONS)
    catalog = fetch(built.warehouse, "select cube, name from cubes.cube_catalog where kind = 'measure'")
    con = duckdb.connect(str(built.warehouse), read_only=True)
    try:
        for cube, sql in compiled.items():
            measures = [name for c, name in catalog if c == cube]
            levels = [
                r[0] for r in con.execute(f"select distinct kept_dimensions from cubes.{cube}").fetchall()
            ]
            for level in levels:
                by = [] if level == "ALL" else level.split(",")
                question = {"by": by, "where": {}, "measures": measures, "level": level}
                alone = con.execute(*floor_query(sql, question)).fetchall()
                columns = ", ".join(f'"{c}"' for c in [*by, *measures])
                order = f" order by {', '.join(by)}" if by else ""
                together = con.execute(
                    f"select {columns} from cubes.{cube} where kept_dimensions = ?{order}", [level]
                ).fetchall()
                assert len(together) > 0 and alone == together, (cube, level)
    finally:
        con.close()
