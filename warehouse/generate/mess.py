"""Realistic defects in the landing files, injected at low, configurable rates.

Every injected item is recorded (source, path relative to landing, 1-based line number with the
CSV header as line 1, kind) so ingest tests can reconcile quarantine counts exactly. Row-level
defects are edits of the written text lines, so what is recorded is exactly what a loader reads.

Kinds:
- ``duplicate``: an exact copy of the previous line (loads; staging dedupes on the key).
- ``malformed:field_count`` / ``malformed:broken_json`` / ``malformed:non_numeric`` /
  ``malformed:unknown_enum`` / ``malformed:missing_key``: lines a loader must quarantine.
- ``out_of_range:<column>``: a numeric value outside the contract's range (loads, and warns).
- ``unknown_sku``: a SKU that no product snapshot holds (loads; dim_product's -1 member).
- ``late_file``: the whole file sits in the dt= folder of a later day (line is empty).
Corrected re-deliveries are recorded separately (truth/redeliveries.csv).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, fields, replace

import numpy as np

from warehouse.contracts import Source

NUMERIC = ("INTEGER", "BIGINT", "DOUBLE")


@dataclass(frozen=True)
class MessRates:
    duplicate: float = 0.002
    malformed: float = 0.0005
    out_of_range: float = 0.001
    unknown_sku: float = 0.001
    late_file: float = 0.01
    redelivery: float = 0.005

    def scaled(self, factor: float) -> MessRates:
        return replace(self, **{f.name: min(getattr(self, f.name) * factor, 0.5) for f in fields(self)})

    @classmethod
    def none(cls) -> MessRates:
        return cls().scaled(0.0)


def malformed_kinds(src: Source) -> list[str]:
    kinds = ["field_count" if src.format == "csv" else "broken_json", "missing_key"]
    if any(t in NUMERIC for _, t in src.columns):
        kinds.append("non_numeric")
    if src.enums:
        kinds.append("unknown_enum")
    return kinds


def has_sku(src: Source) -> bool:
    return src.name in ("pos_sales", "online_orders")


def money_column(src: Source) -> str | None:
    return {
        "pos_sales": "unit_price",
        "online_orders": "lines",
        "finance_monthly": "revenue_krw",
        "loyalty_points": "points",
        "campaign_touches": "cost_krw",
        "voc": "compensation_krw",
    }.get(src.name)


MONEY = (
    "unit_price",
    "discount_amt",
    "unit_cost",
    "list_price",
    "budget_krw",
    "compensation_krw",
    "cost_krw",
)


def range_columns(src: Source) -> list[str]:
    """Columns that get out-of-range values: counts, scores and grades, never money (an
    out-of-range amount would swamp every sales total downstream)."""
    return sorted(c for c in src.ranges if c not in MONEY)


def plan_rows(rng: np.random.Generator, src: Source, n_rows: int, rates: MessRates) -> dict[int, str]:
    """Pick distinct rows (index in written order) and the defect each gets."""
    counts = [("duplicate", rates.duplicate), ("malformed", rates.malformed)]
    if range_columns(src):
        counts.append(("out_of_range", rates.out_of_range))
    if has_sku(src):
        counts.append(("unknown_sku", rates.unknown_sku))
    wanted = [(k, int(round(r * n_rows))) for k, r in counts]
    total = min(sum(c for _, c in wanted), n_rows)
    if total == 0:
        return {}
    rows = rng.choice(n_rows, size=total, replace=False)
    out: dict[int, str] = {}
    pos = 0
    mk = malformed_kinds(src)
    ranged = range_columns(src)
    for kind, c in wanted:
        for r in rows[pos : pos + c]:
            if kind == "malformed":
                out[int(r)] = "malformed:" + mk[int(rng.integers(len(mk)))]
            elif kind == "out_of_range":
                out[int(r)] = "out_of_range:" + ranged[int(rng.integers(len(ranged)))]
            else:
                out[int(r)] = kind
        pos += c
    return out


def edit_line(line: str, kind: str, src: Source, rng: np.random.Generator) -> str:
    """Apply one defect to one text line (without its newline)."""
    if kind == "duplicate":
        return line
    if src.format == "csv":
        return _edit_csv(line, kind, src, rng)
    return _edit_json(line, kind, src, rng)


def _out_of_range(src: Source, col: str, rng: np.random.Generator) -> int | float:
    lo, hi = src.ranges[col]
    if src.column_type(col) == "DOUBLE":
        return hi + 0.5
    return int(hi + 1 + rng.integers(0, 9)) if hi > 0 else int(lo - 1)


def _numeric_columns(src: Source) -> list[str]:
    return [c for c, t in src.columns if t in NUMERIC]


def _edit_csv(line: str, kind: str, src: Source, rng: np.random.Generator) -> str:
    fields_ = next(csv.reader([line]))
    names = list(src.column_names)
    if kind == "malformed:field_count":
        fields_ = fields_[:-2] if len(fields_) > 2 else fields_ + ["extra", "extra"]
    elif kind == "malformed:non_numeric":
        cols = _numeric_columns(src)
        col = cols[int(rng.integers(len(cols)))]
        fields_[names.index(col)] = "n/a" + str(int(rng.integers(10, 99)))
    elif kind == "malformed:unknown_enum":
        col = sorted(src.enums)[int(rng.integers(len(src.enums)))]
        fields_[names.index(col)] = "UNKNOWN_VALUE"
    elif kind == "malformed:missing_key":
        fields_[names.index(src.key[0])] = ""
    elif kind.startswith("out_of_range:"):
        col = kind.split(":", 1)[1]
        fields_[names.index(col)] = str(_out_of_range(src, col, rng))
    elif kind == "unknown_sku":
        fields_[names.index("sku")] = f"P9{int(rng.integers(0, 10000)):04d}"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields_)
    return buf.getvalue()


def _edit_json(line: str, kind: str, src: Source, rng: np.random.Generator) -> str:
    if kind == "malformed:broken_json":
        return line[: max(1, len(line) // 2)]
    obj = json.loads(line)
    if kind == "malformed:non_numeric":
        cols = [c for c in _numeric_columns(src) if c in obj]
        col = cols[int(rng.integers(len(cols)))]
        obj[col] = "n/a"
    elif kind == "malformed:unknown_enum":
        col = sorted(src.enums)[int(rng.integers(len(src.enums)))]
        obj[col] = "UNKNOWN_VALUE"
    elif kind == "malformed:missing_key":
        obj.pop(src.key[0], None)
    elif kind.startswith("out_of_range:"):
        col = kind.split(":", 1)[1]
        obj[col] = _out_of_range(src, col, rng)
    elif kind == "unknown_sku":
        obj["lines"][0]["sku"] = f"P9{int(rng.integers(0, 10000)):04d}"
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def corrupt(lines: list[str], src: Source, rng: np.random.Generator) -> tuple[list[str], str, int]:
    """The earlier, wrong version of a file that was re-delivered corrected.

    Either a few rows are missing, or a few amounts are wrong (x10, a misplaced decimal).
    Returns the wrong lines, the kind, and how many rows differ.
    """
    n = len(lines)
    k = max(1, n // 10)
    rows = np.sort(rng.choice(n, size=k, replace=False))
    money = money_column(src)
    if money is None or rng.random() < 0.4:
        drop = set(rows.tolist())
        return [ln for i, ln in enumerate(lines) if i not in drop], "missing_rows", k
    out = list(lines)
    changed = 0
    for r in rows:
        try:
            if src.format == "csv":
                f = next(csv.reader([out[r]]))
                i = list(src.column_names).index(money)
                if not f[i].lstrip("-").isdigit():
                    continue
                f[i] = str(int(f[i]) * 10 + 1000)
                buf = io.StringIO()
                csv.writer(buf, lineterminator="").writerow(f)
                new = buf.getvalue()
            else:
                obj = json.loads(out[r])
                if money == "lines":
                    items = [ln for ln in obj.get("lines") or [] if isinstance(ln.get("unit_price"), int)]
                    if not items:
                        continue
                    for ln in items:
                        ln["unit_price"] = ln["unit_price"] * 10 + 1000
                elif isinstance(obj.get(money), int):
                    obj[money] = obj[money] * 10 + 1000
                else:
                    continue
                new = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        except (ValueError, StopIteration, IndexError, AttributeError, TypeError):
            continue  # an already malformed line stays as it is
        out[r] = new
        changed += 1
    if changed == 0:  # no amount to get wrong (e.g. no compensation paid): lose rows instead
        drop = set(rows.tolist())
        return [ln for i, ln in enumerate(lines) if i not in drop], "missing_rows", k
    return out, "wrong_amounts", changed
