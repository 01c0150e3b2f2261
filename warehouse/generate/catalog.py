"""Stores, staff and products: the slowly changing reference data every sale points at.

Snapshots are delivered on day 1 and again whenever something changes: monthly price changes
and new SKUs for products, a store opening (with its newly hired reps) for stores and staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from warehouse.generate import korean


@dataclass
class Catalog:
    # stores
    store_region: np.ndarray  # region index
    store_city: np.ndarray  # city index
    store_format: np.ndarray  # object
    store_name: np.ndarray
    store_opened: np.ndarray  # day index (negative = before the window)
    # staff: sales reps first, then agents
    staff_role: np.ndarray  # object: sales_rep / agent
    staff_name: np.ndarray
    staff_team: np.ndarray
    staff_region: np.ndarray  # region index
    staff_hired: np.ndarray  # day index
    rep_store: np.ndarray  # per staff: store index for reps, -1 for agents
    # products
    sku_category: np.ndarray  # category index
    sku_sub: np.ndarray
    sku_name: np.ndarray
    sku_brand: np.ndarray
    sku_launch: np.ndarray  # day index
    price_change_days: np.ndarray  # sorted day indexes where prices change (0 first)
    list_price: np.ndarray  # [epoch, sku]
    unit_cost: np.ndarray  # [epoch, sku]
    price_updated: np.ndarray  # [epoch, sku] day index of the last change
    store_snapshot_days: np.ndarray
    product_snapshot_days: np.ndarray

    @property
    def n_stores(self) -> int:
        return len(self.store_region)

    def epoch_of(self, day: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.price_change_days, day, side="right") - 1

    def stores_open(self, day: int) -> np.ndarray:
        return np.flatnonzero(self.store_opened <= day)


def make_catalog(rng: np.random.Generator, customers: int, start: date, days: int) -> Catalog:
    n_old = int(np.clip(round(customers / 4000), 3, 25))
    n_stores = n_old + (1 if days >= 60 else 0)
    region = rng.choice(len(korean.REGIONS), size=n_stores, p=korean.REGION_WEIGHTS)
    region[: min(n_stores, 3)] = [0, 1, 3][: min(n_stores, 3)]  # Seoul, Gyeonggi, Busan first
    city = np.array([rng.choice(np.flatnonzero(korean.CITY_REGION == r)) for r in region])
    fmt = rng.choice(np.array(korean.STORE_FORMATS, dtype=object), size=n_stores, p=[0.2, 0.2, 0.3, 0.3])
    brand = korean.BRANDS[0]
    name = np.array(
        [f"{brand} {korean.CITY_NAMES[c]}{korean.STORE_SUFFIX[f]}" for c, f in zip(city, fmt, strict=True)],
        dtype=object,
    )
    opened = -rng.integers(200, 4000, size=n_stores)
    if n_stores > n_old:
        opened[-1] = days // 2

    # staff: two reps per store, then the call-center agents
    n_agents = int(np.clip(customers // 1500, 6, 80))
    rep_store = np.repeat(np.arange(n_stores), 2)
    n_reps = len(rep_store)
    role = np.array(["sales_rep"] * n_reps + ["agent"] * n_agents, dtype=object)
    pool = korean.name_pool(int(rng.integers(1 << 30)), 600)
    staff_name = pool[rng.integers(0, len(pool), size=n_reps + n_agents)]
    team = np.array(
        [f"영업{(s % 5) + 1}팀" for s in rep_store] + [f"상담{(a % 4) + 1}팀" for a in range(n_agents)],
        dtype=object,
    )
    staff_region = np.concatenate([region[rep_store], np.zeros(n_agents, dtype=int)])
    hired = np.concatenate(
        [
            np.maximum(opened[rep_store], -rng.integers(30, 3000, size=n_reps)),
            -rng.integers(30, 2000, size=n_agents),
        ]
    )
    rep_store_all = np.concatenate([rep_store, -np.ones(n_agents, dtype=int)])

    # products: a base catalogue, new SKUs and price changes on the first of each month
    n_base = 300
    month_starts = np.array([i for i in range(1, days) if (start + timedelta(days=i)).day == 1], dtype=int)
    n_new = 5 * len(month_starts)
    n_sku = n_base + n_new
    launch = np.concatenate([-rng.integers(30, 1500, size=n_base), np.repeat(month_starts, 5)]).astype(int)
    cat = rng.integers(0, len(korean.CATEGORIES), size=n_sku)
    sub = rng.integers(0, 3, size=n_sku)
    noun = rng.integers(0, 6, size=n_sku)
    adj = rng.integers(0, len(korean.ADJECTIVES), size=n_sku)
    brand_i = rng.integers(0, len(korean.BRANDS), size=n_sku)
    sku_name = np.array(
        [
            f"{korean.BRANDS[b]} {korean.ADJECTIVES[a]} {korean.CATEGORIES[c][2][n]}"
            for b, a, c, n in zip(brand_i, adj, cat, noun, strict=True)
        ],
        dtype=object,
    )
    median = np.array([c[3] for c in korean.CATEGORIES])[cat]
    price0 = np.round(median * rng.lognormal(0, 0.45, size=n_sku), -2).astype(np.int64)
    price0 = np.maximum(price0, 1000)
    cost0 = np.round(price0 * rng.uniform(0.45, 0.72, size=n_sku), -1).astype(np.int64)
    change_days = np.concatenate([[0], month_starts]).astype(int)
    prices = np.empty((len(change_days), n_sku), dtype=np.int64)
    costs = np.empty_like(prices)
    updated = np.empty_like(prices)
    prices[0], costs[0] = price0, cost0
    updated[0] = np.minimum(launch, 0)
    for e in range(1, len(change_days)):
        change = rng.random(n_sku) < 0.03
        factor = rng.uniform(0.9, 1.15, size=n_sku)
        prices[e] = np.where(change, np.maximum(np.round(prices[e - 1] * factor, -2), 1000), prices[e - 1])
        costs[e] = costs[e - 1]
        updated[e] = np.where(change, change_days[e], updated[e - 1])
        new = launch == change_days[e]
        updated[e] = np.where(new, change_days[e], updated[e])
    store_days = np.unique(np.concatenate([[0], opened[(opened > 0) & (opened < days)]])).astype(int)
    return Catalog(
        store_region=region,
        store_city=city,
        store_format=fmt,
        store_name=name,
        store_opened=opened,
        staff_role=role,
        staff_name=staff_name,
        staff_team=team,
        staff_region=staff_region,
        staff_hired=hired,
        rep_store=rep_store_all,
        sku_category=cat,
        sku_sub=sub,
        sku_name=sku_name,
        sku_brand=np.array(korean.BRANDS, dtype=object)[brand_i],
        sku_launch=launch,
        price_change_days=change_days,
        list_price=prices,
        unit_cost=costs,
        price_updated=updated,
        store_snapshot_days=store_days,
        product_snapshot_days=change_days,
    )
