"""Benchmark: typical OLAP questions answered from the cubes vs. the same GROUP BY on the facts.

Each question is asked both ways on one read-only connection; both answers must be equal
(the benchmark doubles as a reconciliation), then each is timed ``repeats`` times after a warm-up.
Prints per-question medians and the p50/p95 over all timed runs of each side. The cube catalog
is read once (as ``crmwh cube`` does once per call; its cost is reported separately).

    python -m warehouse.bench_cubes --database data/published/crmwh.duckdb --repeats 20
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import click

from warehouse.analyst import connect_readonly, cube_query, load_cubes, run_query

BUYERS = "count(distinct case when s.net_sales_krw > 0 then s.customer_id end)"
SALES_JOIN = (
    "from marts.fct_sales s left join marts.dim_customer c on s.customer_key = c.customer_key"
    " left join marts.dim_product p on s.product_key = p.product_key"
)

# (name, cube question (cube, by, where, measures), the same question asked of the facts)
QUESTIONS: list[tuple[str, tuple, str]] = [
    (
        "sales by month: net sales, buyers",
        ("cube_sales", ["month"], {}, ["net_sales_krw", "buyers"]),
        f"select s.month, sum(s.net_sales_krw), {BUYERS} {SALES_JOIN} group by 1 order by 1",
    ),
    (
        "sales by month x channel",
        ("cube_sales", ["month", "sales_channel"], {}, ["net_sales_krw", "margin_krw", "buyers"]),
        f"select s.month, s.sales_channel, sum(s.net_sales_krw), sum(s.margin_krw), {BUYERS} {SALES_JOIN}"
        " group by 1, 2 order by 1, 2",
    ),
    (
        "web sales by category (slice)",
        ("cube_sales", ["category"], {"sales_channel": ["web"]}, ["net_sales_krw", "orders"]),
        "select coalesce(p.category, 'unknown'), sum(s.net_sales_krw),"
        f" count(distinct case when s.net_sales_krw > 0 then s.order_id end) {SALES_JOIN}"
        " where s.sales_channel = 'web' group by 1 order by 1",
    ),
    (
        "sales by region x tier",
        ("cube_sales", ["region", "pyramid_tier"], {}, ["net_sales_krw", "buyers"]),
        f"select coalesce(c.region, 'unknown'), coalesce(c.pyramid_tier, 'unknown'), sum(s.net_sales_krw), {BUYERS}"
        f" {SALES_JOIN} group by 1, 2 order by 1, 2",
    ),
    (
        "sales month x category x region (roll-up from finest level)",
        ("cube_sales", ["month", "category", "region"], {}, ["net_sales_krw", "units"]),
        "select s.month, coalesce(p.category, 'unknown'), coalesce(c.region, 'unknown'),"
        f" sum(s.net_sales_krw), sum(s.qty) {SALES_JOIN} group by 1, 2, 3 order by 1, 2, 3",
    ),
    (
        "contacts by month x channel",
        ("cube_contacts", ["month", "contact_channel"], {}, ["contacts", "complaints"]),
        "select month, contact_channel, count(*), count(*) filter (where is_complaint)"
        " from marts.fct_contacts group by 1, 2 order by 1, 2",
    ),
    (
        "contacts by reason: customers",
        ("cube_contacts", ["reason"], {}, ["contacts", "customers"]),
        "select coalesce(reason, 'unknown'), count(*), count(distinct customer_id)"
        " from marts.fct_contacts group by 1 order by 1",
    ),
    (
        "campaigns: uplift",
        ("cube_marketing", ["campaign"], {}, ["targeted", "converted", "uplift"]),
        "select campaign_id, count(*), count(*) filter (where converted),"
        " round(count(*) filter (where assigned_group = 'treatment' and converted)"
        " / nullif(count(*) filter (where assigned_group = 'treatment'), 0)"
        " - count(*) filter (where assigned_group = 'control' and converted)"
        " / nullif(count(*) filter (where assigned_group = 'control'), 0), 4)"
        " from marts.fct_campaign_touches group by 1 order by 1",
    ),
    (
        "profit by month x tier",
        ("cube_financial", ["month", "pyramid_tier"], {}, ["profit_krw", "customers"]),
        "select m.month, coalesce(c.pyramid_tier, 'unknown'), sum(m.profit_krw), count(distinct m.customer_id)"
        " from marts.fct_customer_month m left join marts.dim_customer c on m.customer_key = c.customer_key"
        " group by 1, 2 order by 1, 2",
    ),
    (
        "active customers by month",
        ("cube_customer_base", ["month"], {}, ["active"]),
        # the definition applied to the facts: a purchase in the 365 days to the month's end
        """
        with purchases as (
            select customer_id, min(date_day) as day from marts.fct_sales
            where customer_id is not null group by customer_id, order_id having sum(net_sales_krw) > 0
        ),
        months as (
            select distinct month, least(last_day(min(date_day)), (select max(date_day) from marts.fct_sales))
                as as_of
            from marts.fct_sales group by month
        )
        select m.month, count(distinct p.customer_id)
        from months m join purchases p on p.day <= m.as_of and p.day > m.as_of - 365
        group by 1 order by 1
        """,
    ),
]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _norm(rows: list[tuple]) -> list[tuple]:
    return sorted(tuple(round(float(v), 4) if isinstance(v, int | float) else v for v in r) for r in rows)


def run(database: Path, repeats: int = 20) -> dict:
    """Time every question both ways; raise if a cube answer differs from the facts'."""
    con = connect_readonly(database)
    started = time.perf_counter()
    cubes = load_cubes(con)
    catalog_ms = round((time.perf_counter() - started) * 1000, 2)
    timings: dict[str, list[float]] = {"cube": [], "facts": []}
    per_question = []
    try:
        for name, (cube, by, where, measures), fact_sql in QUESTIONS:
            cube_rows = cube_query(con, cube, by, where, measures, cubes).rows
            fact_rows = run_query(con, fact_sql).rows
            if _norm(cube_rows) != _norm(fact_rows):
                raise AssertionError(
                    f"{name}: the cube and the facts disagree ({len(cube_rows)} vs {len(fact_rows)} rows)"
                )
            entry = {"question": name, "rows": len(cube_rows)}
            for side in ("cube", "facts"):
                runs = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    if side == "cube":
                        cube_query(con, cube, by, where, measures, cubes)
                    else:
                        run_query(con, fact_sql)
                    runs.append((time.perf_counter() - started) * 1000)
                timings[side] += runs
                entry[f"{side}_p50_ms"] = round(statistics.median(runs), 2)
            per_question.append(entry)
        sizes = {
            t: run_query(con, f"select count(*) from {t}").rows[0][0]
            for t in ("marts.fct_sales", "marts.fct_contacts", "marts.dim_customer", "cubes.cube_sales")
        }
    finally:
        con.close()
    summary = {
        side: {"p50_ms": round(_percentile(v, 0.5), 2), "p95_ms": round(_percentile(v, 0.95), 2)}
        for side, v in timings.items()
    }
    return {
        "database": str(database),
        "repeats": repeats,
        "rows": sizes,
        "catalog_load_ms": catalog_ms,
        "summary": summary,
        "questions": per_question,
    }


@click.command()
@click.option("--database", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--repeats", default=20, show_default=True)
def main(database: Path, repeats: int) -> None:
    """Cube vs. fact query latency for typical OLAP questions."""
    result = run(database, repeats)
    for q in result["questions"]:
        click.echo(
            f"{q['question']:60} rows {q['rows']:5}  cube {q['cube_p50_ms']:8.2f} ms  facts {q['facts_p50_ms']:8.2f} ms"
        )
    click.echo(
        json.dumps(
            {k: result[k] for k in ("rows", "catalog_load_ms", "summary")},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
