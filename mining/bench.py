"""Benchmark of the mining step: train on N customers, build features and score M customers.

Why synthetic marts: the targets are about the mining step (features in SQL, model scoring,
write-back), so the input is written straight in mart shape by mining/synth.py instead of
generating, ingesting and building a million customers first. The timings exclude that
synthesis (reported separately) and the dbt rebuild (owned and measured by the build step).

    python -m mining.bench --train-customers 100000 --score-customers 1000000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from mining.score import score
from mining.synth import synthesize_marts
from mining.train import train
from warehouse.config import load_settings


def measure(
    train_customers: int = 100_000,
    score_customers: int = 1_000_000,
    days: int = 540,
    start: date = date(2024, 1, 1),
    seed: int = 42,
    workdir: Path | None = None,
    validate: bool = False,
) -> dict[str, Any]:
    """Seconds to train on ``train_customers`` and to build features and score ``score_customers``.

    Returns wall and CPU seconds per step (``score_detail_s`` splits scoring into features,
    churn model, CLV, segments and write-back), row counts and the model's metrics.
    """
    with tempfile.TemporaryDirectory(prefix="crmwh-bench-", dir=workdir) as tmp:
        root = Path(tmp)
        base = dataclasses.replace(
            load_settings(), home=root, models=root / "models", validation=root / "validation"
        )
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
        t = time.perf_counter()
        con = duckdb.connect(str(train_settings.warehouse))
        result["train_rows"] = synthesize_marts(con, train_customers, start, days, seed)
        con.close()
        result["synthesize_train_s"] = round(time.perf_counter() - t, 2)
        t, cpu = time.perf_counter(), time.process_time()
        report = train(train_settings, seed=seed)
        result["train_s"] = round(time.perf_counter() - t, 2)
        result["train_cpu_s"] = round(time.process_time() - cpu, 2)
        result["train_detail_s"] = report["seconds"]
        result["train_rows_fitted"] = report["training_window"]["rows"]
        result["metrics"] = {
            name: {
                k: round(v, 4)
                for k, v in report["metrics"][name].items()
                if k in ("auc", "pr_auc", "lift_top_decile", "brier")
            }
            for name in ("model", "logistic", "baseline_recency", "baseline_p_alive")
        }
        if "against_truth" in report["metrics"]:
            result["auc_against_truth"] = round(report["metrics"]["against_truth"]["model"]["auc"], 4)

        score_settings = dataclasses.replace(base, warehouse=root / "score.duckdb")
        t = time.perf_counter()
        con = duckdb.connect(str(score_settings.warehouse))
        result["score_rows"] = synthesize_marts(con, score_customers, start, days, seed + 1)
        con.close()
        result["synthesize_score_s"] = round(time.perf_counter() - t, 2)
        t, cpu = time.perf_counter(), time.process_time()
        scored = score(score_settings, rebuild=False, validate=validate)
        result["score_s"] = round(time.perf_counter() - t, 2)
        result["score_cpu_s"] = round(time.process_time() - cpu, 2)
        result["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
        result["score_detail_s"] = scored["seconds"]
        result["customers_scored"] = scored["customers"]
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-customers", type=int, default=100_000)
    parser.add_argument("--score-customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=540)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--validate", action="store_true", help="Include the GX suite on the scores.")
    args = parser.parse_args()
    result = measure(
        args.train_customers, args.score_customers, args.days, seed=args.seed, validate=args.validate
    )
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
