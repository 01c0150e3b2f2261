"""``crmwh demo``: the embedded default, from nothing to queryable marts in one command.

It generates a demo data set into ``CRMWH_HOME`` (the landing zone and the generator's truth),
runs the whole daily pipeline once for the last generated day (which loads every delivery up
to that day, builds, scores and publishes), then prints what was built, where the published
file is and a first query to try.
"""

from __future__ import annotations

import sys
from datetime import date

import click

from warehouse.config import load_settings


@click.command("demo")
@click.option("--customers", default=5000, show_default=True, help="Customers in the demo data set.")
@click.option("--days", default=730, show_default=True, help="Days of history.")
@click.option("--start", default="2024-01-01", show_default=True, help="First day (YYYY-MM-DD).")
@click.option("--seed", default=None, type=int, help="Random seed (default: the configured seed).")
def command(customers: int, days: int, start: str, seed: int | None) -> None:
    """Generate a demo data set, run the whole pipeline on it and say how to query the result."""
    import duckdb

    from warehouse.generate import generate
    from warehouse.pipeline import delivery_days, run_day
    from warehouse.publish import published_path

    settings = load_settings()
    first = date.fromisoformat(start)
    click.echo(f"Generating {customers:,} customers over {days} days into {settings.home} ...")
    generate(
        settings.home,
        customers=customers,
        start=first,
        days=days,
        seed=settings.seed if seed is None else seed,
        progress=sys.stdout.isatty(),
    )
    # Finance for the last month arrives a few days after it: the run waits for it.
    logical_date = delivery_days(settings.landing, date.max)[-1]
    click.echo(f"Running the daily pipeline for {logical_date} (loads every delivery up to it) ...")
    result = run_day(settings, logical_date, trigger="demo")
    if result.get("status") != "success":
        raise click.ClickException(f"the run ended {result.get('status')}: {result}")

    path = published_path(settings)
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.sql(
            "select schema_name, table_name from duckdb_tables()"
            " where schema_name in ('marts', 'cubes', 'mining') order by 1, 2"
        ).fetchall()
        rows = [(s, t, con.sql(f'select count(*) from {s}."{t}"').fetchone()[0]) for s, t in tables]
    finally:
        con.close()
    click.echo("\nPublished tables (rows):")
    for schema, table, count in rows:
        click.echo(f"  {schema}.{table:32} {count:>12,}")
    click.echo(
        f"\nBuild warehouse (the pipeline's only): {settings.warehouse}"
        f"\nPublished for BI tools (read-only):    {path}"
        "\n\nTry:"
        "\n  .venv/bin/crmwh cube cube_sales --by month,sales_channel --measure net_sales_krw"
        " --pivot sales_channel"
        '\n  .venv/bin/crmwh sql -c "select pyramid_tier, count(*) from mining.customer_scores'
        ' group by all order by 2"'
        f"\n  or any DuckDB 1.x client: duckdb -readonly {path}"
    )
