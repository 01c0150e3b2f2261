"""Analysts' entry points over the published warehouse: ``crmwh sql`` and ``crmwh cube``.

Both open the published DuckDB file (``warehouse.publish.published_path``) read-only, with
file-system access disabled and the configuration locked: an analyst's query can read every
published table and can neither change the file nor read or write other files.

``crmwh cube`` answers OLAP questions from the pre-aggregated cubes (schema ``cubes``):

- slice and dice: ``--where dim=value`` (repeatable; ``dim=v1,v2`` for several values);
- roll-up and drill-down: remove or add dimensions in ``--by``;
- pivot: ``--pivot dim`` turns one of the ``--by`` dimensions into columns.

Cube, dimension and measure names are checked against ``cubes.cube_catalog`` (rendered from the
cubes' dbt ``meta``) before they reach SQL, and values are always bound parameters.

Which rows answer a question: the grouping level that keeps exactly the ``--by`` and
``--where`` dimensions. If the cube does not materialise that level:

- a finer level whose extra dimensions are determined by the asked ones (``--by campaign``
  is answered by the level ``campaign,campaign_channel,objective``) holds exactly one row per
  answer row, checked on the data: those rows are the answer, non-additive measures included;
- otherwise additive measures are summed from the smallest materialised level that keeps
  all of them (a true roll-up); a non-additive measure (distinct counts, averages, rates)
  cannot be, so the command stops and names the levels that can answer it. Without
  ``--measure`` such a question is answered with the additive measures only.

The same applies when a ``--where`` lists several values of a dimension not in ``--by``.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from warehouse.config import Settings, load_settings

FORMATS = ("table", "csv", "json")


class AnalystError(click.ClickException):
    """A question the published warehouse cannot answer as asked; the message says what to do."""


@dataclass(frozen=True)
class Cube:
    name: str
    dimensions: tuple[str, ...]
    # measure -> additive (may be summed over the rows of a finer grouping level)
    measures: dict[str, bool]
    # each materialised grouping level, as the set of kept dimensions
    levels: frozenset[frozenset[str]]

    def level_name(self, kept: frozenset[str] | set[str]) -> str:
        """The kept_dimensions value of a set of kept dimensions (cube order; 'ALL' if none)."""
        names = [d for d in self.dimensions if d in kept]
        return ",".join(names) if names else "ALL"


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple]
    note: str | None = None


# --------------------------------------------------------------------------- connection


def published_database(settings: Settings) -> Path:
    """The file analysts read: the published link, from warehouse.publish when available."""
    try:
        from warehouse.publish import published_path
    except ImportError:  # pragma: no cover - publish is part of the project
        return settings.published / "crmwh.duckdb"
    return published_path(settings)


def connect_readonly(database: Path):
    """Open ``database`` read-only, without file-system access, configuration locked."""
    import duckdb

    path = Path(database)
    if not path.exists():
        raise AnalystError(
            f"{path}: no published warehouse here; run `crmwh run` (or `crmwh publish`) first,"
            " or point --database at a DuckDB file."
        )
    try:
        return duckdb.connect(
            str(path.resolve()),
            read_only=True,
            config={"enable_external_access": False, "lock_configuration": True},
        )
    except duckdb.Error as exc:
        raise AnalystError(f"{path}: cannot open read-only: {exc}") from exc


def run_query(con, query: str, params: list | None = None) -> Result:
    """Run one statement (the last one's rows if several) and fetch its rows."""
    import duckdb

    try:
        cursor = con.execute(query, params or [])
    except duckdb.Error as exc:
        raise AnalystError(str(exc).strip()) from exc
    if cursor.description is None:
        return Result(columns=[], rows=[])
    return Result(columns=[d[0] for d in cursor.description], rows=cursor.fetchall())


# --------------------------------------------------------------------------- output


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def format_result(result: Result, fmt: str) -> str:
    """Render rows as an aligned text table, CSV (header row) or JSON (a list of objects)."""
    if fmt == "json":
        records = [{c: _plain(v) for c, v in zip(result.columns, row, strict=True)} for row in result.rows]
        return json.dumps(records, ensure_ascii=False, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([["" if v is None else _plain(v) for v in row] for row in result.rows])
        return buffer.getvalue().rstrip("\n")
    if fmt != "table":
        raise AnalystError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    cells = [["NULL" if v is None else str(_plain(v)) for v in row] for row in result.rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(result.columns)]
    numeric = [
        all(
            isinstance(row[i], int | float) and not isinstance(row[i], bool)
            for row in result.rows
            if row[i] is not None
        )
        and any(row[i] is not None for row in result.rows)
        for i in range(len(result.columns))
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(result.columns), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(out)


# --------------------------------------------------------------------------- cubes


# The cubes of each open connection, read once: an analyst's connection is read-only on a
# published file, which never changes (a new publish is a new file).
_CUBES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cubes_of(con) -> dict[str, Cube]:
    """load_cubes(con), read on the first question asked through this connection only."""
    if con not in _CUBES:
        _CUBES[con] = load_cubes(con)
    return _CUBES[con]


def load_cubes(con) -> dict[str, Cube]:
    """Every cube of the catalog with its dimensions, measures and materialised levels."""
    found = run_query(
        con,
        "select count(*) from duckdb_tables() where schema_name = 'cubes' and table_name = 'cube_catalog'",
    ).rows[0][0]
    if not found:
        raise AnalystError(
            "cubes.cube_catalog is missing from this warehouse: build the cubes (`crmwh build`) and publish."
        )
    rows = run_query(
        con, "select cube, kind, name, additive from cubes.cube_catalog order by cube, kind, position"
    ).rows
    dims: dict[str, list[str]] = {}
    measures: dict[str, dict[str, bool]] = {}
    for cube, kind, name, additive in rows:
        if kind == "dimension":
            dims.setdefault(cube, []).append(name)
        else:
            measures.setdefault(cube, {})[name] = bool(additive)
    cubes: dict[str, Cube] = {}
    for name in sorted(dims):
        levels = run_query(con, f'select distinct kept_dimensions from cubes."{name}"').rows
        cubes[name] = Cube(
            name=name,
            dimensions=tuple(dims[name]),
            measures=measures.get(name, {}),
            levels=frozenset(
                frozenset() if level == "ALL" else frozenset(level.split(",")) for (level,) in levels
            ),
        )
    return cubes


def _closest(name: str, choices: list[str]) -> str:
    import difflib

    match = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def parse_where(items: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """``["dim=v", "dim2=a,b"]`` -> ``{"dim": ["v"], "dim2": ["a", "b"]}``."""
    where: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise AnalystError(f"--where {item!r}: expected DIMENSION=VALUE (VALUE may be v1,v2,...)")
        values = [v.strip() for v in value.split(",")]
        where.setdefault(name.strip(), []).extend(values)
    return where


def _check_names(cube: Cube, by: list[str], where: dict[str, list[str]], measures: list[str]) -> None:
    dims = list(cube.dimensions)
    for name in [*by, *where]:
        if name not in cube.dimensions:
            raise AnalystError(
                f"{cube.name}: no dimension {name!r}{_closest(name, dims)}; dimensions: {', '.join(dims)}"
            )
    for name in measures:
        if name not in cube.measures:
            raise AnalystError(
                f"{cube.name}: no measure {name!r}{_closest(name, list(cube.measures))};"
                f" measures: {', '.join(cube.measures)}"
            )
    if len(set(by)) != len(by):
        raise AnalystError(f"--by {','.join(by)}: a dimension is named twice")


def cube_query(
    con,
    cube_name: str,
    by: list[str],
    where: dict[str, list[str]] | None = None,
    measures: list[str] | None = None,
    cubes: dict[str, Cube] | None = None,
) -> Result:
    """Answer one slice/dice/roll-up question from a cube, as rows of ``by`` + ``measures``.

    ``where`` values are bound parameters; a value 'ALL' means "rolled up", the same as not
    filtering on that dimension. The catalog is read once per connection (:func:`cubes_of`)
    unless ``cubes`` is given.
    """
    cubes = cubes if cubes is not None else cubes_of(con)
    if cube_name not in cubes:
        raise AnalystError(
            f"no cube {cube_name!r}{_closest(cube_name, list(cubes))}; cubes: {', '.join(cubes)}"
        )
    cube = cubes[cube_name]
    where = {k: v for k, v in (where or {}).items() if v != ["ALL"]}
    asked = list(measures or [])
    measures = asked or list(cube.measures)
    _check_names(cube, by, where, measures)
    for name, values in where.items():
        if "ALL" in values:
            raise AnalystError(f"--where {name}=...: 'ALL' cannot be mixed with other values")

    kept = frozenset(by) | frozenset(where)
    filters = []
    params: list[str] = []
    for name, values in where.items():
        filters.append(f'"{name}" in ({", ".join("?" for _ in values)})')
        params.extend(values)
    select_dims = ", ".join(f'"{d}"' for d in by)
    order = f" order by {select_dims}" if by else ""
    # Several values of a filtered dimension that is not in --by are combined into one row.
    combined = [k for k, v in where.items() if k not in by and len(set(v)) > 1]

    if kept in cube.levels and not combined:
        cols = ", ".join([*(f'"{d}"' for d in by), *(f'"{m}"' for m in measures)])
        sql = (
            f'select {cols} from cubes."{cube.name}" where kept_dimensions = ?'
            + "".join(f" and {f}" for f in filters)
            + order
        )
        return run_query(con, sql, [cube.level_name(kept), *params])

    candidates = sorted(
        (lv for lv in cube.levels if kept <= lv), key=lambda lv: (len(lv), cube.level_name(lv))
    )
    where_sql = "".join(f" and {f}" for f in filters)
    needs_rows = any(not cube.measures[m] for m in measures)
    for level in candidates if needs_rows else []:
        # A finer level whose extra dimensions are determined by the asked ones (campaign ->
        # campaign_channel, objective) holds one row per answer row: those rows ARE the
        # answer, non-additive measures included.
        row_tuple = f"row({select_dims})" if by else "1"
        spread = run_query(
            con,
            f'select count(*) - count(distinct {row_tuple}) from cubes."{cube.name}"'
            f" where kept_dimensions = ?{where_sql}",
            [cube.level_name(level), *params],
        ).rows[0][0]
        if spread == 0:
            cols = ", ".join([*(f'"{d}"' for d in by), *(f'"{m}"' for m in measures)])
            sql = f'select {cols} from cubes."{cube.name}" where kept_dimensions = ?{where_sql}{order}'
            result = run_query(con, sql, [cube.level_name(level), *params])
            return Result(result.columns, result.rows, note=f"from grouping level {cube.level_name(level)!r}")
    source = candidates[0] if candidates else None
    if source is not None and not asked:
        # No measures named: answer with the additive ones, the only ones a roll-up can give.
        measures = [m for m in measures if cube.measures[m]]
    not_additive = [m for m in measures if not cube.measures[m]]
    available = "; ".join(sorted(cube.level_name(lv) for lv in cube.levels))
    if source is None or not_additive:
        if source is None:
            why = f"grouping level {cube.level_name(kept)!r} is not materialised, nor any finer level"
        elif combined:
            why = (
                f"several values of {', '.join(combined)} are combined into one row and the"
                f" non-additive measures ({', '.join(not_additive)}) cannot be summed;"
                f" add {', '.join(combined)} to --by"
            )
        else:
            why = (
                f"grouping level {cube.level_name(kept)!r} is not materialised and the non-additive"
                f" measures ({', '.join(not_additive)}) cannot be summed from a finer level"
            )
        raise AnalystError(
            f"{cube.name}: {why}. Ask for additive measures only, or use one of the levels: {available}"
        )
    sums = ", ".join(f'sum("{m}") as "{m}"' for m in measures)
    cols = ", ".join([*(f'"{d}"' for d in by), sums])
    sql = (
        f'select {cols} from cubes."{cube.name}" where kept_dimensions = ?'
        + "".join(f" and {f}" for f in filters)
        + (f" group by {select_dims}" if by else "")
        + order
    )
    result = run_query(con, sql, [cube.level_name(source), *params])
    return Result(result.columns, result.rows, note=f"summed from grouping level {cube.level_name(source)!r}")


def pivot_result(result: Result, by: list[str], pivot: str, measures: list[str]) -> Result:
    """Turn the values of ``pivot`` into columns: one per value, ``measure:value`` if several.

    Rows keep the order of the other ``by`` dimensions; a combination missing from the cube
    is NULL. Done client side: the result of a cube question is small.
    """
    index = [d for d in by if d != pivot]
    pos = {c: i for i, c in enumerate(result.columns)}
    values = sorted({row[pos[pivot]] for row in result.rows}, key=str)
    cells: dict[tuple, dict[tuple, Any]] = {}
    for row in result.rows:
        key = tuple(row[pos[d]] for d in index)
        cell = cells.setdefault(key, {})
        for measure in measures:
            cell[(measure, row[pos[pivot]])] = row[pos[measure]]
    wide = [(m, v) for m in measures for v in values]
    columns = [str(v) if len(measures) == 1 else f"{m}:{v}" for m, v in wide]
    rows = [(*key, *(cell.get(c) for c in wide)) for key, cell in cells.items()]
    return Result(columns=[*index, *columns], rows=rows, note=result.note)


# --------------------------------------------------------------------------- interactive shell


def _meta_command(con, line: str) -> Result | None:
    word, _, arg = line.strip().partition(" ")
    if word in (".tables", ".t"):
        return run_query(
            con,
            "select schema_name as schema, table_name as table, estimated_size as rows"
            " from duckdb_tables() order by 1, 2",
        )
    if word in (".schema", ".d"):
        if not arg:
            raise AnalystError(".schema needs a table name, e.g. .schema marts.fct_sales")
        schema, _, table = arg.strip().rpartition(".")
        sql = "select column_name, data_type from duckdb_columns() where table_name = ?"
        params = [table]
        if schema:
            sql += " and schema_name = ?"
            params.append(schema)
        return run_query(con, sql + " order by column_index", params)
    if word == ".cubes":
        cubes = load_cubes(con)
        rows = [(c.name, ", ".join(c.dimensions), ", ".join(c.measures)) for c in cubes.values()]
        return Result(columns=["cube", "dimensions", "measures"], rows=rows)
    raise AnalystError(f"unknown command {word}: .tables, .schema TABLE, .cubes, .quit")


def interactive(con, fmt: str, stdin=None, out=None) -> int:
    """A small SQL shell: statements end with ';', dot-commands (.tables, .schema, .cubes, .quit).

    Reads from ``stdin`` (so a script can be piped in); returns the number of failed statements.
    """
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    tty = stdin.isatty()
    failures = 0
    buffer: list[str] = []
    if tty:
        out.write("crmwh sql (read-only). End statements with ';'. .tables .schema T .cubes .quit\n")
    while True:
        if tty:
            out.write("crmwh> " if not buffer else "  ...> ")
            out.flush()
        line = stdin.readline()
        if not line:
            break
        stripped = line.strip()
        if not buffer and stripped in (".quit", ".exit", "\\q"):
            break
        if not buffer and stripped.startswith("."):
            try:
                out.write(format_result(_meta_command(con, stripped), fmt) + "\n")
            except AnalystError as exc:
                failures += 1
                out.write(f"Error: {exc.message}\n")
            continue
        if stripped:
            buffer.append(line)
        if buffer and stripped.endswith(";"):
            statement = "".join(buffer)
            buffer = []
            try:
                result = run_query(con, statement)
                if result.columns:
                    out.write(format_result(result, fmt) + "\n")
            except AnalystError as exc:
                failures += 1
                out.write(f"Error: {exc.message}\n")
    if buffer:
        try:
            result = run_query(con, "".join(buffer))
            if result.columns:
                out.write(format_result(result, fmt) + "\n")
        except AnalystError as exc:
            failures += 1
            out.write(f"Error: {exc.message}\n")
    return failures


# --------------------------------------------------------------------------- commands


def _database(database: Path | None) -> Path:
    return database if database is not None else published_database(load_settings())


database_option = click.option(
    "--database",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="DuckDB file to read (default: the published warehouse).",
)
format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format."
)


@click.command("sql")
@click.option("-c", "--command", "query", default=None, help="Run one query and exit.")
@format_option
@database_option
def sql_command(query: str | None, fmt: str, database: Path | None) -> None:
    """Query the published warehouse read-only: an interactive SQL shell, or -c QUERY."""
    con = connect_readonly(_database(database))
    try:
        if query is not None:
            result = run_query(con, query)
            if result.columns:
                click.echo(format_result(result, fmt))
            return
        failures = interactive(con, fmt)
    finally:
        con.close()
    if failures:
        sys.exit(1)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@click.command("cube")
@click.argument("cube_name", required=False)
@click.option("--by", default="", help="Dimensions to keep, comma separated (e.g. month,sales_channel).")
@click.option("--where", "where_items", multiple=True, help="DIMENSION=VALUE[,VALUE...]; repeatable.")
@click.option(
    "--measure", "--measures", "measure_list", default="", help="Measures, comma separated (default: all)."
)
@click.option("--pivot", default=None, help="A --by dimension whose values become columns.")
@format_option
@database_option
def cube_command(
    cube_name: str | None,
    by: str,
    where_items: tuple[str, ...],
    measure_list: str,
    pivot: str | None,
    fmt: str,
    database: Path | None,
) -> None:
    """Slice, dice, roll up, drill down and pivot an OLAP cube of the published warehouse.

    Without CUBE, lists the cubes with their dimensions, measures (* = non-additive) and the
    materialised grouping levels.
    """
    con = connect_readonly(_database(database))
    try:
        if cube_name is None:
            cubes = load_cubes(con)
            rows = [
                (
                    c.name,
                    ", ".join(c.dimensions),
                    ", ".join(m if add else f"{m}*" for m, add in c.measures.items()),
                    "; ".join(sorted(c.level_name(lv) for lv in c.levels)),
                )
                for c in cubes.values()
            ]
            click.echo(format_result(Result(["cube", "dimensions", "measures", "levels"], rows), fmt))
            return
        by_list = _split(by)
        measures = _split(measure_list) or None
        where = parse_where(where_items)
        if pivot is not None and pivot not in by_list:
            by_list.append(pivot)
        result = cube_query(con, cube_name, by_list, where, measures)
        if pivot is not None:
            chosen = [c for c in result.columns if c not in by_list]
            result = pivot_result(result, by_list, pivot, chosen)
    finally:
        con.close()
    if result.note:
        click.echo(f"note: {result.note}", err=True)
    click.echo(format_result(result, fmt))


commands = [sql_command, cube_command]
command = sql_command


def metricflow_project(settings: Settings) -> Path:
    """A directory ``mf`` can run in against the build warehouse; returns it.

    MetricFlow reads ``<project>/target/semantic_manifest.json``, but ``crmwh build`` writes dbt's
    artifacts under ``<home>/dbt/target`` (never into the repository). This mirrors the dbt
    project into ``<home>/dbt/metricflow`` with symlinks and copies the semantic manifest of
    the last build there. Run ``mf`` with that directory as the working directory and
    ``DBT_PROFILES_DIR`` set to it, and ``CRMWH_WAREHOUSE`` set to the build warehouse.
    """
    import shutil

    manifest = settings.home / "dbt" / "target" / "semantic_manifest.json"
    if not manifest.exists():
        raise AnalystError(f"{manifest}: no semantic manifest; run `crmwh build` first.")
    folder = settings.home / "dbt" / "metricflow"
    (folder / "target").mkdir(parents=True, exist_ok=True)
    project = Path(settings.dbt_project).resolve()
    for entry in project.iterdir():
        if entry.name in ("target", "logs"):
            continue
        link = folder / entry.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(entry)
    shutil.copyfile(manifest, folder / "target" / "semantic_manifest.json")
    return folder
