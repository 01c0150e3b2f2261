"""Load landed source files into the raw layer: each file exactly once, bad rows set aside.

Why it is built this way:

- The loader is generic over ``warehouse.contracts.SOURCES``: a source is a declaration, and
  every SQL statement here is generated from it.
- Bulk work happens in DuckDB (``read_csv`` for records and for lines, JSON functions, casts);
  Python only hashes and decodes bytes, so a batch of files costs a handful of statements, not
  a loop over rows.
- Every row of a file ends in exactly one place: its raw table or ``raw._quarantine`` with a
  reason ('parse', 'missing key', 'type', 'unknown enum', 'encoding'). Exact duplicate rows
  load: staging dedupes on the contract key. The loader checks ``read = loaded + quarantined``
  per file itself before it commits.
- Files load in batches (per source, up to BATCH_FILES files / BATCH_BYTES bytes) and each batch
  is one transaction: rows, quarantine entries, manifest rows and, for a correction, the removal
  of the earlier version's rows commit together or not at all. A file is therefore loaded
  entirely or not at all; a crash mid-file leaves nothing of it, and the next run loads it.
- A file is its path and SHA-256: the same pair is skipped; the same path with a new hash is
  a correction that replaces exactly the rows of the earlier version.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import secrets
import tempfile
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from warehouse.contracts import LOCAL_TZ, SOURCES, Source, delivery_date
from warehouse.raw_schema import SCHEMA, ensure_raw_schema, nested_columns, quote

if TYPE_CHECKING:  # duckdb is imported where a connection is made, so `crmwh --help` stays fast.
    import duckdb

BOM = b"\xef\xbb\xbf"
BATCH_FILES = 500
BATCH_BYTES = 256 * 1024 * 1024


class IngestError(RuntimeError):
    """A real error: the loader could not keep its promises for a file (not a bad row)."""


@dataclass
class FileResult:
    source: str
    path: str
    status: str  # loaded | corrected | quarantined | skipped
    file_id: int | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    detail: str | None = None


@dataclass
class Entry:
    """A file of the batch being loaded: what the manifest will say about it."""

    file_id: int
    rel: str  # path relative to the landing (or absolute, for files brought by the user)
    dt: date | None
    sha: str
    size: int
    replaces: int | None  # the file_id of the version this one corrects
    readable: Path | None  # the file as UTF-8 on disk (the original when no rewrite was needed)
    error: tuple[str, str] | None = None  # (reason, detail) when the file cannot be read at all
    temp: bool = False  # readable is a temporary rewrite, removed after the batch
    first_line: str = ""  # the header of a CSV file
    n_lines: int = 0  # physical lines (a final newline does not start one)
    has_blank_lines: bool = False
    plain_lines: bool = True  # lines end in \n or \r\n only and hold no \x01 (see lines_query)


def new_run_id() -> str:
    return "ingest-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def discover(
    landing: Path, sources: list[str] | None = None, days: list[date] | None = None
) -> list[tuple[Source, Path]]:
    """The landed files to consider, in delivery order (dt, then source, then name)."""
    names = sources or list(SOURCES)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise click.BadParameter(f"unknown source(s) {unknown}; known: {sorted(SOURCES)}")
    wanted = set(days) if days else None
    found: list[tuple[date, str, Path]] = []
    for name in names:
        root = landing / name
        if not root.is_dir():
            continue
        for folder in root.glob("dt=*"):
            dt = delivery_date(folder)
            if dt is None or (wanted is not None and dt not in wanted):
                continue
            found.extend(
                (dt, name, p) for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
            )
    found.sort()
    return [(SOURCES[name], p) for _, name, p in found]


# ---------------------------------------------------------------------------------- decoding


def decode(
    source: Source, path: Path, data: bytes, tmp: Path
) -> tuple[Path | None, tuple[str, str] | None, bool, dict]:
    """Make the file readable as UTF-8 by DuckDB.

    Returns (readable path, whole-file error, whether the path is a temporary rewrite, facts
    about the text: first_line, n_lines, has_blank_lines).
    """
    rewrite = False
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            return None, ("parse", f"not a readable gzip file ({exc}); re-deliver the file"), False, {}
        rewrite = True
    if data.startswith(BOM):
        data = data[len(BOM) :]
        rewrite = True
    try:
        text = data.decode(source.encoding)
    except UnicodeDecodeError as exc:
        detail = (
            f"not decodable as {source.encoding} at byte offset {exc.start} (byte 0x{data[exc.start]:02x});"
            f" re-export the file in {source.encoding}"
        )
        return None, ("encoding", detail), False, {}
    end = text.find("\n")
    facts = {
        "first_line": (text if end < 0 else text[:end]).rstrip("\r"),
        "n_lines": text.count("\n") + (0 if not text or text.endswith("\n") else 1),
        "has_blank_lines": text.startswith(("\n", "\r\n")) or "\n\n" in text or "\n\r\n" in text,
        "plain_lines": "\x01" not in text and text.count("\r") == text.count("\r\n"),
    }
    if source.encoding.lower().replace("-", "") != "utf8":
        rewrite = True
    if not rewrite:
        return path, None, False, facts
    out = tmp / (secrets.token_hex(8) + ".txt")
    out.write_text(text, encoding="utf-8", newline="")
    return out, None, True, facts


# ------------------------------------------------------------------------- staging (VARCHAR)


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _sql_value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return sql_str(str(value))


def _sql_list(values: list) -> str:
    return "[" + ", ".join(sql_str(str(v)) for v in values) + "]"


def register_batch(con: duckdb.DuckDBPyConnection, entries: list[Entry]) -> None:
    """``_batch(file_id, filename, path)``: which file id a DuckDB reader's filename is."""
    values = ", ".join(
        f"({e.file_id}, {sql_str(str(e.readable)) if e.readable else 'null'}, {sql_str(e.rel)})"
        for e in entries
    )
    con.execute(
        f"create or replace temp table _batch as select * from (values {values}) v(file_id, filename, path)"
    )


def lines_query(entries: list[Entry]) -> str:
    """SQL for ``(file_id, line, t)``: every physical line of the readable files, numbered from 1.

    DuckDB's CSV reader with one column, no quoting and ``WITH ORDINALITY`` is the fastest line
    splitter; a blank line comes through as NULL, so the position is the line number once the
    lines of the files before are subtracted (their counts come from decoding). That holds when
    lines end in ``\n`` or ``\r\n`` and no line holds the separator byte; other files are split
    with ``string_split`` (slower, always right).
    """
    readable = [e for e in entries if e.readable is not None and e.error is None]
    if not readable:
        return "select null::bigint as file_id, null::bigint as line, null::varchar as t where false"
    files = _sql_list([e.readable for e in readable])
    if all(e.plain_lines for e in readable):
        offsets, before = [], 0
        for e in readable:
            offsets.append(f"({sql_str(str(e.readable))}, {e.file_id}, {before})")
            before += e.n_lines
        return f"""
            select b.file_id, l.ordinality - b.line_offset as line, coalesce(rtrim(l.t, chr(13)), '') as t
            from read_csv({files}, columns = {{'t': 'VARCHAR'}}, header = false, delim = chr(1), quote = '',
                escape = '', auto_detect = false, strict_mode = false, filename = true,
                hive_partitioning = false, max_line_size = 100000000) with ordinality l
            join (values {", ".join(offsets)}) b(filename, file_id, line_offset) on b.filename = l.filename"""
    return f"""
        with f as (
            select b.file_id, string_split(r.content, chr(10)) as arr
            from read_text({files}) r join _batch b on b.filename = r.filename
        ), numbered as (
            select file_id, len(arr) as n, generate_subscripts(arr, 1)::bigint as line, unnest(arr) as t from f
        )
        select file_id, line, rtrim(t, chr(13)) as t from numbered
        where not (line = n and t = '')  -- a final newline is not a line of its own"""


def load_lines(con: duckdb.DuckDBPyConnection, entries: list[Entry]) -> None:
    """``_lines(file_id, line, t)`` for the given files (``register_batch`` first)."""
    con.execute(f"create or replace temp table _lines as {lines_query(entries)}")


def _stage_jsonl(con: duckdb.DuckDBPyConnection, source: Source, entries: list[Entry]) -> None:
    """``_stage``: one row per non-blank line, each contract field as VARCHAR (JSON text for
    structs and nested lists), and a parse error when the line is not a JSON object."""
    names = list(source.column_names) + [n.field for n in source.nested]
    paths = "[" + ", ".join(sql_str("$." + json_key(n)) for n in names) + "]"
    cols = ", ".join(f"v[{i + 1}] as {quote('c_' + n)}" for i, n in enumerate(names))
    drop_stage(con)
    con.execute(
        f"""
        create or replace temp view _stage as
        with parsed as (
            select file_id, line, t as raw_text,
                   case when not json_valid(t) then 'line is not valid JSON'
                        -- valid JSON that opens with a brace is an object (cheaper than json_type)
                        when ltrim(t)[1] <> '{{' then 'line is a JSON ' || lower(json_type(t)) || ', not an object'
                   end as parse_error
            from _lines where trim(t) <> ''
        ), extracted as (
            select file_id, line, raw_text, parse_error,
                   case when parse_error is null then json_extract_string(raw_text, {paths}) end as v
            from parsed
        )
        select file_id, line, raw_text, parse_error, {cols} from extracted
        """
    )


def drop_stage(con: duckdb.DuckDBPyConnection) -> None:
    """Drop ``_stage`` whatever it is now (the whitespace reader of transactions makes a table)."""
    row = con.execute(
        "select 'view' from duckdb_views() where view_name = '_stage' and temporary"
        " union all select 'table' from duckdb_tables() where table_name = '_stage' and temporary"
    ).fetchone()
    if row:
        con.execute(f"drop {row[0]} _stage")


def json_key(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"' if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else name


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    entries: list[Entry],
    delim: str = ",",
    header: bool = True,
) -> None:
    """``_stage`` for a batch of CSV files through DuckDB's CSV reader, every record with its
    file and line. A file whose header is not the contract's, or whose records cannot be told
    apart, gets a whole-file parse error on its entry instead."""
    first = 2 if header else 1
    if header:
        expected = delim.join(source.column_names)
        for e in entries:
            if e.error is None:
                got = e.first_line.replace('"', "").strip()
                if got != expected:
                    e.error = (
                        "parse",
                        f"header is {got[:200]!r}, expected {expected!r}; the file is not a {source.name} export",
                    )
    nulls = ", ".join(f"null::varchar as {quote('c_' + n)}" for n in source.column_names)
    readable = [e for e in entries if e.error is None]
    if not readable:
        drop_stage(con)
        con.execute(
            f"create or replace temp view _stage as select null::bigint as file_id, null::bigint as line,"
            f" null::varchar as raw_text, null::varchar as parse_error, {nulls} where false"
        )
        return
    columns = "{" + ", ".join(f"{sql_str(n)}: 'VARCHAR'" for n in source.column_names) + "}"
    con.execute("drop table if exists _rej_errors; drop table if exists _rej_scans")
    con.execute(
        f"""
        create or replace temp table _csv as
        select * from read_csv({_sql_list([e.readable for e in readable])}, columns = {columns},
            header = {str(header).lower()}, auto_detect = false, delim = {sql_str(delim)}, quote = '"',
            escape = '"', null_padding = false, filename = true,
            store_rejects = true, rejects_table = '_rej_errors', rejects_scan = '_rej_scans')
        """
    )
    con.execute(
        """
        create or replace temp table _rej as
        select b.file_id, e.line::bigint as line, first(e.csv_line) as csv_line,
               string_agg(distinct e.error_type::varchar, ', ') as error_type
        from _rej_errors e
        join _rej_scans s on s.scan_id = e.scan_id and s.file_id = e.file_id
        join _batch b on b.filename = s.file_path
        group by all
        """
    )
    parsed = dict(
        con.execute(
            "select b.file_id, count(*) from _csv c join _batch b on b.filename = c.filename group by all"
        ).fetchall()
    )
    rejected = dict(con.execute("select file_id, count(*) from _rej group by all").fetchall())
    # One record per line (no blank lines, no quoted line breaks): line = position + header,
    # skipping the rejected lines. Else a record starts where the quotes before it are balanced.
    mapped, spanning = [], []
    for e in readable:
        n_csv, n_rej = parsed.get(e.file_id, 0), rejected.get(e.file_id, 0)
        if e.has_blank_lines or n_csv + n_rej != e.n_lines - first + 1:
            spanning.append(e)
        elif n_rej:
            mapped.append(e)
    con.execute("create or replace temp table _starts (file_id bigint, line bigint)")
    if mapped:
        ranges = ", ".join(f"({e.file_id}, {first}, {e.n_lines})" for e in mapped)
        con.execute(
            f"""insert into _starts
            select file_id, unnest(range(lo, hi + 1)) from (values {ranges}) v(file_id, lo, hi)"""
        )
    if spanning:
        load_lines(con, spanning)
        ids = ", ".join(str(e.file_id) for e in spanning)
        con.execute(
            f"""
            create or replace temp table _spans as
            with q as (
                select file_id, line, t, coalesce(sum(length(t) - length(replace(t, '"', ''))) over (
                    partition by file_id order by line rows between unbounded preceding and 1 preceding), 0) % 2 = 0
                    as balanced
                from _lines where line >= {first} and file_id in ({ids})
            ), s as (select file_id, line, balanced and t <> '' as is_start from q)
            select file_id, line, max(case when is_start then line end) over (partition by file_id order by line) as rec
            from s
            """
        )
        con.execute(
            "update _rej set line = s.rec from _spans s where s.file_id = _rej.file_id and s.line = _rej.line"
        )
        con.execute("insert into _starts select file_id, line from _spans where line = rec")
        starts = dict(
            con.execute(
                f"select file_id, count(*) from _starts where file_id in ({ids}) group by all"
            ).fetchall()
        )
        for e in spanning:
            n_starts, n_csv, n_rej = (
                starts.get(e.file_id, 0),
                parsed.get(e.file_id, 0),
                rejected.get(e.file_id, 0),
            )
            if n_starts != n_csv + n_rej:
                e.error = (
                    "parse",
                    f"cannot tell records apart ({n_starts} record starts, {n_csv} parsed rows and {n_rej} rejected);"
                    " check the file for unbalanced quotes",
                )
    cols = ", ".join(f"c.{quote(n)} as {quote('c_' + n)}" for n in source.column_names)
    failed = ", ".join(str(e.file_id) for e in entries if e.error is not None) or "-1"
    drop_stage(con)
    con.execute(
        f"""
        create or replace temp view _stage as
        with good_lines as (
            select s.file_id, s.line, row_number() over (partition by s.file_id order by s.line) as k
            from _starts s anti join _rej r on r.file_id = s.file_id and r.line = s.line
        ), firsts as (
            select filename, min(rowid) as first_rowid from _csv group by all
        ), csv as (
            -- a plain multi-file scan into a table keeps each file's rows together and in order
            select b.file_id, c.rowid - f.first_rowid + 1 as k, c.*
            from _csv c join firsts f on f.filename = c.filename join _batch b on b.filename = c.filename
        )
        select * from (
            select c.file_id, coalesce(g.line, c.k + {first - 1}) as line, null::varchar as raw_text,
                   null::varchar as parse_error, {cols}
            from csv c left join good_lines g on g.file_id = c.file_id and g.k = c.k
            union all
            select r.file_id, r.line, r.csv_line, 'CSV record: ' || lower(r.error_type), {nulls} from _rej r
        ) where file_id not in ({failed})
        """
    )


def fill_raw_text(con: duckdb.DuckDBPyConnection, entries: list[Entry]) -> None:
    """Give quarantined rows that have no raw text yet (CSV rows that parsed but did not
    convert) their line as it stands in the file. Only files with such rows are read again."""
    need = {
        r[0]
        for r in con.execute(
            "select distinct file_id from _typed where reason is not null and raw_text is null"
        ).fetchall()
    }
    if not need:
        return
    load_lines(con, [e for e in entries if e.file_id in need])
    con.execute(
        """update _typed set raw_text = l.t from _lines l
        where l.file_id = _typed.file_id and l.line = _typed.line and _typed.reason is not null and _typed.raw_text is null"""
    )


# ----------------------------------------------------------------------- typing and checking


def _struct_fields(typ: str) -> list[tuple[str, str]] | None:
    m = re.fullmatch(r"\s*STRUCT\s*\((.*)\)\s*", typ, flags=re.IGNORECASE | re.DOTALL)
    if not m:
        return None
    out = []
    for part in m.group(1).split(","):
        name, _, sub = part.strip().partition(" ")
        out.append((name.strip(), sub.strip()))
    return out


def _json_field(v: str, name: str) -> str:
    return f"json_extract_string({v}, {sql_str('$.' + json_key(name))})"


def _typed(source: Source, column: str, typ: str, v: str) -> str:
    """SQL turning the VARCHAR expression ``v`` into ``typ``; NULL when it does not convert."""
    fmt = source.time_formats.get(column)
    base = typ.upper()
    if fmt:
        return f"try_strptime({v}, {sql_str(fmt)})"
    if base == "TIMESTAMP":
        # Local values stay as they are; values with an offset become Asia/Seoul local time.
        return f"timezone({sql_str(LOCAL_TZ)}, try_cast({v} as timestamptz))"
    if base == "VARCHAR":
        return v
    fields = _struct_fields(typ)
    if fields:
        packed = ", ".join(f"{quote(f)} := {_typed(source, f, t, _json_field(v, f))}" for f, t in fields)
        return f"case when {v} is null then null else struct_pack({packed})::{typ} end"
    if base in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"):
        # try_cast would round '4.5' to 5: an integer column takes integers only.
        return f"case when regexp_full_match({v}, '\\s*[-+]?[0-9]+\\s*') then try_cast({v} as {typ}) end"
    return f"try_cast({v} as {typ})"


def _type_ok(source: Source, column: str, typ: str, v: str) -> str:
    """SQL that is true when the VARCHAR ``v`` is NULL or converts cleanly to ``typ``."""
    fields = _struct_fields(typ)
    if fields:
        subs = " and ".join(_type_ok(source, f, t, _json_field(v, f)) for f, t in fields)
        return f"({v} is null or (json_valid({v}) and json_type({v}) = 'OBJECT' and {subs}))"
    if typ.upper() == "VARCHAR":
        return "true"
    return f"({v} is null or {_typed(source, column, typ, v)} is not null)"


def _nested_exprs(source: Source) -> tuple[list[str], list[str]]:
    """For each nested list: (check that it is a well-typed array, the typed list)."""
    checks, typed = [], []
    for n in source.nested:
        v = quote("c_" + n.field)
        schema = "[{" + ", ".join(f'"{c}": "VARCHAR"' for c, _ in n.columns) + "}]"
        arr = f"from_json({v}, {sql_str(schema)})"
        elem_ok = " and ".join(_type_ok(source, c, t, f"x.{quote(c)}") for c, t in n.columns)
        checks.append(
            f"({v} is null or (json_valid({v}) and json_type({v}) = 'ARRAY'"
            f" and len(list_filter({arr}, x -> not ({elem_ok}))) = 0))"
        )
        packed = ", ".join(f"{quote(c)} := {_typed(source, c, t, f'x.{quote(c)}')}" for c, t in n.columns)
        typed.append(
            f"case when {v} is null then null else list_transform({arr}, x -> struct_pack({packed})) end"
        )
    return checks, typed


def _classify(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    """``_typed``: every staged row with its typed values and, when it cannot load, a reason.

    Each value is converted once (``t_<column>``); a non-empty value whose conversion is NULL
    is a type error.
    """
    v = {n: quote("v_" + n) for n in source.column_names}
    t = {n: quote("t_" + n) for n in source.column_names}
    values = ", ".join(f"nullif({quote('c_' + n)}, '') as {v[n]}" for n in source.column_names)
    nested_ok, nested_typed = _nested_exprs(source)
    converted = ", ".join(f"{_typed(source, n, typ, v[n])} as {t[n]}" for n, typ in source.columns)
    converted += "".join(
        f", {expr} as {quote('n_' + n.field)}" for expr, n in zip(nested_typed, source.nested, strict=True)
    )
    missing = [f"case when {v[k]} is null then {sql_str(k)} end" for k in source.key]
    type_bad = [
        f"case when not {_type_ok(source, n, typ, v[n]) if _struct_fields(typ) else f'({v[n]} is null or {t[n]} is not null)'}"
        f" then {sql_str(n + '=')} || {v[n]} || {sql_str(' is not ' + typ)} end"
        for n, typ in source.columns
        if typ.upper() != "VARCHAR"
    ]
    type_bad += [
        f"case when not {ok} then {sql_str(n.field + ' is not a list of valid ' + n.field + ' objects')} end"
        for ok, n in zip(nested_ok, source.nested, strict=True)
    ]
    enum_bad = [
        f"case when {v[c]} is not null and {v[c]} not in ({', '.join(sql_str(x) for x in allowed)})"
        f" then {sql_str(c + '=')} || {v[c]} || {sql_str(' not in ' + '/'.join(allowed))} end"
        for c, allowed in source.enums.items()
    ]

    def joined(parts: list[str]) -> str:
        return f"nullif(concat_ws('; ', {', '.join(parts)}), '')" if parts else "null::varchar"

    def any_of(flags: list[str]) -> str:
        return "(" + " or ".join(flags) + ")" if flags else "false"

    missing_flags = [f"{v[k]} is null" for k in source.key]
    type_flags = [
        f"not {_type_ok(source, n, typ, v[n])}"
        if _struct_fields(typ)
        else f"({v[n]} is not null and {t[n]} is null)"
        for n, typ in source.columns
        if typ.upper() != "VARCHAR"
    ] + [f"not {ok}" for ok in nested_ok]
    enum_flags = [
        f"({v[c]} is not null and {v[c]} not in ({', '.join(sql_str(x) for x in allowed)}))"
        for c, allowed in source.enums.items()
    ]

    typed_out = ", ".join(
        [t[n] for n in source.column_names] + [quote("n_" + n.field) for n in source.nested]
    )
    con.execute(
        f"""
        create or replace temp table _typed as
        with raw_values as (
            select file_id, line, raw_text, parse_error, {values}, {", ".join(quote("c_" + n.field) for n in source.nested) or "null as _none"}
            from _stage
        ), converted as (
            select *, {converted} from raw_values
        ), flagged as (
            select *, {any_of(missing_flags)} as is_missing, {any_of(type_flags)} as is_bad_type,
                   {any_of(enum_flags)} as is_bad_enum
            from converted
        ), checked as (
            -- the messages are built for the few bad rows only
            select *, case when is_missing then {joined(missing)} end as missing_key,
                   case when is_bad_type then {joined(type_bad)} end as type_error,
                   case when is_bad_enum then {joined(enum_bad)} end as enum_error
            from flagged
        )
        , decided as (
            select *,
                   case when parse_error is not null then 'parse'
                        when missing_key is not null then 'missing key'
                        when type_error is not null then 'type'
                        when enum_error is not null then 'unknown enum' end as reason
            from checked
        )
        select file_id, line, case when reason is not null then raw_text end as raw_text, reason,
               coalesce(parse_error, 'empty key column(s): ' || missing_key, type_error, enum_error) as detail,
               {typed_out}
        from decided
        """
    )


# ------------------------------------------------------------------------------ one batch


def current_versions(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, tuple[int, str]]:
    """path -> (file_id, sha256) of the version of each file that counts now."""
    rows = con.execute(
        f"select path, file_id, sha256 from {SCHEMA}._files where source = ? and status in ('loaded', 'quarantined')",
        [source],
    ).fetchall()
    return {path: (int(fid), str(sha)) for path, fid, sha in rows}


def next_file_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute(f"select coalesce(max(file_id), 0) + 1 from {SCHEMA}._files").fetchone()[0])


def load_batch(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    landing: Path,
    paths: list[Path],
    run_id: str,
    tmp: Path,
    known: dict[str, tuple[int, str]],
) -> list[FileResult]:
    """Load some files of one source in one transaction (the module docstring has the rules).

    ``known`` is the manifest's current version per path; it is updated as files load.
    """
    results: list[FileResult] = []
    entries: list[Entry] = []
    file_id = next_file_id(con)
    try:
        for path in paths:
            rel = path.relative_to(landing).as_posix()
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            current = known.get(rel)
            if current and current[1] == sha:
                results.append(FileResult(source.name, rel, "skipped", current[0]))
                continue
            readable, error, temp, facts = decode(source, path, data, tmp)
            replaces = current[0] if current else None
            entries.append(
                Entry(
                    file_id,
                    rel,
                    delivery_date(path),
                    sha,
                    len(data),
                    replaces,
                    readable,
                    error,
                    temp,
                    **facts,
                )
            )
            file_id += 1
        if not entries:
            return results
        register_batch(con, entries)
        if source.format == "csv":
            stage_csv(con, source, entries)
        elif source.format == "jsonl":
            load_lines(con, entries)
            _stage_jsonl(con, source, entries)
        else:
            raise IngestError(
                f"source {source.name} declares unknown format {source.format!r}; use csv or jsonl"
            )
        _classify(con, source)
        fill_raw_text(con, entries)
        results += commit_batch(con, source, entries, run_id)
    finally:
        for e in entries:
            if e.temp:
                e.readable.unlink(missing_ok=True)
    for e in entries:
        known[e.rel] = (e.file_id, e.sha)
    return results


def commit_batch(
    con: duckdb.DuckDBPyConnection, source: Source, entries: list[Entry], run_id: str
) -> list[FileResult]:
    """Write the batch's rows, quarantine entries and manifest rows, and remove the rows of the
    versions they correct, in one transaction; check read = loaded + quarantined per file first."""
    table = f"{SCHEMA}.{quote(source.name)}"
    ids = ", ".join(str(e.file_id) for e in entries)
    lo, hi = entries[0].file_id, entries[-1].file_id
    lineage = f"file_id, line, now()::timestamp, {sql_str(run_id)}"
    con.begin()
    try:
        old = [e.replaces for e in entries if e.replaces is not None]
        if old:
            olds = ", ".join(map(str, old))
            con.execute(f"delete from {table} where _file_id in ({olds})")
            for n in source.nested:
                con.execute(f"delete from {SCHEMA}.{quote(n.table)} where _file_id in ({olds})")
            con.execute(f"update {SCHEMA}._files set status = 'replaced' where file_id in ({olds})")
        cols = ", ".join(quote("t_" + n) for n in source.column_names)
        con.execute(f"insert into {table} select {cols}, {lineage} from _typed where reason is null")
        for n in source.nested:
            keys = ", ".join(f"{quote('t_' + k)} as {quote(k)}" for k in source.key)
            child = ", ".join(f"e.{quote(c)}" for c, _ in n.columns)
            names = ", ".join(quote(c) for c, _ in nested_columns(source, n))
            con.execute(
                f"""
                insert into {SCHEMA}.{quote(n.table)}
                select {names}, {lineage} from (
                    select file_id, line, {keys}, i::integer as line_no, {child}
                    from (select *, {quote("n_" + n.field)} as arr from _typed where reason is null),
                         lateral (select unnest(arr) as e, generate_subscripts(arr, 1) as i)
                ) order by file_id, line, line_no
                """
            )
        con.execute(
            f"""insert into {SCHEMA}._quarantine
            select t.file_id, {sql_str(source.name)}, b.path, t.line, t.raw_text, t.reason, t.detail, {sql_str(run_id)}
            from _typed t join _batch b on b.file_id = t.file_id
            where t.reason is not null order by t.file_id, t.line"""
        )
        whole = [e for e in entries if e.error is not None]
        for e in whole:
            con.execute(
                f"insert into {SCHEMA}._quarantine values (?, ?, ?, null, null, ?, ?, ?)",
                [e.file_id, source.name, e.rel, e.error[0], e.error[1], run_id],
            )
        counts = {
            fid: (read, loaded, quarantined)
            for fid, read, loaded, quarantined in con.execute(
                f"""
                with ids as (select unnest([{ids}]) as file_id),
                read as (select file_id, count(*) as n from _typed group by all),
                loaded as (select _file_id as file_id, count(*) as n from {table}
                           where _file_id between {lo} and {hi} group by all),
                quarantined as (select file_id, count(*) as n from {SCHEMA}._quarantine
                                where file_id between {lo} and {hi} and line is not null group by all)
                select ids.file_id, coalesce(read.n, 0), coalesce(loaded.n, 0), coalesce(quarantined.n, 0)
                from ids left join read using (file_id) left join loaded using (file_id) left join quarantined using (file_id)
                """
            ).fetchall()
        }
        results = []
        manifest = []
        for e in entries:
            read, loaded, quarantined = counts[e.file_id]
            if read != loaded + quarantined or (e.error and read):
                raise IngestError(
                    f"{e.rel}: {read} rows read but {loaded} loaded + {quarantined} quarantined;"
                    " nothing of this file was committed; this is a loader bug, please report it"
                )
            status = "quarantined" if e.error else "loaded"
            detail = e.error[1] if e.error else None
            manifest.append(
                [
                    e.file_id,
                    source.name,
                    e.rel,
                    e.dt,
                    e.sha,
                    e.size,
                    read,
                    loaded,
                    quarantined,
                    status,
                    run_id,
                    detail,
                ]
            )
            shown = "quarantined" if e.error else ("corrected" if e.replaces else "loaded")
            results.append(
                FileResult(source.name, e.rel, shown, e.file_id, read, loaded, quarantined, detail)
            )
        # One statement for the batch: executemany costs milliseconds per row.
        values = ", ".join("(" + ", ".join(_sql_value(v) for v in row) + ")" for row in manifest)
        con.execute(
            f"""insert into {SCHEMA}._files
            select file_id, source, path, dt::date, sha256, bytes, rows_read, rows_loaded, rows_quarantined, status,
                   run_id, now()::timestamp, detail
            from (values {values}) v(file_id, source, path, dt, sha256, bytes, rows_read, rows_loaded,
                                     rows_quarantined, status, run_id, detail)"""
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return results


# ------------------------------------------------------------------------------- the step


def connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A connection on the build warehouse with the raw layer in place (Asia/Seoul session)."""
    import duckdb

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    con.execute(f"set TimeZone = {sql_str(LOCAL_TZ)}")
    ensure_raw_schema(con)
    return con


def ingest(
    warehouse: Path,
    landing: Path,
    days: list[date] | None = None,
    sources: list[str] | None = None,
    run_id: str | None = None,
    progress: bool = False,
) -> dict:
    """Load every new or corrected landed file into ``raw`` and return a per-source summary.

    Idempotent: files already loaded with the same hash are skipped, so a rerun (or an
    Airflow retry) changes nothing. Bad rows never stop the run; an ``IngestError`` does.
    """
    started = time.perf_counter()
    run_id = run_id or new_run_id()
    landing = Path(landing).resolve()
    files = discover(landing, sources, days)
    results: list[FileResult] = []
    con = connect(Path(warehouse).resolve())
    try:
        with tempfile.TemporaryDirectory(prefix="crmwh-ingest-") as tmp:
            for source, batch in batches(files):
                known = current_versions(con, source.name)
                done = load_batch(con, source, landing, batch, run_id, Path(tmp), known)
                results += done
                if progress:
                    for r in done:
                        click.echo(
                            f"{r.status:11} {r.path}  read={r.rows_read} loaded={r.rows_loaded}"
                            f" quarantined={r.rows_quarantined}",
                            err=True,
                        )
    finally:
        con.close()
    return {
        "run_id": run_id,
        "landing": str(landing),
        "warehouse": str(Path(warehouse).resolve()),
        "files": [vars(r) for r in results],
        "sources": summarize(results),
        "seconds": round(time.perf_counter() - started, 3),
    }


def batches(files: list[tuple[Source, Path]]) -> list[tuple[Source, list[Path]]]:
    """Group the files per source (in order of first appearance) into batches of at most
    BATCH_FILES files and about BATCH_BYTES bytes: per-file work in DuckDB costs a few
    milliseconds per statement, so small files (POS: one per store and day) load together."""
    per_source: dict[str, list[Path]] = {}
    sources: dict[str, Source] = {}
    for source, path in files:
        per_source.setdefault(source.name, []).append(path)
        sources[source.name] = source
    out: list[tuple[Source, list[Path]]] = []
    for name, paths in per_source.items():
        batch: list[Path] = []
        size = 0
        for path in paths:
            n = path.stat().st_size
            if batch and (len(batch) >= BATCH_FILES or size + n > BATCH_BYTES):
                out.append((sources[name], batch))
                batch, size = [], 0
            batch.append(path)
            size += n
        if batch:
            out.append((sources[name], batch))
    return out


def summarize(results: list[FileResult]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in results:
        s = out.setdefault(
            r.source,
            {
                "files": 0,
                "skipped": 0,
                "corrected": 0,
                "quarantined_files": 0,
                "rows_read": 0,
                "rows_loaded": 0,
                "rows_quarantined": 0,
            },
        )
        s["files"] += 1
        s["skipped"] += r.status == "skipped"
        s["corrected"] += r.status == "corrected"
        s["quarantined_files"] += r.status == "quarantined"
        s["rows_read"] += r.rows_read
        s["rows_loaded"] += r.rows_loaded
        s["rows_quarantined"] += r.rows_quarantined
    return out


def format_summary(summary: dict) -> str:
    header = f"{'source':18} {'files':>6} {'skipped':>8} {'corrected':>9} {'bad files':>9} {'read':>10} {'loaded':>10} {'quarantined':>11}"
    lines = [header, "-" * len(header)]
    totals = dict.fromkeys(
        (
            "files",
            "skipped",
            "corrected",
            "quarantined_files",
            "rows_read",
            "rows_loaded",
            "rows_quarantined",
        ),
        0,
    )
    for name, s in sorted(summary["sources"].items()):
        lines.append(
            f"{name:18} {s['files']:>6} {s['skipped']:>8} {s['corrected']:>9} {s['quarantined_files']:>9}"
            f" {s['rows_read']:>10} {s['rows_loaded']:>10} {s['rows_quarantined']:>11}"
        )
        for k in totals:
            totals[k] += s[k]
    lines.append("-" * len(header))
    t = totals
    lines.append(
        f"{'total':18} {t['files']:>6} {t['skipped']:>8} {t['corrected']:>9} {t['quarantined_files']:>9}"
        f" {t['rows_read']:>10} {t['rows_loaded']:>10} {t['rows_quarantined']:>11}"
    )
    lines.append(f"run {summary['run_id']} in {summary['seconds']} s")
    return "\n".join(lines)


@click.command("ingest")
@click.option(
    "--landing",
    type=click.Path(path_type=Path, file_okay=False),
    help="Landing folder (default: settings.landing).",
)
@click.option(
    "--date",
    "dates",
    multiple=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Only this delivery date (repeatable).",
)
@click.option(
    "--all", "all_days", is_flag=True, help="Every delivery date (the default when no --date is given)."
)
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--run-id", help="Run id recorded in the lineage columns (default: generated).")
@click.option("--validate/--no-validate", default=True, help="Run the raw-layer expectations after loading.")
@click.option("--progress", is_flag=True, help="Print one line per file.")
def command(
    landing: Path | None,
    dates: tuple[datetime, ...],
    all_days: bool,
    sources: tuple[str, ...],
    run_id: str | None,
    validate: bool,
    progress: bool,
) -> None:
    """Load landed files into the raw layer (idempotent; bad rows go to raw._quarantine).

    Exits non-zero on a real error or when a critical raw expectation fails, never because
    rows were quarantined.
    """
    from warehouse.config import load_settings

    if all_days and dates:
        raise click.UsageError("give either --date or --all, not both")
    settings = load_settings()
    try:
        summary = ingest(
            settings.warehouse,
            landing or settings.landing,
            days=[d.date() for d in dates] or None,
            sources=list(sources) or None,
            run_id=run_id,
            progress=progress,
        )
    except IngestError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(format_summary(summary))
    if validate:
        from expectations.raw import validate_raw

        result = validate_raw(settings.warehouse, summary["run_id"], settings)
        click.echo(
            f"validation: {'passed' if result['success'] else 'FAILED'}"
            f" ({result['critical_failures']} critical failures, {result['warnings']} warnings)"
        )
        if not result["success"]:
            raise SystemExit(1)
