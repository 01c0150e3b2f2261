"""Publish: a complete read-only copy, swapped atomically, previous versions kept for rollback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from warehouse.config import load_settings
from warehouse.publish import (
    PublishError,
    current_version,
    file_sha256,
    list_versions,
    publish,
    published_path,
    rollback,
    version_file,
)


def make_build(path: Path, marker: int) -> None:
    """A small build warehouse: what publish reads (raw and staging must stay behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(
        f"""
        create schema if not exists raw;
        create schema if not exists staging;
        create schema if not exists marts;
        create schema if not exists cubes;
        create schema if not exists mining;
        create or replace table raw.customers as
            select 'C0000001' as customer_id, 'Kim' as name, '010-1234-5678' as phone;
        create or replace view staging.stg_customers as select customer_id from raw.customers;
        create or replace table marts.dim_customer as
            select range as customer_key, 'C' || lpad(range::varchar, 7, '0') as customer_id
            from range(-1, 3);
        create or replace table marts.fct_sales as
            select range as sales_line_id, {int(marker):d} as marker, range * 1000 as net_sales_krw from range(5);
        create or replace view marts.v_big_sales as
            select * from marts.fct_sales where net_sales_krw >= 3000;
        create or replace table marts._validation as select 'r1' as run_id, true as success;
        create or replace table cubes.cube_sales as
            select 'ALL' as month, sum(net_sales_krw) as net_sales_krw from marts.fct_sales;
        create or replace table mining.customer_scores as
            select customer_id, 0.25 as churn_probability from marts.dim_customer where customer_key >= 0;
        """
    )
    con.close()


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMWH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMWH_PUBLISHED_VERSIONS_KEPT", "3")
    s = load_settings()
    make_build(s.warehouse, marker=1)
    return s


def read_marker(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select max(marker) from marts.fct_sales").fetchone()[0]
    finally:
        con.close()


def test_publish_copies_bi_schemas_only_read_only_old_storage(settings):
    result = publish(settings, run_id="r1")
    link = published_path(settings)
    assert link.is_symlink() and link == settings.published / "crmwh.duckdb"
    assert result["tables"] == {
        "cubes.cube_sales": 1,
        "marts.dim_customer": 4,
        "marts.fct_sales": 5,
        "marts.v_big_sales": 2,
        "mining.customer_scores": 3,
    }
    target = link.resolve()
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    # DuckDB's header: magic at byte 8, storage version number at 12 (64 = v1.0.0 storage).
    header = target.read_bytes()[:20]
    assert header[8:12] == b"DUCK" and int.from_bytes(header[12:20], "little") == 64
    con = duckdb.connect(str(link), read_only=True)
    try:
        schemas = {r[0] for r in con.execute("select distinct schema_name from duckdb_tables()").fetchall()}
        assert schemas == {"marts", "cubes", "mining", "ops"}
        # The view became a table: the published file stands alone.
        assert con.execute("select count(*) from duckdb_views() where not internal").fetchone()[0] == 0
        assert con.execute("select sum(net_sales_krw) from marts.v_big_sales").fetchone()[0] == 7000
        assert con.execute("select version, run_id from ops.publication").fetchone() == (
            result["version"],
            "r1",
        )
        with pytest.raises(duckdb.Error):
            con.execute("select * from raw.customers")
    finally:
        con.close()
    assert result["sha256"] == file_sha256(link)


def test_second_publish_swaps_and_rollback_restores_the_previous_bytes(settings):
    first = publish(settings, run_id="r1")
    make_build(settings.warehouse, marker=2)
    second = publish(settings, run_id="r2")
    assert first["version"] < second["version"]
    assert read_marker(published_path(settings)) == 2
    assert list_versions(settings) == [first["version"], second["version"]]
    back = rollback(settings)
    assert back == {"from": second["version"], "to": first["version"], "path": str(published_path(settings))}
    assert read_marker(published_path(settings)) == 1
    assert file_sha256(published_path(settings)) == first["sha256"]
    with pytest.raises(PublishError, match="nothing to roll back to"):
        rollback(settings)
    rollback(settings, second["version"])
    assert current_version(settings) == second["version"]


def test_only_the_configured_number_of_versions_is_kept(settings):
    versions = [publish(settings, run_id=f"r{i}")["version"] for i in range(5)]
    assert list_versions(settings) == versions[-3:]
    assert not version_file(settings, versions[0]).exists()
    assert not version_file(settings, versions[0]).with_suffix(".json").exists()
    assert current_version(settings) == versions[-1]


def test_publish_refuses_a_warehouse_without_marts_and_leaves_the_link_alone(settings):
    good = publish(settings, run_id="r1")
    con = duckdb.connect(str(settings.warehouse))
    con.execute("drop schema marts cascade")
    con.close()
    with pytest.raises(PublishError, match="schema 'marts' holds no tables"):
        publish(settings, run_id="r2")
    assert current_version(settings) == good["version"]
    assert file_sha256(published_path(settings)) == good["sha256"]
    assert [p.name for p in (settings.published / "versions").iterdir() if p.name.startswith(".tmp")] == []


READER = textwrap.dedent(
    """
    import sys, duckdb, pathlib
    link, stop, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    hold = sys.argv[4] == "hold"  # keep one connection open across every swap
    seen, errors, queries = set(), [], 0
    held = duckdb.connect(link, read_only=True) if hold else None
    while not stop.exists():
        try:
            con = held or duckdb.connect(link, read_only=True)
            # Two statements on one connection: both see the same file even if a swap happens.
            a = con.execute("select max(marker) from marts.fct_sales").fetchone()[0]
            b = con.execute("select count(*) from marts.dim_customer").fetchone()[0]
            if not hold:
                con.close()
            seen.add((a, b))
            queries += 1
            out.with_suffix(".seen").write_text(",".join(str(s[0]) for s in sorted(seen)))
        except Exception as exc:
            errors.append(repr(exc))
    out.write_text(repr({"seen": sorted(seen), "errors": errors, "queries": queries}))
    """
)


def test_reader_in_a_loop_never_errors_while_publish_swaps(settings, tmp_path):
    first_version = publish(settings, run_id="r0")["version"]
    stop, link = tmp_path / "stop", str(published_path(settings))
    readers = {}
    for mode in ("reopen", "hold"):
        out = tmp_path / f"{mode}.out"
        readers[mode] = (
            subprocess.Popen([sys.executable, "-c", READER, link, str(stop), str(out), mode]),
            out,
        )

    def wait_seen(marker: int, mode: str) -> None:
        # Bounded wait until the reader has seen this version, so each swap is exercised.
        process, out = readers[mode]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            seen_file = out.with_suffix(".seen")
            if seen_file.exists() and str(marker) in seen_file.read_text().split(","):
                return
            time.sleep(0.01)

    try:
        wait_seen(1, "reopen")
        wait_seen(1, "hold")
        for marker in range(2, 7):
            make_build(settings.warehouse, marker=marker)
            publish(settings, run_id=f"r{marker}")
            wait_seen(marker, "reopen")
    finally:
        stop.touch()
        for process, _ in readers.values():
            process.wait(timeout=60)
    # Written by the readers above: dict literals.
    reopen, hold = (eval(readers[mode][1].read_text()) for mode in ("reopen", "hold"))
    assert reopen["errors"] == []
    assert {m for m, _ in reopen["seen"]} == {1, 2, 3, 4, 5, 6}
    assert {n for _, n in reopen["seen"]} == {4}
    # The reader that kept its connection saw version 1 throughout, although version 1's file
    # was pruned (3 kept) while it was open: it kept the inode.
    assert hold["errors"] == [] and hold["seen"] == [(1, 4)] and hold["queries"] > 1
    assert first_version not in list_versions(settings)


def test_cli_publish_list_and_rollback(settings, monkeypatch):
    from warehouse.publish import command

    runner = CliRunner()
    first = runner.invoke(command, [])
    assert first.exit_code == 0, first.output
    make_build(settings.warehouse, marker=9)
    assert runner.invoke(command, []).exit_code == 0
    listing = runner.invoke(command, ["--list"]).output.splitlines()
    assert len(listing) == 2 and listing[1].startswith("* ") and listing[0].startswith("  ")
    back = runner.invoke(command, ["--rollback"])
    assert back.exit_code == 0, back.output
    assert read_marker(published_path(settings)) == 1
    assert os.readlink(published_path(settings)).startswith("versions/")
