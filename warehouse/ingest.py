"""Load landed source files into the raw layer: each file exactly once, bad rows set aside.

Why it is built this way:

- The loader is generic over ``warehouse.contracts.SOURCES``: a source is a declaration, and
  every SQL statement here is generated from it.
- Bulk work happens in DuckDB (``read_csv`` for quoted CSV records, JSON functions, casts) and
  numpy (finding line ends); Python hashes each file's bytes once, decodes them (Arrow only
  checks a UTF-8 file) and keeps the text in memory, so a batch of files costs a handful of
  statements, not a loop over rows. JSON structs and lists are read once, into VARCHAR
  fields that are typed and checked from there (``_parsed``).
  DuckDB's file readers cost about a millisecond per file, so nothing reads the files one by
  one: the lines come from memory (``lines_table``) and the CSV reader reads a batch's files
  as one text (``_reader_query``). A file whose quotes only enclose whole values (quoted
  strings, as most exports write them) needs no CSV reader: its lines are split on the
  delimiter (``_simply_quoted``).
- Python's part of a batch (reading, hashing, decoding, cutting lines: ``read_batch``) runs in
  a thread while DuckDB loads the batch before (``read_ahead``), so the two overlap on two
  cores.
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
- Lines end in \n or \r\n, mixed freely within a file; a line break inside a quoted CSV value
  is read as \n. Blank lines are no records.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import re
import secrets
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from warehouse.contracts import LOCAL_TZ, SOURCES, Source, delivery_date
from warehouse.raw_schema import SCHEMA, ensure_raw_schema, nested_columns, quote

if TYPE_CHECKING:  # duckdb is imported where a connection is made, so `crmwh --help` stays fast.
    import duckdb
    import pyarrow as pa

BOM = b"\xef\xbb\xbf"
LOCAL_TIMESTAMP = r"\d{4}-\d\d-\d\d([ T]\d\d:\d\d(:\d\d(\.\d+)?)?)?"  # a time without an offset
# Asia/Seoul's offset, the same all year since its last daylight saving time ended in October 1988.
LOCAL_OFFSET, LOCAL_OFFSET_SINCE = "+09:00", "1989"
# A batch's text is held in memory about three times over while its lines are cut (peak near
# 1 GB at 128 MB); every commit rewrites the table's last row group, so batches are large.
BATCH_FILES = 5000
BATCH_BYTES = 128 * 1024 * 1024


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
    readable: Path | None  # the file, None when it cannot be read
    error: tuple[str, str] | None = None  # (reason, detail) when the file cannot be read at all
    first_line: str = ""  # the header of a CSV file
    quoted: bool = False  # the text holds a double quote: only DuckDB's CSV reader splits it
    utf8: bytes = field(default=b"", repr=False)  # the decoded text, as UTF-8


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


def decode(source: Source, path: Path, data: bytes) -> tuple[Path | None, tuple[str, str] | None, dict]:
    """Decode the file into UTF-8 text, kept in memory: the readers take it from there.

    Returns (the file, or None when it cannot be read; the whole-file error; facts about the
    text, the Entry fields first_line, quoted, utf8).
    """
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            return None, ("parse", f"not a readable gzip file ({exc}); re-deliver the file"), {}
    if data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        if source.encoding.lower().replace("-", "") == "utf8" and _valid_utf8(data):
            utf8 = data
        else:  # decoding says where a file that is not valid UTF-8 goes wrong
            utf8 = data.decode(source.encoding).encode("utf-8")
    except UnicodeDecodeError as exc:
        detail = (
            f"not decodable as {source.encoding} at byte offset {exc.start} (byte 0x{data[exc.start]:02x});"
            f" re-export the file in {source.encoding}"
        )
        return None, ("encoding", detail), {}
    end = utf8.find(b"\n")
    facts = {
        "first_line": (utf8 if end < 0 else utf8[:end]).decode("utf-8").rstrip("\r"),
        "quoted": b'"' in utf8,
        "utf8": utf8,
    }
    return path, None, facts


def _valid_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8: Arrow checks it in a fifth of the time Python takes to
    decode Korean text."""
    import pyarrow as pa

    offsets = pa.array([0, len(data)], pa.int64()).buffers()[1]
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


# ------------------------------------------------------------------------- staging (VARCHAR)


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values: list) -> str:
    return "[" + ", ".join(sql_str(str(v)) for v in values) + "]"


def register_batch(con: duckdb.DuckDBPyConnection, entries: list[Entry]) -> None:
    """``_batch(file_id, path)``: the files of the batch, for the quarantine's paths."""
    con.execute(
        "create or replace temp table _batch as"
        " select unnest($1::bigint[]) as file_id, unnest($2::varchar[]) as path",
        [[e.file_id for e in entries], [e.rel for e in entries]],
    )


def lines_table(entries: list[Entry], quotes: bool = True):
    """``(file_id, line, t, balanced)`` as an Arrow table: every physical line of the readable
    files, numbered from 1, without its line end (\n or \r\n, mixed freely); ``balanced``
    says whether the double quotes before the line in its file are balanced (always true
    when ``quotes`` is false: JSON Lines need no such thing).

    The texts are in memory already (decoding needs them). numpy finds the line ends in the
    batch's joined texts and removes them; each line is then a slice of one buffer. The bytes
    are copied twice in all, and DuckDB's file readers add no per-file cost. Positions found in
    order are merged, never sorted again, and a line's file comes from its file's line count,
    not a search per line: over L's 125 batches, 30 CPU seconds instead of 39.
    """
    import numpy as np
    import pyarrow as pa

    readable = [e for e in entries if e.error is None]
    data = np.frombuffer(b"".join(e.utf8 for e in readable), dtype=np.uint8)
    sizes = np.array([len(e.utf8) for e in readable], dtype=np.int64)
    file_starts = np.cumsum(sizes) - sizes
    newlines = np.flatnonzero(data == 10)
    # A line starts after each newline and at the start of a file whose predecessor does not
    # end in one; a file's end (or its final newline) is where its last line stops.
    ends_in_newline = np.zeros(len(readable), dtype=bool)
    ends_in_newline[sizes > 0] = data[(file_starts + sizes - 1)[sizes > 0]] == 10
    unmarked = file_starts[(sizes > 0) & ~np.concatenate(([False], ends_in_newline[:-1]))]
    after = newlines[newlines + 1 < len(data)] + 1
    starts = np.insert(after, np.searchsorted(after, unmarked), unmarked)  # two sorted: merged
    starts = starts[np.diff(starts, prepend=-1) > 0]  # once each (an empty file between two)
    per_file = np.diff(np.searchsorted(starts, np.append(file_starts, len(data))))
    file_index = np.repeat(np.arange(len(readable)), per_file)
    line = np.arange(len(starts), dtype=np.int64) - np.repeat(np.cumsum(per_file) - per_file, per_file) + 1
    if quotes:  # a CSV record can start on a line when the quotes before it in its file balance
        at = np.flatnonzero(data == 34)
        in_file = np.searchsorted(at, starts) - np.repeat(np.searchsorted(at, file_starts), per_file)
        balanced = in_file % 2 == 0
    else:
        balanced = np.ones(len(starts), dtype=bool)
    # Drop the line ends: each \n and a \r just before it in the same file (not when the \n
    # opens a file: that \r ends the file before).
    carriage = newlines - 1
    crlf = (carriage >= 0) & (data[carriage] == 13)
    opening = file_starts[sizes > 0]
    crlf[np.searchsorted(newlines, opening[data[opening] == 10])] = False
    keep = np.ones(len(data), dtype=bool)
    keep[newlines] = False
    keep[carriage[crlf]] = False
    text = data[keep]
    # A line moves back by the line ends before it: its newlines and their \r.
    newlines_before = np.searchsorted(newlines, starts)
    removed = newlines_before + np.concatenate(([0], np.cumsum(crlf)))[newlines_before]
    offsets = np.append(starts - removed, len(text)).astype(np.int64)
    lines = pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(text))
    ids = np.array([e.file_id for e in readable], dtype=np.int64)
    table = pa.table({"file_id": ids[file_index], "line": line, "t": lines, "balanced": balanced})
    # Several record batches, so that DuckDB scans them in parallel.
    return pa.Table.from_batches(table.to_batches(max_chunksize=32 * 1024), schema=table.schema)


def load_lines(con: duckdb.DuckDBPyConnection, entries: list[Entry], quotes: bool = True) -> None:
    """``_lines(file_id, line, t, balanced)`` for the given files (``lines_table``)."""
    con.register("_lines", lines_table(entries, quotes))


def _stage_jsonl(con: duckdb.DuckDBPyConnection, source: Source, entries: list[Entry]) -> None:
    """``_stage``: one row per non-blank line, each contract field as VARCHAR (JSON text for
    structs and nested lists), and a parse error when the line is not a JSON object.

    ``from_json`` into a struct of VARCHARs reads every field in one pass (as
    ``json_extract_string`` does, at two thirds of its cost)."""
    names = list(source.column_names) + [n.field for n in source.nested]
    fields = sql_str(json.dumps(dict.fromkeys(names, "VARCHAR")))
    cols = ", ".join(f"v[{sql_str(n)}] as {quote('c_' + n)}" for n in names)
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
            from _lines where ltrim(t) <> ''
        ), extracted as (
            select file_id, line, raw_text, parse_error,
                   case when parse_error is null then from_json(raw_text, {fields}) end as v
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


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    entries: list[Entry],
    delim: str = ",",
    header: bool = True,
) -> None:
    """``_stage`` for a batch of CSV files, every record with its file and line (``_lines``
    must hold the batch's lines). A file without a double quote is its lines split on the
    delimiter; a file with quotes goes through DuckDB's CSV reader. A file whose header is not
    the contract's, or whose records cannot be told apart, gets a whole-file parse error on its
    entry instead."""
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
    parts = [
        f"select null::bigint as file_id, null::bigint as line, null::varchar as raw_text,"
        f" null::varchar as parse_error, {nulls} where false"
    ]
    readable = [e for e in entries if e.error is None]
    simple = _simply_quoted(con, [e for e in readable if e.quoted], delim, first)
    plain = [e for e in readable if not e.quoted or e.file_id in simple]
    if plain:
        parts.append(_split_query(source, plain, delim, first))
    quoted = [e for e in readable if e.quoted and e.file_id not in simple]
    if quoted:
        parts.append(_reader_query(con, source, quoted, delim, header))
    failed = ", ".join(str(e.file_id) for e in entries if e.error is not None) or "-1"
    drop_stage(con)
    con.execute(
        "create or replace temp view _stage as select * from ("
        + " union all ".join(f"select * from ({part})" for part in parts)
        + f") where file_id not in ({failed})"
    )


def _simply_quoted(con: duckdb.DuckDBPyConnection, entries: list[Entry], delim: str, first: int) -> set[int]:
    """The files among ``entries`` whose quotes only enclose whole values free of quotes and
    delimiters, on every record line ("a",1,,"b c"): a value is then a field of the line split
    on the delimiter, its quotes dropped, and DuckDB's CSV reader is not needed."""
    if not entries or delim in '\\]^-"':
        return set()
    value = f'"[^"{delim}]*"|[^"{delim}]*'
    ids = ", ".join(str(e.file_id) for e in entries)
    rows = con.execute(
        f"""select file_id from _lines where file_id in ({ids}) and line >= {first} and t <> ''
        group by file_id having bool_and(regexp_full_match(t, {sql_str(f"({value})([{delim}]({value}))*")}))"""
    ).fetchall()
    return {r[0] for r in rows}


def _split_query(source: Source, entries: list[Entry], delim: str, first: int) -> str:
    """Staging SQL for CSV files without quotes, or simply quoted (``_simply_quoted``): a record
    is a non-blank line, its fields are the line split on the delimiter, quotes dropped (the
    reader's own errors for a wrong field count)."""
    n = len(source.column_names)
    cols = ", ".join(
        f"case when len(f) = {n} then f[{i + 1}] end as {quote('c_' + c)}"
        for i, c in enumerate(source.column_names)
    )
    ids = ", ".join(str(e.file_id) for e in entries)
    return f"""
        select file_id, line, t as raw_text,
               case when len(f) < {n} then 'CSV record: missing columns'
                    when len(f) > {n} then 'CSV record: too many columns' end as parse_error,
               {cols}
        from (select file_id, line, t, string_split(replace(t, '"', ''), {sql_str(delim)}) as f from _lines
              where file_id in ({ids}) and line >= {first} and t <> '')"""


def _reader_query(
    con: duckdb.DuckDBPyConnection, source: Source, entries: list[Entry], delim: str, header: bool
) -> str:
    """Staging SQL for CSV files with quotes, through DuckDB's CSV reader.

    The reader costs about a millisecond per file, so the batch's files are read as one text
    (their records without the header, line ends made \n); a file with an odd number of quotes
    is read on its own, so that it cannot swallow the lines of the files after it. The reader
    does not say which line a record came from: a record starts on a non-blank line where the
    quotes before it balance (``_lines.balanced``), and the k-th record read is the k-th start
    that was not rejected. When the counts of a text disagree, its files are read again one by
    one; then, a file whose counts still disagree is taken as one record per line (a stray
    quote inside a value); a file whose counts disagree even so gets a whole-file parse error.
    """
    first = 2 if header else 1
    odd = [[e] for e in entries if e.utf8.count(b'"') % 2]
    even = [e for e in entries if not e.utf8.count(b'"') % 2]
    groups = [even, *odd] if even else odd
    queries = []
    with tempfile.TemporaryDirectory(prefix="crmwh-csv-") as tmp:
        for attempt in (1, 2, 3):
            failed = _read_groups(con, source, groups, delim, first, attempt, Path(tmp))
            done = [e for g in groups if not any(g is f for f in failed) for e in g]
            if done:
                queries.append(_records_query(source, attempt, done, first))
            groups = [[e] for g in failed for e in g]
            if not groups:
                break
    for [e] in groups:
        e.error = (
            "parse",
            "cannot tell records apart (the reader's records match neither the lines where quotes"
            " balance nor one record per line); check the file for unbalanced quotes",
        )
    nulls = ", ".join(f"null::varchar as {quote('c_' + n)}" for n in source.column_names)
    if not queries:
        return f"select null::bigint as file_id, null::bigint as line, null::varchar as raw_text, null::varchar as parse_error, {nulls} where false"
    return " union all ".join(f"select * from ({q})" for q in queries)


def _records_query(source: Source, attempt: int, entries: list[Entry], first: int) -> str:
    """SQL for the records of ``entries`` read in ``attempt``: each read record with the line it
    starts on, and each rejected one with its reason."""
    ids = ", ".join(str(e.file_id) for e in entries)
    nulls = ", ".join(f"null::varchar as {quote('c_' + n)}" for n in source.column_names)
    cols = ", ".join(f"c.{quote(n)} as {quote('c_' + n)}" for n in source.column_names)
    n = attempt
    return f"""
        with firsts as (
            select filename, min(rowid) as first_row from _csv{n} group by all
        ), good as (
            -- the k-th start that was not rejected is the k-th row read from its text
            select s.file_id, s.line,
                   f.first_row + row_number() over (partition by p.filename order by p.lo, s.line) - 1 as row
            from _starts{n} s join _parts{n} p on p.file_id = s.file_id join firsts f on f.filename = p.filename
            anti join _rej{n} r on r.file_id = s.file_id and r.line = s.line
            where s.file_id in ({ids})
        )
        select g.file_id, g.line, null::varchar as raw_text, null::varchar as parse_error, {cols}
        from _csv{n} c join good g on g.row = c.rowid
        union all
        select r.file_id, r.line, r.csv_line, 'CSV record: ' || lower(r.error_type), {nulls}
        from _rej{n} r where r.file_id in ({ids})"""


def _read_groups(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    groups: list[list[Entry]],
    delim: str,
    first: int,
    attempt: int,
    tmp: Path,
) -> list[list[Entry]]:
    """Read each group of files as one text into ``_csv<attempt>`` (rows in file order), with
    ``_rej<attempt>`` (rejected records by file and starting line) and ``_starts<attempt>``
    (where records start: where quotes balance, or every line in the third attempt); return
    the groups whose counts disagree."""
    n = attempt
    parts: list[tuple[str, int, int, int]] = []  # (text read, file_id, its first and last line there)
    names = []
    for i, group in enumerate(groups):
        out = tmp / f"attempt{n}-group{i}.csv"
        names.append(str(out))
        with out.open("wb") as f:
            lo = 1
            for e in group:
                body = e.utf8
                if first == 2:  # without the header line
                    end = body.find(b"\n")
                    body = b"" if end < 0 else body[end + 1 :]
                if b"\r\n" in body:
                    body = body.replace(b"\r\n", b"\n")
                if body and not body.endswith(b"\n"):
                    body += b"\n"
                f.write(body)
                lines = body.count(b"\n")
                parts.append((str(out), e.file_id, lo, lo + lines - 1))
                lo += lines
    con.execute(
        f"create or replace temp table _parts{n} as select unnest($1::varchar[]) as filename,"
        " unnest($2::bigint[]) as file_id, unnest($3::bigint[]) as lo, unnest($4::bigint[]) as hi",
        [list(c) for c in zip(*parts, strict=True)],
    )
    ids = ", ".join(str(p[1]) for p in parts)
    con.execute(
        f"""create or replace temp table _starts{n} as select file_id, line from _lines
        where file_id in ({ids}) and line >= {first} and t <> '' {"" if n == 3 else "and balanced"}"""
    )
    columns = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in source.column_names) + "}"
    con.execute("drop table if exists _rej_errors; drop table if exists _rej_scans")
    con.execute(
        f"""
        create or replace temp table _csv{n} as
        select * from read_csv({_sql_list(names)}, columns = {columns}, header = false, auto_detect = false,
            delim = {sql_str(delim)}, quote = '"', escape = '"', null_padding = false, filename = true,
            store_rejects = true, rejects_table = '_rej_errors', rejects_scan = '_rej_scans')
        """
    )
    # A rejected record is known by the line it starts on (the reader may name a later one).
    con.execute(
        f"""
        create or replace temp table _rej{n} as
        with errors as (
            select p.filename, p.file_id, e.line - p.lo + {first} as line, e.csv_line, e.error_type::varchar as error_type
            from _rej_errors e
            join _rej_scans s on s.scan_id = e.scan_id and s.file_id = e.file_id
            left join _parts{n} p on p.filename = s.file_path and e.line between p.lo and p.hi
        )
        select e.filename, e.file_id, s.line, first(e.csv_line) as csv_line,
               string_agg(distinct e.error_type, ', ' order by e.error_type) as error_type
        from errors e asof left join _starts{n} s on s.file_id = e.file_id and e.line >= s.line
        group by e.filename, e.file_id, s.line
        """
    )
    # Per text read: records read + rejected starts = starts, and every rejection found its start.
    bad = {
        r[0]
        for r in con.execute(
            f"""
            with starts as (select p.filename, count(*) as n from _starts{n} s join _parts{n} p using (file_id) group by all),
            parsed as (select filename, count(*) as n from _csv{n} group by all),
            rejected as (select filename, count(*) as n, count(*) filter (where line is null) as lost
                         from _rej{n} group by all)
            select f.filename from (select distinct filename from _parts{n}) f
            left join starts using (filename) left join parsed using (filename) left join rejected using (filename)
            where coalesce(parsed.n, 0) + coalesce(rejected.n, 0) <> coalesce(starts.n, 0)
               or coalesce(rejected.lost, 0) > 0
            """
        ).fetchall()
    }
    if con.execute(f"select count(*) from _rej{n} where filename is null").fetchone()[0]:
        bad = set(names)  # a rejection outside every file: trust none of this attempt
    return [g for g, name in zip(groups, names, strict=True) if name in bad]


def fill_raw_text(con: duckdb.DuckDBPyConnection, entries: list[Entry]) -> None:
    """Give quarantined rows that have no raw text yet (CSV reader rows that parsed but did not
    convert) their line as it stands in the file (``_lines`` must hold the batch's lines)."""
    missing = "from _typed where reason is not null and raw_text is null"
    if not con.execute(f"select count(*) {missing}").fetchone()[0]:
        return
    con.execute(
        f"""update _typed set raw_text = l.t
        from (select * from _lines semi join (select file_id, line {missing}) using (file_id, line)) l
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


def _parsed(v: str, columns: list[tuple[str, str]], array: bool = False) -> str:
    """SQL reading the JSON text ``v`` once into a struct with a VARCHAR per field (JSON text for
    a nested value), or for ``array`` a list of such structs; NULL when ``v`` is not a JSON
    object (array)."""
    shape = json.dumps({c: "VARCHAR" for c, _ in columns})
    shape, opener = (f"[{shape}]", "[") if array else (shape, "{")
    return (
        f"case when json_valid({v}) and ltrim({v})[1] = '{opener}' then from_json({v}, {sql_str(shape)}) end"
    )


def _typed(source: Source, column: str, typ: str, v: str) -> str:
    """SQL turning the VARCHAR expression ``v`` into ``typ``; NULL when it does not convert. For
    a struct, ``v`` is the value ``_parsed``."""
    fmt = source.time_formats.get(column)
    base = typ.upper()
    if fmt:
        return f"try_strptime({v}, {sql_str(fmt)})"
    if base == "TIMESTAMP":
        # Local values stay as they are; values with an offset become Asia/Seoul local time
        # (time zone arithmetic costs four times the plain cast: only those values pay it).
        # A value at Seoul's own offset since its last daylight saving time (1988) is its
        # local time as written, read by strptime at a third of the arithmetic's cost.
        return (
            f"coalesce(case when suffix({v}, {sql_str(LOCAL_OFFSET)}) and {v} >= {sql_str(LOCAL_OFFSET_SINCE)}"
            f" then try_strptime({v}, {sql_str('%Y-%m-%dT%H:%M:%S' + LOCAL_OFFSET)}) end,"
            f" case when regexp_full_match({v}, {sql_str(LOCAL_TIMESTAMP)}) then try_cast({v} as timestamp)"
            f" else timezone({sql_str(LOCAL_TZ)}, try_cast({v} as timestamptz)) end)"
        )
    if base == "VARCHAR":
        return v
    fields = _struct_fields(typ)
    if fields:
        packed = ", ".join(f"{quote(f)} := {_typed(source, f, t, f'{v}.{quote(f)}')}" for f, t in fields)
        return f"case when {v} is null then null else struct_pack({packed})::{typ} end"
    if base in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"):
        # try_cast would round '4.5' to 5: an integer column takes integers only.
        return f"case when regexp_full_match({v}, '\\s*[-+]?[0-9]+\\s*') then try_cast({v} as {typ}) end"
    return f"try_cast({v} as {typ})"


def _type_errors(source: Source) -> list[tuple[str, str]]:
    """(SQL true when a value does not convert, the message saying so) for every typed value of
    ``_classify``'s rows: ``v_``/``t_`` a column before and after ``_typed``, ``p_`` a struct or
    nested list ``_parsed``, ``c_`` a nested list's JSON text. A non-empty value whose
    conversion is NULL is a type error; a struct or list whose JSON is not an object (array),
    or with such a field, is one too."""
    out = []
    for n, typ in source.columns:
        v, t, p = quote("v_" + n), quote("t_" + n), quote("p_" + n)
        fields = _struct_fields(typ)
        if fields:
            bad_field = " or ".join(
                f"({p}.{quote(f)} is not null and {t}.{quote(f)} is null)" for f, _ in fields
            )
            flag = f"({v} is not null and ({p} is null or {bad_field}))"
        elif typ.upper() != "VARCHAR":
            flag = f"({v} is not null and {t} is null)"
        else:
            continue
        out.append((flag, f"{sql_str(n + '=')} || {v} || {sql_str(' is not ' + typ)}"))
    for n in source.nested:
        c, p = quote("c_" + n.field), quote("p_" + n.field)
        # An element is bad when none of its fields is there (it is no object, or an empty
        # one: from_json reads both as all NULL) or when one does not convert.
        empty = " and ".join(f"x.{quote(col)} is null" for col, _ in n.columns)
        bad = " or ".join(
            [f"x is null or ({empty})"]
            + [
                f"(x.{quote(col)} is not null and {_typed(source, col, typ, f'x.{quote(col)}')} is null)"
                for col, typ in n.columns
                if typ.upper() != "VARCHAR"
            ]
        )
        out.append(
            (
                f"({c} is not null and ({p} is null or len(list_filter({p}, x -> {bad})) > 0))",
                sql_str(f"{n.field} is not a list of valid {n.field} objects"),
            )
        )
    return out


def _classify(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    """``_typed``: every staged row with its typed values and, when it cannot load, a reason.

    Each value is converted once (``t_<column>``, ``n_<nested list>``); JSON structs and lists
    are read once (``p_``) and their fields converted from there (``_type_errors`` has the
    rules).
    """
    v = {n: quote("v_" + n) for n in source.column_names}
    t = {n: quote("t_" + n) for n in source.column_names}
    values = ", ".join(f"nullif({quote('c_' + n)}, '') as {v[n]}" for n in source.column_names)
    structs = {n: fields for n, typ in source.columns if (fields := _struct_fields(typ))}
    parsed = [f"{_parsed(v[n], fields)} as {quote('p_' + n)}" for n, fields in structs.items()] + [
        f"{_parsed(quote('c_' + n.field), n.columns, array=True)} as {quote('p_' + n.field)}"
        for n in source.nested
    ]
    typed = [
        f"{_typed(source, n, typ, quote('p_' + n) if n in structs else v[n])} as {t[n]}"
        for n, typ in source.columns
    ]
    for n in source.nested:
        p = quote("p_" + n.field)
        packed = ", ".join(f"{quote(c)} := {_typed(source, c, typ, f'x.{quote(c)}')}" for c, typ in n.columns)
        typed.append(f"list_transform({p}, x -> struct_pack({packed})) as {quote('n_' + n.field)}")
    errors = _type_errors(source)
    missing = [f"case when {v[k]} is null then {sql_str(k)} end" for k in source.key]
    type_bad = [f"case when {flag} then {message} end" for flag, message in errors]
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
    type_flags = [flag for flag, _ in errors]
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
        ), parsed as (
            select *, {", ".join(parsed) or "null as _unparsed"} from raw_values
        ), converted as (
            select *, {", ".join(typed)} from parsed
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
    """path -> (file_id, sha256) of the version of each file of ``source`` that counts now."""
    return versions_by_source(con).get(source, {})


def versions_by_source(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, tuple[int, str]]]:
    """source -> ``current_versions``, in one query."""
    out: dict[str, dict[str, tuple[int, str]]] = {}
    for source, path, fid, sha in con.execute(
        f"select source, path, file_id, sha256 from {SCHEMA}._files where status in ('loaded', 'quarantined')"
    ).fetchall():
        out.setdefault(source, {})[path] = (int(fid), str(sha))
    return out


def next_file_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute(f"select coalesce(max(file_id), 0) + 1 from {SCHEMA}._files").fetchone()[0])


@dataclass
class Batch:
    """Files of one source read into memory, ready for DuckDB (``read_batch``)."""

    source: Source
    skipped: list[FileResult]  # files whose path and hash the manifest holds already
    entries: list[Entry]  # the files to load
    lines: pa.Table | None  # ``lines_table(entries)``; None when there is nothing to load


def read_batch(
    source: Source,
    landing: Path,
    paths: list[Path],
    known: dict[str, tuple[int, str]],
    file_ids: Iterator[int],
) -> Batch:
    """Read, hash and decode some files of one source and cut their lines: Python and numpy
    only, no connection, so that it can run beside DuckDB's work on the batch before.

    ``known`` is the manifest's current version per path; each file to load takes the next
    id of ``file_ids``.
    """
    skipped: list[FileResult] = []
    entries: list[Entry] = []
    for path in paths:
        read = read_entry(
            source, path, path.relative_to(landing).as_posix(), delivery_date(path), known, file_ids
        )
        (skipped if isinstance(read, FileResult) else entries).append(read)
    lines = lines_table(entries, quotes=source.format == "csv") if entries else None
    return Batch(source, skipped, entries, lines)


def read_entry(
    source: Source,
    path: Path,
    rel: str,
    dt: date | None,
    known: dict[str, tuple[int, str]],
    file_ids: Iterator[int],
) -> Entry | FileResult:
    """Read, hash and decode one file, named ``rel`` in the manifest: the Entry to load (with the
    next id of ``file_ids``), or its "skipped" result when ``known`` holds the same hash."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    current = known.get(rel)
    if current and current[1] == sha:
        return FileResult(source.name, rel, "skipped", current[0])
    readable, error, facts = decode(source, path, data)
    replaces = current[0] if current else None
    return Entry(next(file_ids), rel, dt, sha, len(data), replaces, readable, error, **facts)


def load_batch(con: duckdb.DuckDBPyConnection, batch: Batch, run_id: str) -> list[FileResult]:
    """Load a batch read by ``read_batch`` in one transaction (the module docstring has the rules)."""
    source, entries = batch.source, batch.entries
    if not entries:
        return batch.skipped
    register_batch(con, entries)
    con.register("_lines", batch.lines)
    try:
        if source.format == "csv":
            stage_csv(con, source, entries)
        elif source.format == "jsonl":
            _stage_jsonl(con, source, entries)
        else:
            raise IngestError(
                f"source {source.name} declares unknown format {source.format!r}; use csv or jsonl"
            )
        _classify(con, source)
        fill_raw_text(con, entries)
        return batch.skipped + commit_batch(con, source, entries, run_id)
    finally:
        con.unregister("_lines")


def _row_days(source: Source) -> list[str]:
    """SQL: the days a row `r` of `source` names: its timestamps' days, or the first day of its
    month (source.month_column)."""
    days = [f"cast(r.{quote(name)} as date)" for name, typ in source.columns if typ == "TIMESTAMP"]
    if source.month_column:
        days.append(f"try_cast(r.{quote(source.month_column)} || '-01' as date)")
    return days


def _record_replaced_days(con: duckdb.DuckDBPyConnection, source: Source, table: str, olds: str) -> None:
    """Write into raw._replaced_days the days (_row_days) of the rows that the files `olds`
    loaded into `table`, and of every row sharing their source.group_column value, before a
    correction deletes them (raw_schema.REPLACED_DAYS_DDL)."""
    days = _row_days(source)
    if not days:
        return
    replaced = f"select * from {table} where _file_id in ({olds})"
    rows = replaced
    if source.group_column:  # and the rows of their groups in every file
        group = quote(source.group_column)
        rows += (
            f" union all by name select g._file_id, r.* exclude (_file_id)"
            f" from ({replaced}) as g join {table} as r on r.{group} = g.{group}"
        )
    selects = " union all ".join(f"select r._file_id, {day} as day from ({rows}) as r" for day in days)
    con.execute(
        f"insert into {SCHEMA}._replaced_days select distinct _file_id, {sql_str(source.name)}, day,"
        f" now()::timestamp from ({selects}) where day is not null"
    )


def _digits(value: str) -> str:
    """SQL: the digits of a value, as dbt's staging compares phones."""
    return f"regexp_replace({value}, '[^0-9]', '', 'g')"


def _matched(source: Source) -> list[Source]:
    """The sources whose rows without customer_id are matched to customers through `source`."""
    return [s for s in SOURCES.values() if s.matched_by and s.matched_by.source == source.name]


def _holders(matched: Source, table: str, customers: str) -> str:
    """SQL: (customer_id, digits, _file_id) of the rows of `table` (matched.matched_by.source)
    of `customers`, with the digits of the value `matched` is matched by."""
    by = _digits(quote(matched.matched_by.by))
    return f"select customer_id, {by} as digits, _file_id from {table} where customer_id in ({customers})"


def _note_holders(con: duckdb.DuckDBPyConnection, matched: Source, table: str, olds: str) -> None:
    """Before a batch of `table` changes anything: who holds which value (_holders) among the
    customers its rows name or its correction deletes rows of (files `olds`)."""
    customers = "select t_customer_id from _typed where reason is null"
    if olds:
        customers += f" union select customer_id from {table} where _file_id in ({olds})"
    con.execute(
        f"create or replace temp table _holders_{matched.name} as {_holders(matched, table, customers)}"
    )


def _record_rematched_days(con: duckdb.DuckDBPyConnection, matched: Source, table: str, run_id: str) -> None:
    """After the batch: write into raw._replaced_days the days (_row_days) of the rows of
    `matched` without customer_id whose value a customer holds now and did not before
    (_note_holders), or held and holds no more: which customer they belong to may have changed,
    and no row loaded since names them. Rows this run loaded are left out: the next build
    takes their days as new. A change's file is the earliest loaded (or deleted) file that
    held the pair. Holding is read from every raw row, where staging keeps a version's latest
    delivery: a version delivered again in another file with another value (not a correction
    of its own file) leaves the value it replaced held here."""
    before = f"_holders_{matched.name}"
    customers = (
        f"select customer_id from {before} union select t_customer_id from _typed where reason is null"
    )
    column = _digits("r." + quote(matched.matched_by.column))
    days = ", ".join(_row_days(matched))
    con.execute(
        f"""
        insert into {SCHEMA}._replaced_days
        with
        before as (select customer_id, digits, min(_file_id) as file_id from {before} group by all),
        after as (
            select customer_id, digits, min(_file_id) as file_id
            from ({_holders(matched, table, customers)}) group by all
        ),
        changed as (
            select digits, file_id from before anti join after using (customer_id, digits)
            union all
            select digits, file_id from after anti join before using (customer_id, digits)
        )
        select distinct file_id, {sql_str(matched.name)}, day, now()::timestamp from (
            select changed.file_id, unnest([{days}]) as day
            from (
                -- a filter first, then the join: at L 0.6 s against 1.0 s
                select * from {SCHEMA}.{quote(matched.name)} as r
                where r.customer_id is null and r._run_id <> {sql_str(run_id)}
                    and {column} in (select digits from changed where digits <> '')
            ) as r
            join changed on changed.digits = {column}
        ) where day is not null
        """
    )
    con.execute(f"drop table {before}")


def commit_batch(
    con: duckdb.DuckDBPyConnection, source: Source, entries: list[Entry], run_id: str
) -> list[FileResult]:
    """Write the batch's rows, quarantine entries and manifest rows, and remove the rows of the
    versions they correct, in one transaction; check read = loaded + quarantined per file first."""
    table = f"{SCHEMA}.{quote(source.name)}"
    ids = ", ".join(str(e.file_id) for e in entries)
    lo, hi = entries[0].file_id, entries[-1].file_id
    lineage = f"file_id, line, now()::timestamp, {sql_str(run_id)}"
    matches = _matched(source)
    con.begin()
    try:
        old = [e.replaces for e in entries if e.replaces is not None]
        olds = ", ".join(map(str, old))
        for matched in matches:
            _note_holders(con, matched, table, olds)
        if old:
            _record_replaced_days(con, source, table, olds)
            con.execute(f"delete from {table} where _file_id in ({olds})")
            for n in source.nested:
                con.execute(f"delete from {SCHEMA}.{quote(n.table)} where _file_id in ({olds})")
            con.execute(f"update {SCHEMA}._files set status = 'replaced' where file_id in ({olds})")
        cols = ", ".join(quote("t_" + n) for n in source.column_names)
        # A row carries its file and line, so its place in the table says nothing: an insert
        # that kept the order cost twice as much in a table holding earlier batches.
        con.execute("set preserve_insertion_order = false")
        try:
            con.execute(f"insert into {table} select {cols}, {lineage} from _typed where reason is null")
        finally:  # the CSV reader's rows must stay in file order (_read_groups)
            con.execute("reset preserve_insertion_order")
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
        for matched in matches:
            _record_rematched_days(con, matched, table, run_id)
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
        # One statement for the batch, its values as lists (executemany costs milliseconds per row).
        con.execute(
            f"""insert into {SCHEMA}._files (file_id, source, path, dt, sha256, bytes, rows_read,
                rows_loaded, rows_quarantined, status, run_id, loaded_at, detail)
            select unnest($1::bigint[]), unnest($2::varchar[]), unnest($3::varchar[]), unnest($4::date[]),
                   unnest($5::varchar[]), unnest($6::bigint[]), unnest($7::bigint[]), unnest($8::bigint[]),
                   unnest($9::bigint[]), unnest($10::varchar[]), unnest($11::varchar[]), now()::timestamp,
                   unnest($12::varchar[])""",
            [list(column) for column in zip(*manifest, strict=True)],
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
        known = versions_by_source(con)
        file_ids = itertools.count(next_file_id(con))  # taken in batch order: one reader thread

        def read(item: tuple[Source, list[Path]]) -> Batch:
            source, paths = item
            return read_batch(source, landing, paths, known.get(source.name, {}), file_ids)

        # The next batch is read while DuckDB loads this one (discover lists a path once, so a
        # batch's reading never depends on the load before it).
        for batch in read_ahead(read, batches(files)):
            done = load_batch(con, batch, run_id)
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


def read_ahead(
    read: Callable[[tuple[Source, list[Path]]], Batch], items: list[tuple[Source, list[Path]]]
) -> Iterator[Batch]:
    """``read`` over ``items`` in order, each in a thread while the caller has the one before
    (a caller that stops early waits for the one read under way)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[Batch] | None = None
        for item in items:
            following = pool.submit(read, item)
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()


def batches(files: list[tuple[Source, Path]]) -> list[tuple[Source, list[Path]]]:
    """Group the files per source (in order of first appearance) into batches of at most
    BATCH_FILES files and about BATCH_BYTES bytes: a batch costs a few statements and a
    commit whatever its size, so small files (POS: one per store and day) load together."""
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
