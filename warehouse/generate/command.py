"""``crmwh generate``: write a synthetic landing zone for the 16 source systems."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click


@click.command("generate")
@click.option("--customers", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), default="2024-01-01", show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=730, show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed [default: CRMWH_SEED or 42].")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder [default: CRMWH_HOME]; landing/ goes inside it, truth/ beside it.",
)
@click.option("--clean", is_flag=True, help="No defects at all (no duplicates, late files, bad lines).")
@click.option(
    "--mess-rate",
    "mess_rate",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Scale factor on the default defect rates.",
)
def command(
    customers: int,
    start: datetime,
    days: int,
    seed: int | None,
    out: Path | None,
    clean: bool,
    mess_rate: float,
) -> None:
    """Generate DIR/landing/<source>/dt=YYYY-MM-DD/... and DIR/truth/ deterministically."""
    from warehouse.config import load_settings
    from warehouse.generate import generate

    settings = load_settings()
    out = out if out is not None else settings.home
    summary = generate(
        out,
        customers,
        start.date(),
        days,
        seed=settings.seed if seed is None else seed,
        clean=clean,
        progress=sys.stdout.isatty(),
        mess_scale=mess_rate,
    )
    rows, secs = summary["total_rows"], summary["seconds"]
    click.echo(
        f"wrote {rows:,} rows in {sum(summary['files'].values()):,} files "
        f"({summary['total_bytes'] / 1e6:,.1f} MB) to {summary['out']}/landing in {secs:.1f} s "
        f"({rows / max(secs, 1e-9):,.0f} rows/s)"
    )
    for source in summary["rows"]:
        click.echo(f"  {source:18} {summary['rows'][source]:>12,} rows {summary['files'][source]:>7,} files")
