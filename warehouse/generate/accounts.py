"""Customer master data as a daily delta, monthly finance, and the reference snapshots."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa

from warehouse.generate import korean
from warehouse.generate.common import World
from warehouse.generate.contacts import phones
from warehouse.generate.writers import Rows, fmt_date, fmt_id, fmt_ts, take

EMAIL_DOMAINS = ("naver.com", "gmail.com", "daum.net", "kakao.com", "hanmail.net")
# version kinds: 0 base (initial load or signup), 1 move, 2 retire, 3 opt-out, 4 close
BASE, MOVE, RETIRE, OPTOUT, CLOSE = range(5)


def customers(w: World) -> tuple[Rows, dict]:
    rng, pop, ev = w.rng, w.pop, w.ev
    n = pop.n
    base_day = np.maximum(pop.signup_day, 0)
    in_window = base_day < w.days
    b_idx = np.flatnonzero(in_window)
    b_sec = np.where(
        pop.signup_day[b_idx] < 0,
        w.seconds(0, 3600),
        w.seconds(base_day[b_idx], 0) + rng.integers(8 * 3600, 22 * 3600, len(b_idx)),
    )
    life = ev.cols["life"]
    l_sec = w.seconds(life["day"], rng.integers(0, 86400, len(life["day"])))
    l_sec = np.maximum(l_sec, b_sec.min() if len(b_sec) else 0)
    closes = np.flatnonzero(ev.closed_day < w.days)
    c_sec = w.seconds(ev.closed_day[closes], rng.integers(9 * 3600, 18 * 3600, len(closes)))
    cust = np.concatenate([b_idx, life["cust"], closes])
    sec = np.concatenate([b_sec, l_sec, c_sec])
    kind = np.concatenate([np.zeros(len(b_idx), int), life["kind"] + 1, np.full(len(closes), CLOSE)])
    city_new = np.concatenate([pop.city[b_idx], life["city"], np.full(len(closes), -1)])
    # a change the same second as the signup row comes after it, a second later
    order = np.lexsort((kind, sec, cust))
    cust, sec, kind, city_new = cust[order], sec[order], kind[order], city_new[order]
    sec = distinct_seconds(cust, sec)
    m = len(cust)
    # forward-fill each attribute from the last version that set it (the base row sets all)
    ar = np.arange(m)
    city_src = np.maximum.accumulate(np.where((kind == BASE) | (kind == MOVE), ar, -1))
    city = city_new[city_src]
    retired_src = np.maximum.accumulate(np.where((kind == BASE) | (kind == RETIRE), ar, -1))
    occupation = np.where(kind[retired_src] == RETIRE, "retired", pop.occupation[cust])
    opt_src = np.maximum.accumulate(np.where((kind == BASE) | (kind == OPTOUT), ar, -1))
    opt = np.where(kind[opt_src] == OPTOUT, False, pop.opt_in[cust])
    closed = kind == CLOSE
    # a customer has one close at most, and nothing after it
    status = np.where(closed, 1, 0)
    closed_sec = np.where(closed, sec, 0)
    email = pa.compute.binary_join_element_wise(
        take(list(pop.email_user), cust).dictionary_decode(),
        fmt_id("", cust + 1, 5),
        "@",
        take(EMAIL_DOMAINS, cust % 5).dictionary_decode(),
        "",
    )
    data = pa.table(
        {
            "customer_id": fmt_id("C", cust + 1, 7),
            "name": take(list(pop.name), cust),
            "phone": phones(pop.phone_num[cust]),
            "email": email,
            "birth_date": fmt_date((pop.birth_ord[cust] - 719163) * 86400),
            "gender": take(list(pop.gender), cust),
            "household_size": pa.array(pop.household[cust].astype(np.int64)),
            "income_band": take(list(pop.income), cust),
            "education": take(list(pop.education), cust),
            "occupation": pa.array(occupation.astype(object).tolist(), type=pa.string()),
            "region": take(list(korean.REGION_NAMES), korean.CITY_REGION[city]),
            "city": take(list(korean.CITY_NAMES), city),
            "signup_date": fmt_date(w.seconds(pop.signup_day[cust], 0)),
            "signup_channel": take(list(ev.signup_channel), cust),
            "marketing_opt_in": take(("N", "Y"), opt.astype(int)),
            "status": take(("active", "closed"), status),
            "closed_at": fmt_date(closed_sec, mask=~closed),
            "updated_at": fmt_ts(sec),
        }
    )
    facts = {
        "final_city": _final(cust, city, n, pop.city),
        "final_occ": _final(cust, occupation, n, pop.occupation),
    }
    return Rows(
        "customers", data, dt=w.day_of(sec), sort=sec, expected=[(d, 0) for d in range(w.days)]
    ), facts


def distinct_seconds(cust: np.ndarray, sec: np.ndarray) -> np.ndarray:
    """``sec`` with each customer's versions (sorted by customer, then time) a second apart at
    least: (customer_id, updated_at) is the contract's key. Changes dated before the window are
    clamped to its first load, the second of every initial customer's base row; at 1,000,000
    customers 18 versions shared their customer's second."""
    sec = sec.copy()
    while len(same := np.flatnonzero((cust[1:] == cust[:-1]) & (sec[1:] <= sec[:-1])) + 1):
        sec[same] = sec[same - 1] + 1
    return sec


def _final(cust: np.ndarray, values: np.ndarray, n: int, default: np.ndarray) -> np.ndarray:
    out = np.array(default, copy=True)
    out[cust] = values  # rows are sorted by customer then time: the last write wins
    return out


def finance_monthly(w: World, lines, calls: dict, vocs: dict, acts: dict) -> tuple[Rows, dict]:
    """Revenue and cost to serve per customer and month, delivered on day 3-5 of the next month."""
    rng, pop, ev = w.rng, w.pop, w.ev
    months = []  # (month start day, month end day exclusive, delivery day)
    d = 0
    while d < w.days:
        first = w.start + timedelta(days=d)
        nxt = (first.replace(day=1) + timedelta(days=32)).replace(day=1)
        end = (nxt - w.start).days
        deliver = end + int(rng.integers(2, 5))
        if deliver < w.days:
            months.append(
                (max((first.replace(day=1) - w.start).days, 0), end, deliver, first.strftime("%Y-%m"))
            )
        d = end
    if not months:
        empty = Rows("finance_monthly", _empty_finance(), dt=np.zeros(0, dtype=np.int64))
        return empty, {"rev": np.zeros((pop.n, 0)), "months": []}
    bounds = np.array([m[0] for m in months] + [months[-1][1]])
    n_m = len(months)

    def per_month(cust: np.ndarray, day: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        mi = np.searchsorted(bounds, day, side="right") - 1
        ok = (mi >= 0) & (mi < n_m) & (day < bounds[-1]) & (day >= bounds[0])
        flat = cust[ok] * n_m + mi[ok]
        wts = None if weights is None else weights[ok]
        return np.bincount(flat, weights=wts, minlength=pop.n * n_m).reshape(pop.n, n_m)

    ldays = w.day_of(lines.seconds)
    cnt = lines.counts
    rev = per_month(lines.cust[cnt], ldays[cnt], lines.net[cnt].astype(float))
    cogs = per_month(lines.cust[cnt], ldays[cnt], lines.cost[cnt].astype(float))
    online_orders = per_month(lines.cust[lines.online], ldays[lines.online]) / 2.2  # ~lines per order
    n_calls = per_month(calls["cust"][calls["member"]], calls["day"][calls["member"]])
    n_voc = per_month(vocs["cust"], vocs["day"])
    n_act = per_month(acts["cust"], acts["day"])
    t = ev.cols["touch"]
    from warehouse.generate.simulate import UNIT_COST

    touch_cost = per_month(
        t["cust"],
        w.camps.start_day[t["campaign"]],
        np.where(t["control"].astype(bool), 0, UNIT_COST[w.camps.channel[t["campaign"]]]).astype(float),
    )
    cts = 4000 * n_calls + 6000 * n_voc + 3000 * online_orders + 15000 * n_act + touch_cost
    # open accounts: signed up by the month's end, not closed before it began
    m_start = np.array([m[0] for m in months])
    m_end = np.array([m[1] for m in months])
    open_ = (pop.signup_day[:, None] < m_end[None, :]) & (ev.closed_day[:, None] >= m_start[None, :])
    ci, mi = np.nonzero(open_)
    grade = np.clip(pop.credit[ci] + rng.choice([-1, 0, 0, 0, 1], len(ci)), 1, 10)
    limit = (11 - grade) * 500_000
    r = rev[ci, mi]
    outstanding = np.round(r * rng.uniform(0, 0.6, len(ci)), -2).astype(np.int64)
    late = (grade >= 7) & (rng.random(len(ci)) < 0.08 * (grade - 6)) & (outstanding > 0)
    dpd = np.where(late, rng.choice([15, 30, 60, 90], len(ci)), 0)
    order = np.lexsort((ci, mi))
    ci, mi = ci[order], mi[order]
    labels = [m[3] for m in months]
    data = pa.table(
        {
            "month": take(labels, mi),
            "customer_id": fmt_id("C", ci + 1, 7),
            "revenue_krw": pa.array(np.round(rev[ci, mi]).astype(np.int64)),
            "cogs_krw": pa.array(np.round(cogs[ci, mi]).astype(np.int64)),
            "cost_to_serve_krw": pa.array(np.round(cts[ci, mi]).astype(np.int64)),
            "credit_grade": pa.array(grade[order].astype(np.int64)),
            "credit_limit_krw": pa.array(limit[order].astype(np.int64)),
            "outstanding_krw": pa.array(outstanding[order]),
            "days_past_due": pa.array(dpd[order].astype(np.int64)),
        }
    )
    deliver = np.array([m[2] for m in months])
    return Rows("finance_monthly", data, dt=deliver[mi], sort=np.arange(len(ci))), {
        "rev": rev,
        "cogs": cogs,
        "cts": cts,
        "months": labels,
    }


def _empty_finance() -> pa.Table:
    from warehouse.contracts import SOURCES

    return pa.table({c: pa.array([], type=pa.string()) for c in SOURCES["finance_monthly"].column_names})


def products(w: World) -> Rows:
    cat = w.cat
    parts = []
    for e, day in enumerate(cat.product_snapshot_days):
        skus = np.flatnonzero(cat.sku_launch <= day)
        parts.append((np.full(len(skus), e), skus, np.full(len(skus), day)))
    e = np.concatenate([p[0] for p in parts])
    sku = np.concatenate([p[1] for p in parts])
    day = np.concatenate([p[2] for p in parts])
    data = pa.table(
        {
            "sku": fmt_id("P", sku + 1, 5),
            "product_name": take(list(cat.sku_name), sku),
            "category": take([c[0] for c in korean.CATEGORIES], cat.sku_category[sku]),
            "subcategory": pa.array(
                [
                    korean.CATEGORIES[c][1][s]
                    for c, s in zip(cat.sku_category[sku], cat.sku_sub[sku], strict=True)
                ],
                type=pa.string(),
            ),
            "brand": take(list(cat.sku_brand), sku),
            "unit_cost": pa.array(cat.unit_cost[e, sku]),
            "list_price": pa.array(cat.list_price[e, sku]),
            "updated_at": fmt_ts(w.seconds(cat.price_updated[e, sku], 6 * 3600)),
        }
    )
    return Rows("products", data, dt=day.astype(np.int64), sort=sku)


def stores(w: World) -> Rows:
    cat = w.cat
    parts = [(np.flatnonzero(cat.store_opened <= d), d) for d in cat.store_snapshot_days]
    s = np.concatenate([p[0] for p in parts])
    day = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    data = pa.table(
        {
            "store_id": fmt_id("S", s + 1, 3),
            "store_name": take(list(cat.store_name), s),
            "region": take(list(korean.REGION_NAMES), cat.store_region[s]),
            "city": take(list(korean.CITY_NAMES), cat.store_city[s]),
            "format": take(list(cat.store_format), s),
            "opened_at": fmt_date(w.seconds(cat.store_opened[s], 0)),
        }
    )
    return Rows("stores", data, dt=day.astype(np.int64), sort=s)


def staff(w: World) -> Rows:
    cat = w.cat
    parts = [(np.flatnonzero(cat.staff_hired <= d), d) for d in cat.store_snapshot_days]
    s = np.concatenate([p[0] for p in parts])
    day = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    is_rep = cat.staff_role[s] == "sales_rep"
    n_reps = int((cat.staff_role == "sales_rep").sum())
    num = np.where(is_rep, s + 1, s - n_reps + 1)
    ids = pa.compute.if_else(pa.array(is_rep), fmt_id("R", num, 3), fmt_id("A", num, 3))
    data = pa.table(
        {
            "staff_id": ids,
            "staff_name": take(list(cat.staff_name), s),
            "role": take(list(cat.staff_role), s),
            "team": take(list(cat.staff_team), s),
            "region": take(list(korean.REGION_NAMES), cat.staff_region[s]),
            "hired_at": fmt_date(w.seconds(cat.staff_hired[s], 0)),
        }
    )
    return Rows("staff", data, dt=day.astype(np.int64), sort=s)
