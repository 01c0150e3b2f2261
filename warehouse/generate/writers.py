"""Turning a source's rows into landing files, in the exact formats of SOURCES.md.

A source is serialised in file order a chunk of rows at a time (pyarrow's CSV writer; JSON
Lines assembled from per-column JSON fragments with pyarrow and numpy) into a staging file, and
later cut into landing files at row boundaries: C code per chunk instead of a Python call per
row, and memory that does not grow with the source. Defects (mess.py) are edits of the few
affected lines, made while the files are cut.
"""

from __future__ import annotations

import functools
import io
import os
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from warehouse.contracts import SOURCES, Source
from warehouse.generate import mess as messmod
from warehouse.generate.mess import MessRates


@dataclass
class Rows:
    """One source's rows for the whole window, before they are cut into files.

    ``data`` is a table of the contract columns, in order, or for a big source a function
    that formats the rows at given indices into such a table: staging calls it a chunk at a
    time, so the whole source never exists as text columns at once."""

    source: str
    data: pa.Table | Callable[[np.ndarray], pa.Table]
    dt: np.ndarray  # delivery day index per row
    part: np.ndarray | None = None  # second file key (POS: store index)
    sort: np.ndarray | None = None  # order inside a file (e.g. event time)
    # (dt, part) pairs that get a file even when no row falls in them
    expected: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Written:
    """What was written, and a small thread pool that does the writing: file system calls
    release the GIL, so serialising the next source overlaps with writing this one."""

    files: list[dict] = field(default_factory=list)  # source, path, dt, rows, bytes
    mess: list[dict] = field(default_factory=list)  # source, path, line, kind
    redeliveries: list[dict] = field(default_factory=list)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=2))
    pending: deque = field(default_factory=deque)
    batch: list = field(default_factory=list)
    batch_bytes: int = 0
    dirs: set[str] = field(default_factory=set)

    def write(self, path: str, data: bytes) -> None:
        parent = os.path.dirname(path)
        fresh = parent not in self.dirs
        self.dirs.add(parent)
        self.batch.append((path, data, fresh))
        self.batch_bytes += len(data)
        if len(self.batch) >= 64 or self.batch_bytes >= 32 << 20:
            self._submit()

    def _submit(self) -> None:
        if self.batch:
            self.pending.append(self.pool.submit(_write_batch, self.batch))
            self.batch, self.batch_bytes = [], 0
        while len(self.pending) > 8:  # bound the memory held by queued writes
            self.pending.popleft().result()

    def close(self) -> None:
        try:
            self._submit()
            while self.pending:
                self.pending.popleft().result()  # re-raises a failed write, naming its path
        finally:
            self.pool.shutdown(wait=True)


def _write_batch(batch: list[tuple[str, bytes, bool]]) -> None:
    for path, data, fresh in batch:
        if fresh:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except FileNotFoundError:  # the folder's first file is being written by the other thread
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)


# ---- vectorised value formatting -------------------------------------------------------------


def _fixed(buf: np.ndarray, mask: np.ndarray | None) -> pa.Array:
    """A string array from an (n, width) byte matrix, without a Python call per value."""
    n, width = buf.shape
    big = n * width >= 2**31 - 1
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64 if big else np.int32)
    validity = None
    nulls = 0
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little"))
        nulls = int(mask.sum())
    arr = pa.Array.from_buffers(
        pa.large_string() if big else pa.string(),
        n,
        [validity, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(buf).reshape(-1))],
        null_count=nulls,
    )
    return arr.cast(pa.string()) if big else arr


_DIGITS4 = np.array([list(f"{i:04d}".encode()) for i in range(10000)], dtype=np.uint8)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers: (n, width) bytes."""
    v = values.astype(np.int64)
    cols = []
    rest = width
    while rest > 0:
        w = min(4, rest)
        cols.append(_DIGITS4[v % 10**w][:, 4 - w :])
        v = v // 10**w
        rest -= w
    return cols[0] if len(cols) == 1 else np.hstack(cols[::-1])


def _render(pattern: str, values: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Format ``n`` rows with a strftime-like ``pattern`` from integer fields: (n, width) bytes."""
    widths = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
    cols: list[np.ndarray] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "%":
            key = pattern[i + 1]
            cols.append(_digits(values[key], widths[key]))
            i += 2
        else:
            raw = np.frombuffer(pattern[i].encode(), dtype=np.uint8)
            cols.append(np.broadcast_to(raw, (n, len(raw))))
            i += 1
    return np.hstack(cols).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _time_table(pattern: str) -> np.ndarray:
    """Every second of a day formatted with ``pattern``: (86400, width) bytes."""
    sec = np.arange(86400)
    return _render(pattern, {"H": sec // 3600, "M": sec // 60 % 60, "S": sec % 60}, 86400)


def _date_table(pattern: str, lo: int, hi: int) -> np.ndarray:
    """Days lo..hi (since 1970-01-01) formatted with ``pattern``: (hi - lo + 1, width) bytes."""
    d = np.arange(lo, hi + 1).astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    values = {
        "Y": d.astype("datetime64[Y]").astype(np.int64) + 1970,
        "m": month.astype(np.int64) % 12 + 1,
        "d": (d - month).astype(np.int64) + 1,
    }
    return _render(pattern, values, hi - lo + 1)


def fmt_ts(
    seconds: np.ndarray, pattern: str = "%Y-%m-%d %H:%M:%S", mask: np.ndarray | None = None
) -> pa.Array:
    """Local zone-less epoch seconds -> strings (``mask`` True = NULL).

    The date part is formatted once per distinct day and the time part once per second of the
    day (cached); each value is then two row gathers, so millions of timestamps cost little.
    """
    sec = np.asarray(seconds, dtype=np.int64).reshape(-1)
    if mask is not None:
        sec = np.where(mask, 0, sec)
    cut = pattern.find("%H")
    date_part, time_part = (pattern, "") if cut < 0 else (pattern[:cut], pattern[cut:])
    days = np.floor_divide(sec, 86400)
    pieces = []
    if len(sec) and date_part:
        lo, hi = int(days.min()), int(days.max())
        pieces.append(_date_table(date_part, lo, hi)[days - lo])
    if len(sec) and time_part:
        pieces.append(_time_table(time_part)[sec - days * 86400])
    if not len(sec):
        return pa.array([], type=pa.string())
    buf = pieces[0] if len(pieces) == 1 else np.hstack(pieces)
    return _fixed(buf, mask)


def fmt_date(seconds: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return fmt_ts(seconds, "%Y-%m-%d", mask)


def fmt_id(prefix: str, numbers: np.ndarray, width: int, mask: np.ndarray | None = None) -> pa.Array:
    """``prefix`` + zero-padded number (wider when a number needs it), e.g. C0000001."""
    v = np.asarray(numbers, dtype=np.int64).reshape(-1)
    if mask is not None:
        v = np.where(mask, 0, v)
    top = int(v.max()) if len(v) else 0
    width = max(width, len(str(top)))
    digits = _digits(v, width)
    raw = np.frombuffer(prefix.encode(), dtype=np.uint8)
    buf = np.hstack([np.broadcast_to(raw, (len(v), len(raw))), digits]) if len(raw) else digits
    return _fixed(buf, mask)


def take(pool, idx: np.ndarray, mask: np.ndarray | None = None) -> pa.DictionaryArray:
    """Values of ``pool`` at ``idx`` as a dictionary array: no string is copied per row, and
    serialisers encode each distinct value once."""
    dictionary = pa.array(list(pool), type=pa.string())
    indices = pa.array(np.asarray(idx, dtype=np.int32).reshape(-1), mask=mask)
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def nullable(values: np.ndarray, mask: np.ndarray | None, type_=None) -> pa.Array:
    return pa.array(values, mask=mask, type=type_)


# ---- serialisation ---------------------------------------------------------------------------


JSON_BATCH = 400_000


def _serialise(src: Source, table: pa.Table) -> bytes:
    if len(table) == 0:
        return b""
    if src.format == "csv":
        buf = io.BytesIO()
        pcsv.write_csv(table, buf, pcsv.WriteOptions(include_header=False, quoting_style="needed"))
        blob = buf.getvalue()
        if src.encoding != "utf-8" and not blob.isascii():
            blob = blob.decode("utf-8").encode(src.encoding)
        return blob
    out = []
    for lo in range(0, len(table), JSON_BATCH):
        part = table.slice(lo, JSON_BATCH)
        arr = _object([part.column(c).combine_chunks() for c in part.column_names], part.column_names, "\n")
        out.append(_data_bytes(arr))
    return b"".join(out)


def _data_bytes(arr: pa.Array) -> bytes:
    """The concatenated values of a string array (its data buffer, between the first and last
    offsets)."""
    dtype = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=dtype)[arr.offset : arr.offset + len(arr) + 1]
    return arr.buffers()[2].to_pybytes()[int(offsets[0]) : int(offsets[-1])]


def _fixed_width(arr: pa.Array) -> tuple[np.ndarray, int] | None:
    """The (n, width) byte matrix of a string array whose values all have one length."""
    if len(arr) == 0 or not pa.types.is_string(arr.type):
        return None
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    width = int(offsets[1] - offsets[0])
    if width == 0 or not np.all(np.diff(offsets) == width):
        return None
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(len(arr), width), width


def _escape_needed(arr: pa.Array) -> bool:
    if len(arr) == 0:
        return False
    data = np.frombuffer(_data_bytes(arr), dtype=np.uint8)
    return bool(np.any((data == 34) | (data == 92) | (data < 32)))


def _escape(arr: pa.Array) -> pa.Array:
    arr = pc.replace_substring(arr, "\\", "\\\\")
    arr = pc.replace_substring(arr, '"', '\\"')
    return pc.replace_substring_regex(arr, r"[\x00-\x1f]", " ")


def _fragment(prefix: str, arr: pa.Array) -> pa.Array:
    """``prefix`` followed by each value as JSON text (``null`` for NULL)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    null_text = pa.scalar(prefix + "null")
    if pa.types.is_dictionary(t):
        texts = pa.concat_arrays(
            [_fragment(prefix, arr.dictionary).cast(pa.string()), pa.array([prefix + "null"])]
        )
        idx = pc.fill_null(arr.indices, len(arr.dictionary))
        return texts.take(idx)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if _escape_needed(arr):
            arr = _escape(arr)
        fixed = _fixed_width(arr)
        if fixed is not None:
            matrix, _ = fixed
            head = np.frombuffer((prefix + '"').encode(), dtype=np.uint8)
            n = len(arr)
            buf = np.hstack(
                [np.broadcast_to(head, (n, len(head))), matrix, np.full((n, 1), 34, dtype=np.uint8)]
            )
            text = _fixed(buf, None)
        else:
            text = pc.binary_join_element_wise(prefix + '"', arr, '"', "")
    elif pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        inner = _object([arr.field(i) for i in range(t.num_fields)], names)
        text = pc.binary_join_element_wise(prefix, inner, "")
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        elems = _fragment("", pc.list_flatten(arr))
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), elems), ",")
        text = pc.binary_join_element_wise(prefix + "[", joined, "]", "")
    else:
        text = pc.binary_join_element_wise(prefix, pc.cast(arr, pa.string()), "")
    if arr.null_count:
        text = pc.if_else(pc.is_null(arr), null_text, text)
    return text


def _object(columns: list[pa.Array], names: list[str], end: str = "") -> pa.Array:
    pieces: list = []
    for i, (name, col) in enumerate(zip(names, columns, strict=True)):
        pieces.append(_fragment(("{" if i == 0 else ",") + f'"{name}":', col))
    return pc.binary_join_element_wise(*pieces, "}" + end, "")


def json_objects(table: pa.Table) -> pa.Array:
    """One compact JSON object per row, keys in column order (what ``json.dumps`` would give
    with ``separators=(",", ":")`` and ``ensure_ascii=False``)."""
    return _object([table.column(c).combine_chunks() for c in table.column_names], table.column_names)


def header(src: Source) -> bytes:
    return (",".join(src.column_names) + "\n").encode(src.encoding) if src.format == "csv" else b""


def file_name(src: Source, day: date, part: int) -> str:
    return src.file_pattern.format(
        source=src.name, day=day.strftime("%Y%m%d"), store_id=f"S{part + 1:03d}", month=_month(day)
    )


def _month(day: date) -> str:
    prev = day.replace(day=1) - timedelta(days=1)
    return prev.strftime("%Y-%m")  # finance: the month before the delivery


# ---- staging and writing -----------------------------------------------------------------

# Rows serialised at a time: a source is never formatted whole, so memory stays flat however
# many rows it has (the text of a chunk is a few hundred MB at most).
CHUNK_ROWS = 400_000


@dataclass
class Staged:
    """One source serialised on disk in file order, one line per row, and where each landing
    file's rows lie in it: what the writing pass reads back, file by file."""

    source: str
    path: Path
    n: int  # rows
    # (dt, part) -> (first row, end row, first byte, end byte); every file, empty ones too
    files: dict[tuple[int, int], tuple[int, int, int, int]]


def stage(rows: Rows, folder: Path) -> Staged:
    """Sort one source into file order and serialise it, CHUNK_ROWS rows at a time, to
    ``folder/<source>.txt``: the sources are built in one order and written in another (the
    defects' random draws follow SOURCES), and text on disk costs no memory in between."""
    src = SOURCES[rows.source]
    n = len(rows.dt)
    part = rows.part if rows.part is not None else np.zeros(n, dtype=np.int64)
    sort = rows.sort if rows.sort is not None else np.zeros(n, dtype=np.int64)
    order = np.lexsort((np.arange(n), sort, part, rows.dt))
    dt_s, part_s = rows.dt[order], part[order]
    in_order = n == 0 or bool(np.all(order[1:] > order[:-1]))

    # file boundaries (row index where each file starts, and n)
    keys = dt_s.astype(np.int64) * 100_000 + part_s
    change = np.flatnonzero(np.diff(keys)) + 1 if n else np.zeros(0, dtype=np.int64)
    bounds = np.concatenate([[0], change, [n]]).astype(np.int64) if n else np.zeros(1, dtype=np.int64)
    del keys, change
    byte_at = np.zeros(len(bounds), dtype=np.int64)  # where the row at each boundary starts
    path = Path(folder) / f"{src.name}.txt"
    with open(path, "wb") as fh:
        pos = 0
        for lo in range(0, n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, n)
            if callable(rows.data):
                chunk = rows.data(order[lo:hi])
            elif in_order:
                chunk = rows.data.slice(lo, hi - lo)
            else:
                chunk = rows.data.take(pa.array(order[lo:hi]))
            blob = _serialise(src, chunk)
            del chunk
            ends = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == 10) + 1
            assert len(ends) == hi - lo, (
                f"{src.name}: {len(ends)} lines for {hi - lo} rows (a value holds a newline)"
            )
            inside = (bounds > lo) & (bounds <= hi)
            byte_at[inside] = pos + ends[bounds[inside] - lo - 1]
            fh.write(blob)
            pos += len(blob)
            del blob
    files: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    for i in range(len(bounds) - 1):
        a, b = int(bounds[i]), int(bounds[i + 1])
        files[(int(dt_s[a]), int(part_s[a]))] = (a, b, int(byte_at[i]), int(byte_at[i + 1]))
    for key in rows.expected:
        files.setdefault(key, (0, 0, 0, 0))
    return Staged(rows.source, path, n, files)


def write_source(
    out: Path,
    staged: Staged,
    start: date,
    days: int,
    rates: MessRates,
    rng: np.random.Generator,
    written: Written,
) -> None:
    """Write every file of one staged source under ``out/landing`` (and ``out/superseded``),
    with its defects; the staged text is read back one file at a time."""
    src = SOURCES[staged.source]
    n = staged.n
    files = staged.files
    row_mess = messmod.plan_rows(rng, src, n, rates) if n else {}
    eligible_late = src.kind != "snapshot" and src.name != "referrals"
    keys_sorted = sorted(files)
    late: dict[tuple[int, int], int] = {}
    redeliver: set[tuple[int, int]] = set()
    if eligible_late:
        for key in keys_sorted:
            a, b = files[key][:2]
            if rng.random() < rates.late_file and key[0] + 3 < days and b > a:
                late[key] = int(rng.integers(1, 4))
            if rng.random() < rates.redelivery and b - a >= 3:
                redeliver.add(key)
    edit_rows = sorted(row_mess)
    head = header(src)
    offset = 2 if src.format == "csv" else 1
    enc = src.encoding
    landing, superseded = str(out / "landing"), str(out / "superseded")
    folders: dict[int, str] = {}
    with open(staged.path, "rb") as staged_text:
        for key in keys_sorted:
            a, b, lo, hi = files[key]
            day_idx, p = key
            deliver = day_idx + late.get(key, 0)
            if deliver not in folders:
                folders[deliver] = f"dt={(start + timedelta(days=deliver)).isoformat()}"
            rel = f"{src.name}/{folders[deliver]}/{file_name(src, start + timedelta(days=day_idx), p)}"
            staged_text.seek(lo)
            body = staged_text.read(hi - lo)
            edits = edit_rows[bisect_left(edit_rows, a) : bisect_left(edit_rows, b)]
            shift = 0  # duplicates inserted so far push later lines down
            if edits:
                view = memoryview(body)
                starts = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10) + 1
                starts = np.concatenate([[0], starts]).tolist()  # line i is starts[i]..starts[i + 1]
                pieces: list = [head]
                pos = 0
                for r in edits:
                    kind = row_mess[r]
                    s, e = starts[r - a], starts[r - a + 1]
                    pieces.append(view[pos:s])
                    edited = (
                        messmod.edit_line(body[s : e - 1].decode(enc), kind, src, rng).encode(enc) + b"\n"
                    )
                    pieces.append(edited)
                    number = r - a + shift + offset
                    if kind == "duplicate":
                        pieces.append(edited)
                        shift += 1
                        number += 1
                    written.mess.append({"source": src.name, "path": rel, "line": number, "kind": kind})
                    pos = e
                pieces.append(view[pos:])
                data = b"".join(pieces)
            else:
                data = head + body
            del body
            written.write(f"{landing}/{rel}", data)
            written.files.append(
                {"source": src.name, "path": rel, "dt": deliver, "rows": b - a + shift, "bytes": len(data)}
            )
            if key in late:
                written.mess.append({"source": src.name, "path": rel, "line": None, "kind": "late_file"})
            if key in redeliver and b > a:
                text = data[len(head) :].decode(enc).split("\n")[:-1]
                wrong, kind, changed = messmod.corrupt(text, src, rng)
                written.write(f"{superseded}/{rel}", head + ("\n".join(wrong) + "\n").encode(enc))
                written.redeliveries.append(
                    {"source": src.name, "path": rel, "kind": kind, "rows_changed": changed}
                )
