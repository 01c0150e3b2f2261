"""Orchestration: build the world, simulate the days, expand into sources, write, record truth."""

from __future__ import annotations

import contextlib
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np

from warehouse.contracts import SOURCES
from warehouse.generate import accounts, contacts, korean, marketing, sales
from warehouse.generate.calendar import season_factor
from warehouse.generate.catalog import make_catalog
from warehouse.generate.common import World
from warehouse.generate.mess import MessRates
from warehouse.generate.population import _city_weights, make_population
from warehouse.generate.simulate import make_campaigns, simulate
from warehouse.generate.truth import write_truth
from warehouse.generate.writers import Written, write_source


def generate(
    out: Path,
    customers: int,
    start: date,
    days: int,
    seed: int = 42,
    clean: bool = False,
    progress: bool = False,
    mess_scale: float = 1.0,
    rates: MessRates | None = None,
) -> dict:
    """Write a synthetic landing zone (and its truth) under ``out``; return a summary.

    The same arguments give byte-identical files. ``clean`` turns every defect off;
    ``mess_scale`` multiplies the default defect rates (or pass ``rates``).
    """
    if customers < 1 or days < 1:
        raise ValueError(f"generate: customers ({customers}) and days ({days}) must be at least 1")
    t_start = time.perf_counter()
    out = Path(out).resolve()
    for sub in ("landing", "truth", "superseded"):
        shutil.rmtree(out / sub, ignore_errors=True)
    rates = MessRates.none() if clean else (rates or MessRates()).scaled(mess_scale)
    rng = np.random.default_rng(seed)
    mess_rng = np.random.default_rng([seed, 7919])

    with _progress(progress) as bar:
        season = season_factor(start, days)
        cat = make_catalog(rng, customers, start, days)
        pop = make_population(rng, customers, days, start.toordinal(), cat, season)
        camps = make_campaigns(rng, days)
        task = bar.add_task("simulating days", total=days) if bar else None
        ev = simulate(
            rng,
            pop,
            camps,
            season,
            days,
            len(korean.CITY_NAMES),
            _city_weights(),
            start.toordinal(),
            progress=(lambda k: bar.advance(task, k)) if bar else None,
        )
        w = World(rng=rng, start=start, days=days, pop=pop, cat=cat, camps=camps, ev=ev, season=season)

        task = bar.add_task("building sources", total=16) if bar else None
        step = (lambda: bar.advance(task, 1)) if bar else (lambda: None)
        built = []
        pos_rows, pos_lines, receipts = sales.pos_sales(w)
        built.append(pos_rows)
        step()
        on_rows, on_lines, orders = sales.online_orders(w)
        built.append(on_rows)
        step()
        built.append(sales.web_events(w, orders))
        step()
        built.append(sales.loyalty_points(w, pos_lines, receipts, on_lines, orders))
        step()
        call_rows, calls = contacts.call_center(w)
        voc_rows, vocs = contacts.voc(w)
        act_rows, acts = contacts.sales_activities(w)
        built += [call_rows, voc_rows, contacts.surveys(w), act_rows]
        for _ in range(4):
            step()
        built += [marketing.campaigns(w), marketing.campaign_touches(w), marketing.referrals(w)]
        for _ in range(3):
            step()
        cust_rows, _facts = accounts.customers(w)
        lines = _merge(pos_lines, on_lines)
        fin_rows, _fin = accounts.finance_monthly(w, lines, calls, vocs, acts)
        built += [cust_rows, fin_rows, accounts.products(w), accounts.stores(w), accounts.staff(w)]
        for _ in range(5):
            step()
        built.sort(key=lambda r: list(SOURCES).index(r.source))

        written = Written()
        task = bar.add_task("writing files", total=len(built)) if bar else None
        try:
            for rows in built:
                write_source(out, rows, start, days, rates, mess_rng, written)
                if bar:
                    bar.advance(task, 1)
        finally:
            written.close()

    summary: dict = {
        "customers": customers,
        "start": start.isoformat(),
        "days": days,
        "seed": seed,
        "clean": clean,
        "mess_rates": vars(rates),
        "rows": {s: 0 for s in SOURCES},
        "files": {s: 0 for s in SOURCES},
        "bytes": {s: 0 for s in SOURCES},
    }
    for f in written.files:
        summary["rows"][f["source"]] += f["rows"]
        summary["files"][f["source"]] += 1
        summary["bytes"][f["source"]] += f["bytes"]
    summary["total_rows"] = sum(summary["rows"].values())
    summary["total_bytes"] = sum(summary["bytes"].values())
    write_truth(out, w, written, summary)
    summary["seconds"] = round(time.perf_counter() - t_start, 2)
    summary["out"] = str(out)
    return summary


def _merge(a: sales.Lines, b: sales.Lines) -> sales.Lines:
    return sales.Lines(
        cust=np.concatenate([a.cust, b.cust]),
        seconds=np.concatenate([a.seconds, b.seconds]),
        net=np.concatenate([a.net, b.net]),
        cost=np.concatenate([a.cost, b.cost]),
        counts=np.concatenate([a.counts, b.counts]),
        ref=np.concatenate([a.ref, b.ref]),
        online=np.concatenate([a.online, b.online]),
    )


@contextlib.contextmanager
def _progress(enabled: bool):
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()) as bar:
        yield bar
