"""`crmwh features --as-of D`: build the customer feature table as of a date (for inspection)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click


@click.command("features")
@click.option("--as-of", "as_of", required=True, help="Feature date YYYY-MM-DD (data strictly before it).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a Parquet file here instead of the table mining.customer_features.",
)
def command(as_of: str, output: Path | None) -> None:
    """Build every customer's features as of a date, from the marts (read only unless writing the table)."""
    import duckdb

    from mining.features import build_features
    from warehouse.config import load_settings

    settings = load_settings()
    day = datetime.strptime(as_of, "%Y-%m-%d").date()
    con = duckdb.connect(str(settings.warehouse), read_only=output is not None)
    try:
        frame = build_features(con, day, settings.active_window_days)
        if output is not None:
            frame.to_parquet(output.resolve(), index=False)
            target = str(output.resolve())
        else:
            con.execute("create schema if not exists mining")
            con.register("_features", frame)
            con.execute("create or replace table mining.customer_features as select * from _features")
            target = "mining.customer_features"
    finally:
        con.close()
    click.echo(f"{len(frame)} customers ({int(frame['is_active'].sum())} active) as of {day} -> {target}")
