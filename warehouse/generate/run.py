"""Orchestration: build the world, simulate the days, expand into sources, write, record truth."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
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
from warehouse.generate.writers import Rows, Staged, Written, stage, write_source


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
    out.mkdir(parents=True, exist_ok=True)
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

        # Sources are built in one order (the world's random draws) and written in another
        # (SOURCES, the defects' draws): each is staged on disk as text as soon as it is built.
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
        try:
            staged = _build_and_stage(w, staging, bar)
            written = Written()
            task = bar.add_task("writing files", total=len(staged)) if bar else None
            try:
                for name in SOURCES:
                    write_source(out, staged[name], start, days, rates, mess_rng, written)
                    staged[name].path.unlink()
                    if bar:
                        bar.advance(task, 1)
            finally:
                written.close()
        finally:
            shutil.rmtree(staging, ignore_errors=True)

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


def _build_and_stage(w: World, staging: Path, bar) -> dict[str, Staged]:
    """Build the 16 sources in the world's draw order, staging each and dropping its rows (and
    the intermediate results) as soon as nothing later needs them."""
    task = bar.add_task("building sources", total=16) if bar else None
    staged: dict[str, Staged] = {}

    def keep(rows: Rows) -> None:
        staged[rows.source] = stage(rows, staging)
        if bar:
            bar.advance(task, 1)

    pos_rows, pos_lines, receipts = sales.pos_sales(w)
    keep(pos_rows)
    del pos_rows
    on_rows, on_lines, orders = sales.online_orders(w)
    keep(on_rows)
    del on_rows
    keep(sales.web_events(w, orders))
    keep(sales.loyalty_points(w, pos_lines, receipts, on_lines, orders))
    del receipts, orders
    call_rows, calls = contacts.call_center(w)
    keep(call_rows)
    del call_rows
    voc_rows, vocs = contacts.voc(w)
    keep(voc_rows)
    del voc_rows
    act_rows, acts = contacts.sales_activities(w)
    keep(act_rows)
    del act_rows
    keep(contacts.surveys(w))
    for rows in (marketing.campaigns(w), marketing.campaign_touches(w), marketing.referrals(w)):
        keep(rows)
    cust_rows, _facts = accounts.customers(w)
    keep(cust_rows)
    del cust_rows, _facts
    lines = _merge(pos_lines, on_lines)
    del pos_lines, on_lines
    fin_rows, _fin = accounts.finance_monthly(w, lines, calls, vocs, acts)
    del lines, calls, vocs, acts, _fin
    keep(fin_rows)
    del fin_rows
    for rows in (accounts.products(w), accounts.stores(w), accounts.staff(w)):
        keep(rows)
    return staged


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
