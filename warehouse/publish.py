"""Publish: hand BI tools a complete, read-only copy of the warehouse, swapped in atomically.

BI tools never open the build file: DuckDB allows one writer per file, and a reader of the
build file would see half-built tables (or lock the pipeline out). Instead every successful run
copies the schemas BI relies on (marts, cubes, mining, ops) into a fresh DuckDB file written in
an old storage version that every 1.x driver reads, marks it read-only, and points the link
``<published>/crmwh.duckdb`` at it with one ``os.replace`` of a symlink: a reader either opens
the old file or the new one, never a mixture, and a reader already inside the old file keeps
its open inode until it closes. The last ``published_versions_kept`` files stay on disk, so a
bad release is one ``crmwh publish --rollback`` away.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from warehouse.config import Settings, load_settings

PUBLISHED_SCHEMAS: tuple[str, ...] = ("marts", "cubes", "mining", "ops")
LINK_NAME = "crmwh.duckdb"
_VERSION_RE = re.compile(r"^crmwh_(\d{8}T\d{12}Z)\.duckdb$")


class PublishError(RuntimeError):
    """Publishing refused: the build warehouse is not fit to hand to BI tools."""


def published_path(settings: Settings) -> Path:
    """The path BI tools open (read-only): a symlink to the current version's file."""
    return settings.published / LINK_NAME


def versions_dir(settings: Settings) -> Path:
    return settings.published / "versions"


def file_sha256(path: Path) -> str:
    """Checksum of a file's bytes (follows symlinks): proves a published file did not change."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_versions(settings: Settings) -> list[str]:
    """Published versions on disk, oldest first (the version is a sortable UTC timestamp)."""
    folder = versions_dir(settings)
    if not folder.is_dir():
        return []
    found = (_VERSION_RE.match(p.name) for p in folder.iterdir())
    return sorted(m.group(1) for m in found if m)


def current_version(settings: Settings) -> str | None:
    """The version the link points at, or None before the first publish."""
    link = published_path(settings)
    if not link.is_symlink():
        return None
    match = _VERSION_RE.match(Path(os.readlink(link)).name)
    return match.group(1) if match else None


def version_file(settings: Settings, version: str) -> Path:
    return versions_dir(settings) / f"crmwh_{version}.duckdb"


def version_info(settings: Settings, version: str) -> dict:
    """The sidecar written with a version: run id, tables and row counts, checksum."""
    sidecar = version_file(settings, version).with_suffix(".json")
    return json.loads(sidecar.read_text()) if sidecar.exists() else {"version": version}


def _new_version(settings: Settings) -> str:
    while True:
        version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        if not version_file(settings, version).exists():
            return version
        time.sleep(0.001)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source_relations(con, schemas: tuple[str, ...]) -> list[tuple[str, str]]:
    """Tables and views of the build warehouse in the published schemas, in a stable order.

    Names starting with ``_`` are the pipeline's own bookkeeping (``marts._validation``): the
    audit BI reads is ``ops.validations``."""
    placeholders = ", ".join("?" for _ in schemas)
    rows = con.execute(
        f"""
        select schema_name, table_name from duckdb_tables()
        where database_name = 'src' and schema_name in ({placeholders})
            and not starts_with(table_name, '_')
        union all
        select schema_name, view_name from duckdb_views()
        where database_name = 'src' and not internal and schema_name in ({placeholders})
            and not starts_with(view_name, '_')
        order by 1, 2
        """,
        [*schemas, *schemas],
    ).fetchall()
    return [(s, t) for s, t in rows]


def _swap_link(settings: Settings, version: str) -> None:
    """Point the link at ``version`` atomically: build a temp symlink, rename it over the link."""
    link = published_path(settings)
    tmp = link.with_name(f".{LINK_NAME}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    # Relative target, so the published folder can be mounted elsewhere (a container volume).
    os.symlink(Path("versions") / version_file(settings, version).name, tmp)
    os.replace(tmp, link)
    _fsync_dir(settings.published)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(settings: Settings) -> list[str]:
    """Delete versions beyond the newest ``published_versions_kept``; never the current one."""
    keep = max(1, settings.published_versions_kept)
    current = current_version(settings)
    versions = list_versions(settings)
    removed = []
    for version in versions[: max(0, len(versions) - keep)]:
        if version == current:
            continue
        path = version_file(settings, version)
        # A reader that opened this file keeps its inode until it closes; unlinking is safe.
        path.unlink()
        path.with_suffix(".json").unlink(missing_ok=True)
        removed.append(version)
    return removed


def publish(
    settings: Settings,
    run_id: str | None = None,
    schemas: tuple[str, ...] = PUBLISHED_SCHEMAS,
) -> dict:
    """Copy ``schemas`` of the build warehouse into a new read-only file and swap it in.

    Views are materialised as tables, so the published file stands alone. Returns the new
    version, its path, checksum and per-table row counts, and the versions pruned.
    """
    import duckdb

    started = time.perf_counter()
    build = settings.warehouse
    if not build.exists():
        raise PublishError(f"{build}: build warehouse not found; run `crmwh run --date D` first.")
    folder = versions_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    version = _new_version(settings)
    final = version_file(settings, version)
    tmp = folder / f".tmp_{version}.duckdb"
    tables: dict[str, int] = {}
    con = duckdb.connect()
    try:
        con.execute(f"attach '{build}' as src (read_only)")
        relations = _source_relations(con, schemas)
        if not any(schema == "marts" for schema, _ in relations):
            raise PublishError(
                f"{build}: schema 'marts' holds no tables; build the marts (`crmwh run`) before publishing."
            )
        con.execute(f"attach '{tmp}' as dst (storage_version '{settings.published_storage_version}')")
        for schema in sorted({s for s, _ in relations}):
            con.execute(f"create schema dst.{_quote(schema)}")
        for schema, table in relations:
            name = f"{_quote(schema)}.{_quote(table)}"
            con.execute(f"create table dst.{name} as select * from src.{name}")
            tables[f"{schema}.{table}"] = con.execute(f"select count(*) from dst.{name}").fetchone()[0]
        con.execute("create schema if not exists dst.ops")
        con.execute(
            "create table dst.ops.publication as select ?::varchar as version, ?::varchar as run_id,"
            " ?::timestamp as published_at, ?::varchar as storage_version, ?::integer as tables",
            [
                version,
                run_id,
                datetime.now(UTC).replace(tzinfo=None),
                settings.published_storage_version,
                len(tables),
            ],
        )
        con.execute("checkpoint dst")
        con.execute("detach dst")
    except Exception:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    _verify(tmp, tables)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o444)
    os.rename(tmp, final)
    checksum = file_sha256(final)
    info = {
        "version": version,
        "run_id": run_id,
        "file": final.name,
        "sha256": checksum,
        "storage_version": settings.published_storage_version,
        "tables": tables,
        "published_at": datetime.now(UTC).isoformat(),
    }
    final.with_suffix(".json").write_text(json.dumps(info, indent=2, sort_keys=True))
    _swap_link(settings, version)
    removed = _prune(settings)
    return {
        **info,
        "path": str(published_path(settings)),
        "removed": removed,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _verify(path: Path, tables: dict[str, int]) -> None:
    """Reopen the new file read-only and check every table's row count before it goes live."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        for name, expected in tables.items():
            schema, table = name.split(".", 1)
            got = con.execute(f"select count(*) from {_quote(schema)}.{_quote(table)}").fetchone()[0]
            if got != expected:
                raise PublishError(f"{path}: {name} holds {got} rows after copy, expected {expected}.")
    finally:
        con.close()


def rollback(settings: Settings, version: str | None = None) -> dict:
    """Point the link back at ``version`` (default: the version before the current one)."""
    versions = list_versions(settings)
    current = current_version(settings)
    if version is None:
        older = [v for v in versions if current is None or v < current]
        if not older:
            raise PublishError(
                f"{settings.published}: no version older than {current} is kept; nothing to roll back to."
            )
        version = older[-1]
    elif version not in versions:
        raise PublishError(
            f"{versions_dir(settings)}: version {version} is not kept; choose one of {versions}."
        )
    _swap_link(settings, version)
    return {"from": current, "to": version, "path": str(published_path(settings))}


@click.command("publish")
@click.option("--rollback", "do_rollback", is_flag=True, help="Point BI back at the previous version.")
@click.option("--to", "to_version", default=None, help="With --rollback: the version to return to.")
@click.option("--list", "do_list", is_flag=True, help="List the kept versions (* = current).")
def command(do_rollback: bool, to_version: str | None, do_list: bool) -> None:
    """Publish the build warehouse's marts, cubes, mining and ops schemas for BI tools."""
    settings = load_settings()
    if do_list:
        current = current_version(settings)
        for version in list_versions(settings):
            info = version_info(settings, version)
            mark = "*" if version == current else " "
            click.echo(f"{mark} {version}  run={info.get('run_id')}  sha256={info.get('sha256', '')[:12]}")
        return
    if do_rollback:
        result = rollback(settings, to_version)
        click.echo(f"{result['path']}: {result['from']} -> {result['to']}")
        return
    result = publish(settings)
    click.echo(
        f"published {result['version']} ({len(result['tables'])} tables) at {result['path']}"
        f" in {result['seconds']} s"
    )
