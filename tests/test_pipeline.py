"""The run audit and the daily pipeline: gates, idempotence, backfill = daily runs."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from warehouse import ops, pipeline
from warehouse.config import load_settings


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMWH_HOME", str(tmp_path / "home"))
    return load_settings()


def test_step_records_success_failure_and_block(settings):
    wh = settings.warehouse
    ops.start_run(wh, "r1", date(2024, 1, 3))
    with ops.step(wh, "r1", "build", date(2024, 1, 3)) as record:
        record.update(rows=42, detail={"nodes": {"model": 3}})
    with pytest.raises(ops.StepBlocked), ops.step(wh, "r1", "validate_marts", date(2024, 1, 3)):
        raise ops.StepBlocked("validate_marts: 1 critical expectation(s) failed")
    with pytest.raises(ZeroDivisionError), ops.step(wh, "r1", "score", date(2024, 1, 3)):
        1 / 0  # noqa: B018
    con = duckdb.connect(str(wh), read_only=True)
    rows = con.execute(
        "select step, status, rows, detail, error is null from ops.steps order by started_at"
    ).fetchall()
    con.close()
    assert rows == [
        ("build", "success", 42, '{"nodes": {"model": 3}}', True),
        ("validate_marts", "blocked", None, None, False),
        ("score", "failed", None, None, False),
    ]


def test_rerunning_a_step_replaces_its_row(settings):
    wh = settings.warehouse
    ops.start_run(wh, "r1", date(2024, 1, 3))
    for rows in (5, 7):
        with ops.step(wh, "r1", "build", date(2024, 1, 3)) as record:
            record["rows"] = rows
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("select step, rows from ops.steps").fetchall() == [("build", 7)]
    con.close()


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({"ingest:pos_sales": "success", "validate_raw": "blocked"}, "blocked"),
        ({"ingest:pos_sales": "success", "build": "failed"}, "failed"),
        ({"ingest:pos_sales": "success", "build": "success"}, "failed"),  # never published
    ],
)
def test_finish_derives_the_run_status_from_its_steps(settings, statuses, expected):
    wh = settings.warehouse
    ops.start_run(wh, "r1", date(2024, 1, 3))
    for name, status in statuses.items():
        if status == "success":
            with ops.step(wh, "r1", name, date(2024, 1, 3)):
                pass
        else:
            error = ops.StepBlocked("gate") if status == "blocked" else RuntimeError("boom")
            with pytest.raises(type(error)), ops.step(wh, "r1", name, date(2024, 1, 3)):
                raise error
    assert pipeline.finish(settings, "r1")["status"] == expected
    con = duckdb.connect(str(wh), read_only=True)
    status, finished = con.execute("select status, finished_at is not null from ops.runs").fetchone()
    con.close()
    assert (status, finished) == (expected, True)


def test_validations_are_recorded_per_step_and_replaced_on_rerun(settings):
    wh = settings.warehouse
    rows = [
        {"suite": "marts", "expectation": "unique", "column": "a", "success": True, "critical": True},
        {"suite": "marts", "expectation": "between", "column": "b", "success": False, "critical": False},
    ]
    ops.record_validations(wh, "r1", "validate_marts", rows)
    ops.record_validations(wh, "r1", "validate_marts", rows[:1])
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute('select expectation, "column", success, critical from ops.validations').fetchall() == [
        ("unique", "a", True, True)
    ]
    con.close()


def test_delivery_days_stop_at_the_logical_date(tmp_path):
    for source, day in [("pos_sales", "2024-01-01"), ("pos_sales", "2024-01-03"), ("voc", "2024-01-02")]:
        (tmp_path / source / f"dt={day}").mkdir(parents=True)
    (tmp_path / "voc" / "dt=garbage").mkdir()
    assert pipeline.delivery_days(tmp_path, date(2024, 1, 2)) == [date(2024, 1, 1), date(2024, 1, 2)]
    assert pipeline.delivery_days(tmp_path, date(2023, 12, 31)) == []


def test_cli_rejects_mixed_or_malformed_dates():
    from click.testing import CliRunner

    from warehouse.pipeline import command

    runner = CliRunner()
    assert (
        "either --date D" in runner.invoke(command, ["--date", "2024-01-01", "--from", "2024-01-01"]).output
    )
    assert "dates are YYYY-MM-DD" in runner.invoke(command, ["--date", "2024/01/01"]).output


MINI_MARTS = """
create schema marts;
create schema cubes;
create table marts.dim_customer as select * from (values
    (-1, 'unknown', timestamp '1900-01-01', timestamp '9999-12-31', true, 'unknown', 'unknown', 'unknown'),
    (1, 'C0000001', timestamp '2024-01-01', timestamp '2024-02-01', false, 'gold', 'client', '30-39'),
    (2, 'C0000001', timestamp '2024-02-01', timestamp '9999-12-31', true, 'gold', 'client', '30-39'),
    (3, 'C0000002', timestamp '2024-01-05', timestamp '9999-12-31', true, 'unscored', 'unscored', '40-49')
) t(customer_key, customer_id, valid_from, valid_to, is_current, pyramid_tier, relationship_stage, age_band);
create table marts.dim_date as select range::date as date_day from range(date '2024-01-01', date '2024-01-04', interval 1 day);
create table marts.dim_product as select * from (values (-1), (1)) t(product_key);
create table marts.dim_store as select * from (values (1)) t(store_key);
create table marts.dim_staff as select * from (values (1)) t(staff_key);
create table marts.dim_campaign as select * from (values (1)) t(campaign_key);
create table marts.dim_channel as select * from (values ('store', 'sales'), ('call_center', 'service')) t(channel, channel_group);
create table marts.fct_sales as select * from (values
    ('L1', 'C0000001', 2, 1, date '2024-02-02', 1000, 1, 'store', '2024-02'),
    ('L2', null, -1, 1, date '2024-02-02', 500, 1, 'web', '2024-02')
) t(sales_line_id, customer_id, customer_key, product_key, date_day, net_sales_krw, qty, sales_channel, month);
create table marts.fct_contacts as select * from (values
    ('K1', 3, 'call_center', timestamp '2024-01-06 10:00', 'phone', '2024-01')
) t(contact_id, customer_key, contact_channel, contact_at, identified_by, month);
create table marts.fct_campaign_touches as select * from (values ('T1', 'CMP0001', 3, 'control')) t(touch_id, campaign_id, customer_key, assigned_group);
create table marts.fct_feedback as select * from (values ('F1', 'nps', 9)) t(feedback_id, feedback_type, score);
create table marts.fct_customer_month as select * from (values
    ('C0000001', 2, '2024-02', date '2024-02-01')
) t(customer_id, customer_key, month, month_start);
create table cubes.cube_sales as select * from (values
    ('2024-02', 'store', 'month,sales_channel', 1000), ('ALL', 'ALL', 'ALL', 1500)
) t(month, sales_channel, grouping_level, net_sales_krw);
"""


def test_the_marts_gate_passes_a_sound_star_and_names_each_planted_break(settings, monkeypatch):
    import duckdb

    from expectations import marts
    from expectations.marts import validate_marts

    settings.warehouse.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.warehouse))
    con.execute(MINI_MARTS)
    con.close()
    clean = validate_marts(settings.warehouse, "clean", settings)
    assert (clean["success"], clean["critical_failures"], clean["failures"]) == (True, 0, [])
    # 16 suites: 15 marts tables or checks, and one cube found by its grouping_level column.
    assert clean["suites"] == 16

    con = duckdb.connect(str(settings.warehouse))
    con.execute(
        """
        insert into marts.fct_sales values ('L2', null, -1, 1, date '2024-02-03', 9, 1, 'fax', '2024-02');
        alter table marts.fct_contacts add column caller_phone varchar;
        insert into cubes.cube_sales values (null, 'web', 'sales_channel', 500), ('ALL', 'ALL', 'ALL', 9);
        update marts.dim_customer set is_current = true where customer_key = 1;
        """
    )
    con.close()
    broken = validate_marts(settings.warehouse, "broken", settings)
    assert not broken["success"]
    assert sorted(
        (f["suite"], f["expectation"], f["column"]) for f in broken["failures"] if f["critical"]
    ) == [
        ("cubes.cube_sales", "ExpectColumnValuesToNotBeNull", "month"),
        ("cubes.cube_sales", "ExpectCompoundColumnsToBeUnique", "month,sales_channel,grouping_level"),
        ("marts.dim_customer_current", "ExpectColumnValuesToBeBetween", "current_versions"),
        ("marts.fct_sales", "ExpectColumnValuesToBeInSet", "sales_channel"),
        ("marts.fct_sales", "ExpectColumnValuesToBeUnique", "sales_line_id"),
        ("marts.published_columns", "ExpectColumnValuesToNotBeInSet", "column_name"),
    ]
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    recorded = con.execute(
        "select run_id, count(*), count(*) filter (critical and not success) from marts._validation group by 1 order by 1"
    ).fetchall()
    con.close()
    total = len(broken["results"])
    assert recorded == [("broken", total, 6), ("clean", total, 0)]

    # In parts of one row (the facts at L go in parts of BATCH_ROWS): the same results
    monkeypatch.setattr(marts, "BATCH_ROWS", 1)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        suites = {s.name: s for s in marts.table_suites()}
        assert [marts._parts(con, suites[t]) for t in ("fct_sales", "dim_date", "dim_customer")] == [3, 3, 1]
    parted = validate_marts(settings.warehouse, "parted", settings)
    fields = ("suite", "expectation", "column", "success", "critical", "observed")
    assert [tuple(r[f] for f in fields) for r in parted["results"]] == [
        tuple(r[f] for f in fields) for r in broken["results"]
    ]
