"""`crmwh score [--as-of D]`: score every customer with the champion model and write mining.*."""

from __future__ import annotations

import json
from datetime import datetime

import click


@click.command("score")
@click.option(
    "--as-of", "as_of", default=None, help="Score date YYYY-MM-DD (default: the day after the data)."
)
@click.option("--version", default=None, help="Score with this registered version instead of the champion.")
@click.option("--no-rebuild", is_flag=True, help="Do not rebuild the dbt models that read the scores.")
@click.option("--no-validate", is_flag=True, help="Skip the Great Expectations suite on the scores.")
def command(as_of: str | None, version: str | None, no_rebuild: bool, no_validate: bool) -> None:
    """Score with the champion; append the history, close ledger outcomes, rebuild dim_customer+."""
    from mining.score import score
    from warehouse.config import load_settings

    day = datetime.strptime(as_of, "%Y-%m-%d").date() if as_of else None
    report = score(
        load_settings(), as_of=day, rebuild=not no_rebuild, validate=not no_validate, version=version
    )
    click.echo(json.dumps(report, indent=2, default=str))
    validation = report.get("validation") or {}
    if validation and not validation.get("success", True):
        raise click.ClickException(f"score expectations failed: {validation}")
