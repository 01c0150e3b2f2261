"""What every expansion step shares: the world built so far and a few vectorised helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from warehouse.generate.calendar import epoch_seconds
from warehouse.generate.catalog import Catalog
from warehouse.generate.population import Population
from warehouse.generate.simulate import NEVER, Campaigns, Events

DAY = 86400


@dataclass
class World:
    rng: np.random.Generator
    start: date
    days: int
    pop: Population
    cat: Catalog
    camps: Campaigns
    ev: Events
    season: np.ndarray

    @property
    def t0(self) -> int:
        """Epoch seconds of local midnight on day 0."""
        return epoch_seconds(self.start)

    def seconds(self, day: np.ndarray, tod: np.ndarray) -> np.ndarray:
        return self.t0 + np.asarray(day, dtype=np.int64) * DAY + np.asarray(tod, dtype=np.int64)

    def day_of(self, seconds: np.ndarray) -> np.ndarray:
        return (np.asarray(seconds, dtype=np.int64) - self.t0) // DAY

    def end_day(self) -> np.ndarray:
        """First day a customer is no longer around (churn or end of window)."""
        return np.minimum(self.ev.churn_day, self.days)


def interval_events(rng: np.random.Generator, first: np.ndarray, end: np.ndarray, rate: np.ndarray | float):
    """Poisson events at ``rate`` per day on each customer's days [first, end): (customer, day)."""
    first = np.asarray(first, dtype=np.int64)
    length = np.maximum(np.asarray(end, dtype=np.int64) - first, 0)
    k = rng.poisson(length * rate)
    cust = np.repeat(np.arange(len(first)), k)
    day = first[cust] + (rng.random(len(cust)) * length[cust]).astype(np.int64)
    order = np.lexsort((cust, day))
    return cust[order], day[order]


def sample_skus(rng: np.random.Generator, cat: Catalog, day: np.ndarray) -> np.ndarray:
    """Uniform over the SKUs launched by the day (new SKUs replace draws not yet launched)."""
    n_sku = len(cat.sku_launch)
    sku = rng.integers(0, n_sku, size=len(day))
    not_yet = cat.sku_launch[sku] > day
    base = np.flatnonzero(cat.sku_launch <= 0)
    sku[not_yet] = base[rng.integers(0, len(base), size=int(not_yet.sum()))]
    return sku


def within_group_rank(keys: np.ndarray) -> np.ndarray:
    """0-based position of each row inside its run of equal keys (keys must be sorted)."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.concatenate([[True], keys[1:] != keys[:-1]])
    starts = np.flatnonzero(new)
    group_start = starts[np.cumsum(new) - 1]
    return np.arange(n) - group_start


__all__ = ["DAY", "NEVER", "World", "interval_events", "sample_skus", "within_group_rank"]
