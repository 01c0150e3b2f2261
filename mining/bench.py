"""Benchmark of the mining step: train on N customers, build features and score M customers.

Why synthetic marts: the targets are about the mining step (features in SQL, model scoring,
write-back), so the input is written straight in mart shape by mining/synth.py instead of
generating, ingesting and building a million customers first. The timings exclude that
synthesis (reported separately) and the dbt rebuild (owned and measured by the build step).

Each training and the scoring run in a fresh process, so each reports its own peak resident
memory (``peak_rss_mb``: the process's high-water mark, DuckDB's buffers included).

    python -m mining.bench --train-customers 1000000 --caps 200000,100000 \\
        --compare-customers 100000 --score-customers 1000000 --days 730
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from mining.score import score
from mining.synth import synthesize_marts
from mining.train import train
from warehouse.config import Settings, load_settings

METRICS = ("model", "logistic", "baseline_recency", "baseline_p_alive")


def _stage(kind: str, settings: Settings, seed: int, validate: bool) -> dict[str, Any]:
    """Run one training or scoring in this (fresh) process; its report, seconds and peak memory."""
    t, cpu = time.perf_counter(), time.process_time()
    report = (
        train(settings, seed=seed) if kind == "train" else score(settings, rebuild=False, validate=validate)
    )
    return {
        "report": report,
        "s": round(time.perf_counter() - t, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _in_fresh_process(kind: str, settings: Settings, seed: int, validate: bool = False) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_stage, kind, settings, seed, validate).result()


def _synthesize(settings: Settings, customers: int, start: date, days: int, seed: int) -> dict[str, Any]:
    t = time.perf_counter()
    con = duckdb.connect(str(settings.warehouse))
    try:
        rows = synthesize_marts(con, customers, start, days, seed)
    finally:
        con.close()
    return {"rows": rows, "synthesize_s": round(time.perf_counter() - t, 2)}


def _training(settings: Settings, seed: int) -> dict[str, Any]:
    run = _in_fresh_process("train", settings, seed)
    report = run["report"]
    result = {
        "max_customers": settings.train_max_customers,
        "customers_fitted": report["training_window"]["customers"],
        "rows_fitted": report["training_window"]["rows"],
        "test_rows": report["test"]["rows"],
        "s": run["s"],
        "cpu_s": run["cpu_s"],
        "peak_rss_mb": run["peak_rss_mb"],
        "detail_s": report["seconds"],
        "metrics": {
            name: {
                k: round(v, 4)
                for k, v in report["metrics"][name].items()
                if k in ("auc", "pr_auc", "lift_top_decile", "brier")
            }
            for name in METRICS
        },
    }
    if "against_truth" in report["metrics"]:
        result["auc_against_truth"] = round(report["metrics"]["against_truth"]["model"]["auc"], 4)
    return result


def measure(
    train_customers: int = 100_000,
    score_customers: int = 1_000_000,
    days: int = 540,
    start: date = date(2024, 1, 1),
    seed: int = 42,
    workdir: Path | None = None,
    validate: bool = False,
    caps: list[int] | None = None,
    compare_customers: int = 0,
) -> dict[str, Any]:
    """Seconds and peak memory to train on ``train_customers`` and to score ``score_customers``.

    ``caps`` trains once per ``train_max_customers`` value on the same data (default: the
    configured cap), so their metrics compare on the same test customers; the first cap's
    model is the one that scores. ``compare_customers`` > 0 also trains without a cap on that
    many customers of their own (what training cost before the cap). Scoring 0 customers skips it.
    """
    with tempfile.TemporaryDirectory(prefix="crmwh-bench-", dir=workdir) as tmp:
        root = Path(tmp)
        base = dataclasses.replace(
            load_settings(), home=root, models=root / "models", validation=root / "validation"
        )
        caps = caps or [base.train_max_customers]
        result: dict[str, Any] = {
            "train_customers": train_customers,
            "score_customers": score_customers,
            "days": days,
            "cpus": os.cpu_count(),
            # Wall time on a shared machine depends on its other jobs: the load average and the
            # process's CPU seconds (all threads) say how much of the wall time was this work.
            "load_average_before": [round(x, 1) for x in os.getloadavg()],
        }

        train_settings = dataclasses.replace(base, warehouse=root / "train.duckdb")
        synth = _synthesize(train_settings, train_customers, start, days, seed)
        result["train_rows"], result["synthesize_train_s"] = synth["rows"], synth["synthesize_s"]
        result["train"] = [
            _training(
                dataclasses.replace(
                    train_settings,
                    train_max_customers=cap,
                    models=base.models if i == 0 else root / f"models_cap{cap}",
                ),
                seed,
            )
            for i, cap in enumerate(caps)
        ]

        if compare_customers > 0:
            compare_settings = dataclasses.replace(
                base, warehouse=root / "compare.duckdb", models=root / "models_compare", train_max_customers=0
            )
            synth = _synthesize(compare_settings, compare_customers, start, days, seed)
            result["train_compare"] = dict(
                _training(compare_settings, seed),
                customers=compare_customers,
                synthesize_s=synth["synthesize_s"],
            )
            compare_settings.warehouse.unlink()

        if score_customers > 0:
            train_settings.warehouse.unlink()
            score_settings = dataclasses.replace(base, warehouse=root / "score.duckdb")
            synth = _synthesize(score_settings, score_customers, start, days, seed + 1)
            result["score_rows"], result["synthesize_score_s"] = synth["rows"], synth["synthesize_s"]
            run = _in_fresh_process("score", score_settings, seed, validate)
            result["score_s"], result["score_cpu_s"] = run["s"], run["cpu_s"]
            result["score_peak_rss_mb"] = run["peak_rss_mb"]
            result["score_detail_s"] = run["report"]["seconds"]
            result["customers_scored"] = run["report"]["customers"]
        result["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-customers", type=int, default=100_000)
    parser.add_argument("--score-customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=540)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--caps",
        default="",
        help="Comma-separated train_max_customers values to train with (default: the setting's).",
    )
    parser.add_argument(
        "--compare-customers",
        type=int,
        default=0,
        help="Also train without a cap on this many customers of their own.",
    )
    parser.add_argument("--validate", action="store_true", help="Include the GX suite on the scores.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the result JSON here.")
    args = parser.parse_args()
    result = measure(
        args.train_customers,
        args.score_customers,
        args.days,
        seed=args.seed,
        validate=args.validate,
        caps=[int(c) for c in args.caps.split(",") if c.strip()] or None,
        compare_customers=args.compare_customers,
    )
    text = json.dumps(result, indent=2, default=str)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
