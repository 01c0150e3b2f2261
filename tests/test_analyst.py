"""``crmwh sql`` and ``crmwh cube`` over the published warehouse: answers equal the same
questions asked of the facts, names are checked, values are bound, the file stays read-only."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from _built import Built, fetch, get_built
from click.testing import CliRunner

from warehouse.analyst import connect_readonly, cube_command, interactive, sql_command
from warehouse.publish import file_sha256


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, landing_clean: Path) -> Built:
    return get_built(tmp_path_factory, landing_clean)


def _invoke(command, args: list[str], built: Built):
    result = CliRunner().invoke(command, [*args, "--database", str(built.published)])
    return result


def _json(command, args: list[str], built: Built) -> list[dict]:
    result = _invoke(command, [*args, "--format", "json"], built)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cube_slice_equals_group_by_on_the_facts(built: Built) -> None:
    rows = _json(
        cube_command,
        ["cube_sales", "--by", "month,sales_channel", "--measure", "net_sales_krw,buyers"],
        built,
    )
    expected = fetch(
        built.published,
        "select month, sales_channel, sum(net_sales_krw), count(distinct case when net_sales_krw > 0 then customer_id end)"
        " from marts.fct_sales group by all order by all",
    )
    assert [(r["month"], r["sales_channel"], r["net_sales_krw"], r["buyers"]) for r in rows] == [
        (m, c, int(s), int(b)) for m, c, s, b in expected
    ]


def test_cube_dice_with_filters_and_pivot(built: Built) -> None:
    args = [
        "cube_sales",
        "--by",
        "month",
        "--where",
        "pyramid_tier=unscored",
        "--measure",
        "net_sales_krw",
        "--pivot",
        "sales_channel",
    ]
    rows = _json(cube_command, args, built)
    expected = fetch(
        built.published,
        "select s.month, s.sales_channel, sum(s.net_sales_krw) from marts.fct_sales s"
        " join marts.dim_customer c using (customer_key) where c.pyramid_tier = 'unscored' group by all",
    )
    wide: dict[str, dict[str, int]] = {}
    for month, channel, value in expected:
        wide.setdefault(month, {})[channel] = int(value)
    assert {r["month"]: {k: v for k, v in r.items() if k != "month" and v is not None} for r in rows} == wide


def test_cube_rolls_up_additive_measures_from_a_finer_level(built: Built) -> None:
    # month × category × region is not materialised: net sales are summed from the finest level
    result = _invoke(
        cube_command,
        ["cube_sales", "--by", "month,category,region", "--measure", "net_sales_krw", "--format", "csv"],
        built,
    )
    assert result.exit_code == 0, result.output
    assert "summed from grouping level 'month,sales_channel,category,region,pyramid_tier'" in result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "month,category,region,net_sales_krw"
    expected = fetch(
        built.published,
        "select s.month, coalesce(p.category, 'unknown'), coalesce(c.region, 'unknown'), sum(s.net_sales_krw)"
        " from marts.fct_sales s left join marts.dim_product p using (product_key)"
        " left join marts.dim_customer c using (customer_key) group by all order by all",
    )
    assert lines[1:] == [f"{m},{cat},{reg},{int(v)}" for m, cat, reg, v in expected]


def test_cube_refuses_to_sum_a_non_additive_measure(built: Built) -> None:
    result = _invoke(
        cube_command, ["cube_sales", "--by", "month,category,region", "--measure", "buyers"], built
    )
    assert result.exit_code != 0
    assert "non-additive measures (buyers)" in result.output
    assert "month,sales_channel,category" in result.output  # names the levels that can answer


def test_cube_checks_names_and_binds_values(built: Built) -> None:
    bad_dim = _invoke(cube_command, ["cube_sales", "--by", "mnth"], built)
    assert bad_dim.exit_code != 0 and "no dimension 'mnth' (did you mean 'month'?)" in bad_dim.output
    bad_measure = _invoke(cube_command, ["cube_sales", "--by", "month", "--measure", "net_sales"], built)
    assert bad_measure.exit_code != 0 and "no measure 'net_sales'" in bad_measure.output
    bad_cube = _invoke(cube_command, ["cube_sale"], built)
    assert bad_cube.exit_code != 0 and "did you mean 'cube_sales'" in bad_cube.output
    before = file_sha256(built.published)
    hostile = "store'; drop table cubes.cube_sales; --"
    rows = _json(
        cube_command,
        ["cube_sales", "--by", "sales_channel", "--where", f"sales_channel={hostile}"],
        built,
    )
    assert rows == []
    assert file_sha256(built.published) == before


def test_sql_command_outputs_csv_json_and_table(built: Built) -> None:
    query = "select sales_channel, count(*) as lines from marts.fct_sales group by 1 order by 1"
    expected = fetch(built.published, query)
    as_json = _json(sql_command, ["-c", query], built)
    assert [(r["sales_channel"], r["lines"]) for r in as_json] == expected
    as_csv = _invoke(sql_command, ["-c", query, "--format", "csv"], built)
    assert as_csv.stdout.strip().splitlines() == ["sales_channel,lines", *(f"{c},{n}" for c, n in expected)]
    table = _invoke(sql_command, ["-c", query], built)
    assert table.stdout.strip().splitlines()[-1] == f"({len(expected)} rows)"


def test_sql_is_read_only_and_cannot_touch_other_files(built: Built, tmp_path) -> None:
    before = file_sha256(built.published)
    write = _invoke(sql_command, ["-c", "delete from marts.fct_sales"], built)
    assert write.exit_code != 0 and "read-only" in write.output
    outside = _invoke(sql_command, ["-c", f"copy (select 1) to '{tmp_path / 'leak.csv'}'"], built)
    assert outside.exit_code != 0 and not (tmp_path / "leak.csv").exists()
    assert file_sha256(built.published) == before


def test_interactive_shell_runs_a_piped_script(built: Built) -> None:
    script = io.StringIO(
        "select count(*) as n\n  from marts.fct_sales;\nselect nope;\n.cubes\n.quit\nselect 1;\n"
    )
    out = io.StringIO()
    con = connect_readonly(built.published)
    try:
        failures = interactive(con, "csv", stdin=script, out=out)
    finally:
        con.close()
    (n,) = fetch(built.published, "select count(*) from marts.fct_sales")[0]
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["n", str(n)]
    assert failures == 1 and lines[2].startswith("Error: ")
    assert "cube_sales" in out.getvalue()  # .cubes listed the catalog; .quit stopped before select 1
    assert lines[-1] != "1"


def test_default_database_is_the_published_link(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMWH_HOME", str(built.settings.home))
    result = CliRunner().invoke(
        sql_command, ["-c", "select count(*) from cubes.cube_catalog", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    (n,) = fetch(built.published, "select count(*) from cubes.cube_catalog")[0]
    assert result.stdout.splitlines() == ["count_star()", str(n)]


def test_cube_answers_a_hierarchy_level_with_non_additive_measures(built: Built) -> None:
    # campaign determines campaign_channel and objective: the finer level has one row per campaign
    rows = _json(cube_command, ["cube_marketing", "--by", "campaign", "--measure", "targeted,uplift"], built)
    expected = fetch(
        built.published,
        "select campaign, targeted, uplift from cubes.cube_marketing"
        " where kept_dimensions = 'campaign,campaign_channel,objective' order by campaign",
    )
    assert [(r["campaign"], r["targeted"], r["uplift"]) for r in rows] == expected
    assert len(rows) == len({r["campaign"] for r in rows}) > 0


def test_a_connection_reads_the_cube_catalog_once(built: Built) -> None:
    from warehouse.analyst import cube_query, cubes_of, load_cubes

    con = connect_readonly(built.published)
    try:
        first = cubes_of(con)
        assert first == load_cubes(con) and "cube_sales" in first
        answer = cube_query(con, "cube_sales", ["sales_channel"], measures=["net_sales_krw"])
        assert cubes_of(con) is first  # the question used the catalog already read
        total = con.execute("select sum(net_sales_krw) from marts.fct_sales").fetchone()[0]
        assert sum(r[1] for r in answer.rows) == total
    finally:
        con.close()
    other = connect_readonly(built.published)
    try:
        assert cubes_of(other) is not first and cubes_of(other) == first
    finally:
        other.close()
