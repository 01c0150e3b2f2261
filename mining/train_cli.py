"""`crmwh train`: fit a churn model out of time; promote it only if it beats the champion."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("train")
@click.option(
    "--cutoffs", "n_cutoffs", default=6, show_default=True, help="Training cut-offs (monthly steps)."
)
@click.option("--clusters", default=5, show_default=True, help="k of the behavioural k-means.")
@click.option("--seed", type=int, default=None, help="Random seed (default: settings.seed).")
@click.option(
    "--truth",
    "truth_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Generator truth folder (customers.csv): also report the AUC against the true churn.",
)
@click.option("--list", "list_versions", is_flag=True, help="List registered versions and exit.")
def command(
    n_cutoffs: int, clusters: int, seed: int | None, truth_dir: Path | None, list_versions: bool
) -> None:
    """Train the churn model on past cut-offs, validate it on a later one, register it."""
    from mining import registry
    from mining.train import train
    from warehouse.config import load_settings

    settings = load_settings()
    if list_versions:
        champion = registry.champion(settings.models)
        for version in registry.versions(settings.models):
            meta = registry.metadata(settings.models, version)
            auc = meta["metrics"]["model"]["auc"]
            mark = "*" if version == champion else " "
            click.echo(
                f"{mark} {version}  test {meta['test']['cutoff']}  AUC {auc:.4f}  {meta['registered_at']}"
            )
        return
    report = train(settings, n_cutoffs=n_cutoffs, seed=seed, clusters=clusters, truth_dir=truth_dir)
    metrics = report["metrics"]
    fitted = report["training_window"]["customers"]
    click.echo(
        f"model {report['version']} (test cut-off {report['test']['cutoff']}, {report['test']['rows']} customers;"
        f" fitted on {fitted['sampled']} of {fitted['of']} customers, CRMWH_TRAIN_MAX_CUSTOMERS)"
    )
    for name in ("model", "logistic", "baseline_recency", "baseline_p_alive"):
        m = metrics[name]
        click.echo(
            f"  {name:18} AUC {m['auc']:.4f}  PR-AUC {m['pr_auc']:.4f}  lift@10% {m['lift_top_decile']:.2f}"
            + (f"  Brier {m['brier']:.4f}" if m["brier"] == m["brier"] else "")
        )
    if "against_truth" in metrics:
        click.echo(f"  AUC against the generator's truth: {metrics['against_truth']['model']['auc']:.4f}")
    click.echo("promoted to champion" if report["promoted"] else f"kept champion {report['champion_before']}")
    click.echo(json.dumps(report["seconds"]))
