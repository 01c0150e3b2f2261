"""How much ingest's guarantees cost: ingest vs a bare DuckDB read of the same files.

The bare read is the floor: one ``read_csv`` / ``read_json`` per source over all its files into
a table with the contract's column types given explicitly (no sniffing), bad lines skipped
(``ignore_errors``): no line numbers, lineage, manifest or quarantine. Ingest does per file: hash, decode, line numbering, typing, classification,
quarantine, manifest and a transaction. The target is ingest within 2x the bare read.

    python -m warehouse.bench_ingest --landing DIR
    python -m warehouse.bench_ingest --customers 20000 --days 365   # generates the landing first
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from warehouse.contracts import SOURCES
from warehouse.ingest import discover, ingest


def _bare(landing: Path, warehouse: Path) -> tuple[float, float, int]:
    import duckdb

    files: dict[str, list[str]] = {}
    for source, path in discover(landing):
        if path.suffix != ".gz":
            files.setdefault(source.name, []).append(str(path))
    started, cpu = time.perf_counter(), time.process_time()
    rows = 0
    with duckdb.connect(str(warehouse)) as con:
        for name, paths in files.items():
            source = SOURCES[name]
            typed = list(source.columns) + [
                (n.field, "STRUCT(" + ", ".join(f"{c} {t}" for c, t in n.columns) + ")[]")
                for n in source.nested
            ]
            columns = "{" + ", ".join(f"'{c}': '{t}'" for c, t in typed) + "}"
            if source.format == "csv":
                formats = set(source.time_formats.values())
                options = f", timestampformat = '{formats.pop()}'" if len(formats) == 1 else ""
                reader = (
                    f"read_csv({paths!r}, columns = {columns}, header = true, auto_detect = false,"
                    f" ignore_errors = true{options})"
                )
            else:
                reader = f"read_json({paths!r}, columns = {columns}, format = 'newline_delimited', ignore_errors = true)"
            con.execute(f"create table {name} as select * from {reader}")
            rows += con.execute(f"select count(*) from {name}").fetchone()[0]
    return time.perf_counter() - started, time.process_time() - cpu, rows


def measure(landing: Path, repeat: int = 1) -> dict:
    """Time ingest and the bare read of every file under ``landing`` (fresh warehouses each).

    With ``repeat`` > 1 the two alternate and the fastest run of each counts (on a shared
    machine the slower runs measure the neighbours); every run's seconds are in ``runs``.
    """
    landing = Path(landing).resolve()
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="crmwh-bench-ingest-") as tmp:
            bare_seconds, bare_cpu, bare_rows = _bare(landing, Path(tmp) / "bare.duckdb")
            started, cpu = time.perf_counter(), time.process_time()
            summary = ingest(Path(tmp) / "ingest.duckdb", landing)
            ingest_seconds, ingest_cpu = time.perf_counter() - started, time.process_time() - cpu
        runs.append((bare_seconds, bare_cpu, ingest_seconds, ingest_cpu))
    bare_seconds, bare_cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    ingest_seconds, ingest_cpu = min(r[2] for r in runs), min(r[3] for r in runs)
    totals = {
        k: sum(s[k] for s in summary["sources"].values())
        for k in ("files", "rows_read", "rows_loaded", "rows_quarantined")
    }
    return {
        "landing": str(landing),
        "bytes": sum(p.stat().st_size for _, p in discover(landing)),
        **totals,
        "bare_rows": bare_rows,
        "bare_seconds": round(bare_seconds, 3),
        "ingest_seconds": round(ingest_seconds, 3),
        "ratio": round(ingest_seconds / bare_seconds, 2) if bare_seconds else None,
        # CPU seconds of the process (all threads): steadier than wall time on a shared machine.
        "bare_cpu_seconds": round(bare_cpu, 3),
        "ingest_cpu_seconds": round(ingest_cpu, 3),
        "cpu_ratio": round(ingest_cpu / bare_cpu, 2) if bare_cpu else None,
        "runs": [[round(x, 3) for x in r] for r in runs],  # (bare s, bare cpu s, ingest s, ingest cpu s)
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--landing", type=Path, help="An existing landing folder.")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", type=Path, help="Where to generate (default: a temporary folder).")
    parser.add_argument(
        "--repeat", type=int, default=1, help="Runs of each, alternating; the fastest counts."
    )
    args = parser.parse_args()
    if args.landing:
        print(json.dumps(measure(args.landing, args.repeat), indent=2))
        return
    from datetime import date

    from warehouse.generate import generate

    with tempfile.TemporaryDirectory(prefix="crmwh-bench-gen-") as tmp:
        out = args.out or Path(tmp)
        started = time.perf_counter()
        generate(out, customers=args.customers, start=date(2024, 1, 1), days=args.days, seed=42)
        print(
            f"generated {args.customers} customers x {args.days} days in {time.perf_counter() - started:.1f} s"
        )
        print(json.dumps(measure(out / "landing", args.repeat), indent=2))


if __name__ == "__main__":
    main()
