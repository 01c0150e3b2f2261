"""Purchases become receipts and orders: POS lines (CP949), online orders with nested lines and
status re-deliveries, the clickstream around them, and the loyalty ledger they feed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from warehouse.generate.calendar import time_of_day
from warehouse.generate.common import DAY, World, interval_events, sample_skus, within_group_rank
from warehouse.generate.simulate import CAMPAIGN_CHANNELS
from warehouse.generate.writers import Rows, fmt_id, fmt_ts, take

PAY_METHODS = ("CARD", "CASH", "POINT", "TRANSFER")
ONLINE_PAY = ("card", "kakaopay", "naverpay", "transfer", "point")
DEVICES = ("desktop", "mobile_web", "ios", "android")
EVENT_TYPES = ("page_view", "search", "product_view", "add_to_cart", "checkout", "login")
PAGES = ("/", "/search", "/product/", "/cart", "/checkout", "/login")
REFERRERS = ("naver.com", "google.com", "kakao.com", "instagram.com", "youtube.com")


@dataclass
class Lines:
    """Sales lines of members, for the ledger, finance and truth."""

    cust: np.ndarray
    seconds: np.ndarray
    net: np.ndarray
    cost: np.ndarray
    counts: np.ndarray  # True when the line counts as a sale (POS, or final status paid)
    ref: np.ndarray  # order reference index into refs
    online: np.ndarray


def _basket(w: World, n: int, day: np.ndarray, spend: np.ndarray):
    """Lines per basket (bigger spenders buy more lines), SKUs, quantities, prices, discounts."""
    rng = w.rng
    n_lines = 1 + np.minimum(rng.poisson(np.maximum(spend / 42000 - 0.6, 0.15)), 11)
    owner = np.repeat(np.arange(n), n_lines)
    line_no = within_group_rank(owner) + 1
    lday = day[owner]
    sku = sample_skus(rng, w.cat, lday)
    qty = rng.choice([1, 2, 3], size=len(owner), p=[0.82, 0.14, 0.04])
    epoch = w.cat.epoch_of(lday)
    price = w.cat.list_price[epoch, sku]
    cost = w.cat.unit_cost[epoch, sku]
    disc = np.where(
        rng.random(len(owner)) < 0.15, np.round(price * qty * rng.uniform(0.05, 0.2, len(owner)), -1), 0
    )
    return owner, line_no, sku, qty, price, cost, disc.astype(np.int64)


def pos_sales(w: World) -> tuple[Rows, Lines, dict]:
    rng, ev, pop, cat = w.rng, w.ev, w.pop, w.cat
    p = ev.cols["purchase"]
    store_buy = p["chan"] == 0
    cust = p["cust"][store_buy]
    day = p["day"][store_buy]
    store = np.where(
        rng.random(len(cust)) < 0.85, pop.home_store[cust], rng.integers(0, cat.n_stores, len(cust))
    )
    store = np.where(cat.store_opened[store] > day, pop.home_store[cust], store)
    store = np.where(cat.store_opened[store] > day, 0, store)
    # non-members: about a third of store receipts, following the same seasonality
    open_days = [(d, s) for d in range(w.days) for s in cat.stores_open(d)]
    od = np.array([d for d, _ in open_days], dtype=np.int64)
    os_ = np.array([s for _, s in open_days], dtype=np.int64)
    mean_member = len(cust) / max(len(open_days), 1)
    k = rng.poisson(0.5 * mean_member * w.season[od])
    nm_day, nm_store = np.repeat(od, k), np.repeat(os_, k)
    r_cust = np.concatenate([cust, np.full(len(nm_day), -1)])
    r_day = np.concatenate([day, nm_day])
    r_store = np.concatenate([store, nm_store])
    spend = np.concatenate([pop.spend[cust], 25000 * rng.lognormal(0, 0.5, len(nm_day))])
    r_sec = w.seconds(r_day, time_of_day(rng, len(r_day), "store"))
    member = r_cust >= 0
    pay = np.where(
        member,
        rng.choice(4, size=len(r_day), p=[0.76, 0.07, 0.07, 0.10]),
        rng.choice([0, 1, 3], size=len(r_day), p=[0.82, 0.1, 0.08]),
    )
    dept = np.isin(cat.store_format[r_store], ["department", "mall"])
    rep = np.where(
        member & dept & (rng.random(len(r_day)) < 0.3), r_store * 2 + rng.integers(0, 2, len(r_day)), -1
    )
    rep = np.where(cat.staff_hired[np.maximum(rep, 0)] > r_day, -1, rep)

    # returns: a few member lines come back within two weeks, before the customer leaves
    owner, line_no, sku, qty, price, cost, disc = _basket(w, len(r_day), r_day, spend)
    ret = (r_cust[owner] >= 0) & (disc == 0) & (rng.random(len(owner)) < 0.02)
    ret_day = r_day[owner[ret]] + rng.integers(1, 15, int(ret.sum()))
    ok = (ret_day < w.end_day()[r_cust[owner[ret]]]) & (ret_day < w.days)
    ridx = np.flatnonzero(ret)[ok]
    n_r = len(ridx)
    rr_day = ret_day[ok]
    rr_sec = w.seconds(rr_day, time_of_day(rng, n_r, "store"))
    # receipts: originals then returns, one receipt per returned line
    all_day = np.concatenate([r_day, rr_day])
    all_store = np.concatenate([r_store, r_store[owner[ridx]]])
    all_sec = np.concatenate([r_sec, rr_sec])
    all_cust = np.concatenate([r_cust, r_cust[owner[ridx]]])
    all_pay = np.concatenate([pay, pay[owner[ridx]]])
    all_rep = np.concatenate([rep, np.full(n_r, -1)])
    rorder = np.lexsort((np.arange(len(all_day)), all_sec, all_store, all_day))
    seq = np.empty(len(all_day), dtype=np.int64)
    seq[rorder] = within_group_rank((all_day * 1000 + all_store)[rorder]) + 1
    l_owner = np.concatenate([owner, len(r_day) + np.arange(n_r)])
    l_line = np.concatenate([line_no, np.ones(n_r, dtype=np.int64)])
    l_sku = np.concatenate([sku, sku[ridx]])
    l_qty = np.concatenate([qty, -qty[ridx]])
    l_price = np.concatenate([price, price[ridx]])
    l_cost = np.concatenate([cost, cost[ridx]])
    l_disc = np.concatenate([disc, np.zeros(n_r, dtype=np.int64)])
    o = l_owner
    day_str = fmt_ts(w.seconds(all_day[o], 0), "%Y%m%d")
    receipt = pa.compute.binary_join_element_wise(day_str, fmt_id("", seq[o], 5), "-")
    data = pa.table(
        {
            "receipt_no": receipt,
            "line_no": pa.array(l_line),
            "store_id": fmt_id("S", all_store[o] + 1, 3),
            "sold_at": fmt_ts(all_sec[o], "%Y%m%d%H%M%S"),
            "customer_id": fmt_id("C", all_cust[o] + 1, 7, mask=all_cust[o] < 0),
            "sku": fmt_id("P", l_sku + 1, 5),
            "qty": pa.array(l_qty),
            "unit_price": pa.array(l_price),
            "discount_amt": pa.array(l_disc),
            "pay_method": take(PAY_METHODS, all_pay[o]),
            "rep_id": fmt_id("R", all_rep[o] + 1, 3, mask=all_rep[o] < 0),
        }
    )
    rows = Rows(
        "pos_sales",
        data,
        dt=all_day[o],
        part=all_store[o],
        sort=all_sec[o] * 100 + l_line,
        expected=open_days,
    )
    mem = all_cust[o] >= 0
    lines = Lines(
        cust=all_cust[o][mem],
        seconds=all_sec[o][mem],
        net=(l_qty * l_price - l_disc)[mem],
        cost=(l_qty * l_cost)[mem],
        counts=np.ones(int(mem.sum()), dtype=bool),
        ref=o[mem],
        online=np.zeros(int(mem.sum()), dtype=bool),
    )
    receipts = {"pay": all_pay, "cust": all_cust, "sec": all_sec, "receipt": receipt, "owner": o}
    return rows, lines, receipts


def online_orders(w: World) -> tuple[Rows, Lines, dict]:
    rng, ev, pop = w.rng, w.ev, w.pop
    p = ev.cols["purchase"]
    on = p["chan"] > 0
    cust, day, chan, camp = p["cust"][on], p["day"][on], p["chan"][on], p["campaign"][on]
    n = len(cust)
    sec = w.seconds(day, time_of_day(rng, n, "online"))
    order = np.lexsort((cust, sec))
    cust, day, chan, camp, sec = cust[order], day[order], chan[order], camp[order], sec[order]
    owner, line_no, sku, qty, price, cost, disc = _basket(w, n, day, pop.spend[cust])
    net = qty * price - disc
    total = np.bincount(owner, weights=net, minlength=n)
    device = np.where(chan == 1, rng.integers(0, 2, n), 2 + rng.integers(0, 2, n))
    method = rng.choice(5, size=n, p=[0.55, 0.18, 0.14, 0.08, 0.05])
    inst = np.where((method == 0) & (total > 100_000), rng.choice([0, 2, 3, 6], size=n), 0)
    coupon_kind = np.where(
        camp >= 0, np.where(rng.random(n) < 0.6, 1, 0), np.where(rng.random(n) < 0.12, 2, 0)
    )

    # status versions: paid; some cancelled within two days, some returned within three weeks
    u = rng.random(n)
    final = np.where(u < 0.04, 1, np.where(u < 0.09, 2, 0))
    change_sec = sec + np.where(final == 1, rng.integers(600, 2 * DAY, n), rng.integers(3 * DAY, 21 * DAY, n))
    changed = (final > 0) & (w.day_of(change_sec) < w.days)
    v_idx = np.concatenate([np.arange(n), np.flatnonzero(changed)])
    v_status = np.concatenate([np.zeros(n, dtype=np.int64), final[changed]])
    v_upd = np.concatenate([sec, change_sec[changed]])

    line_struct = pa.StructArray.from_arrays(
        [fmt_id("P", sku + 1, 5), pa.array(qty), pa.array(price), pa.array(disc)],
        names=["sku", "qty", "unit_price", "discount_amt"],
    )
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=n))]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), line_struct)
    payment = pa.StructArray.from_arrays(
        [take(ONLINE_PAY, method), pa.array(inst, type=pa.int32())], names=["method", "installment_months"]
    )
    order_ids = fmt_id("O", np.arange(n) + 1, 9)
    coupon = pa.compute.if_else(
        pa.array(coupon_kind == 1),
        fmt_id("CMP", np.maximum(camp, 0) + 1, 4),
        pa.compute.if_else(pa.array(coupon_kind == 2), pa.scalar("WELCOME10"), pa.scalar(None, pa.string())),
    )
    vi = pa.array(v_idx)
    data = pa.table(
        {
            "order_id": order_ids.take(vi),
            "customer_id": fmt_id("C", cust + 1, 7).take(vi),
            "ordered_at": fmt_ts(sec, "%Y-%m-%dT%H:%M:%S+09:00").take(vi),
            "channel": take(("store", "web", "app"), chan).take(vi),
            "device": take(DEVICES, device).take(vi),
            "status": take(("paid", "cancelled", "returned"), v_status),
            "coupon_code": coupon.take(vi),
            "payment": payment.take(vi),
            "lines": lists.take(vi),
            "updated_at": fmt_ts(v_upd, "%Y-%m-%dT%H:%M:%S+09:00"),
        }
    )
    rows = Rows(
        "online_orders", data, dt=w.day_of(v_upd), sort=v_upd, expected=[(d, 0) for d in range(w.days)]
    )
    lines = Lines(
        cust=cust[owner],
        seconds=sec[owner],
        net=net,
        cost=qty * cost,
        counts=final[owner] == 0,
        ref=owner,
        online=np.ones(len(owner), dtype=bool),
    )
    orders = {
        "cust": cust,
        "sec": sec,
        "chan": chan,
        "device": device,
        "final": final,
        "change_sec": change_sec,
        "changed": changed,
        "total": total,
        "ids": order_ids,
        "sku": sku,
        "owner": owner,
    }
    return rows, lines, orders


def web_events(w: World, orders: dict) -> Rows:
    """Sessions: before each order (login, views, cart, checkout), browsing, campaign clicks,
    anonymous visitors. customer_id is null until the login event of the session."""
    rng, pop, ev = w.rng, w.pop, w.ev
    # order sessions end just before the order
    o_cust, o_sec, o_chan, o_dev = orders["cust"], orders["sec"], orders["chan"], orders["device"]
    n_o = len(o_cust)
    # browsing by online-minded members, without buying
    first = np.maximum(pop.signup_day, 0)
    rate = np.where(pop.pref > 0, 1 / 90, 1 / 500)
    b_cust, b_day = interval_events(rng, first, w.end_day(), rate)
    b_sec = w.seconds(b_day, time_of_day(rng, len(b_cust), "online"))
    b_chan = np.where(pop.pref[b_cust] == 0, 1 + rng.integers(0, 2, len(b_cust)), pop.pref[b_cust])
    # campaign clicks open a session tagged with utm parameters
    t = ev.cols["touch"]
    clicked = t["clicked"].astype(bool) & np.isin(w.camps.channel[t["campaign"]], [0, 1, 2, 5])
    c_cust, c_camp = t["cust"][clicked], t["campaign"][clicked]
    c_day = w.camps.start_day[c_camp]
    c_sec = w.seconds(c_day, 11 * 3600 + rng.integers(0, 11 * 3600, len(c_cust)))
    c_chan = np.where(w.camps.channel[c_camp] == 5, 2, 1 + rng.integers(0, 2, len(c_cust)))
    # anonymous visitors who never log in
    a_day = np.repeat(np.arange(w.days), rng.poisson(max(pop.n * 0.002, 2) * w.season))
    a_sec = w.seconds(a_day, time_of_day(rng, len(a_day), "online"))
    a_chan = 1 + (rng.random(len(a_day)) < 0.35).astype(int)

    kind = np.concatenate(
        [np.zeros(n_o, int), np.ones(len(b_cust), int), np.full(len(c_cust), 2), np.full(len(a_day), 3)]
    )
    s_cust = np.concatenate([o_cust, b_cust, c_cust, np.full(len(a_day), -1)])
    s_chan = np.concatenate([o_chan, b_chan, c_chan, a_chan])
    s_camp = np.concatenate([np.full(n_o + len(b_cust), -1), c_camp, np.full(len(a_day), -1)])
    n_s = len(kind)
    n_ev = np.where(kind == 0, 3 + rng.integers(0, 2, n_s), 2 + rng.integers(0, 3, n_s))
    login = np.where(kind == 0, 1, np.where(kind == 3, -1, np.where(rng.random(n_s) < 0.5, 1, -1)))
    gaps = rng.integers(15, 150, size=int(n_ev.sum()))
    sess = np.repeat(np.arange(n_s), n_ev)
    pos = within_group_rank(sess)
    cum = np.cumsum(gaps)
    del gaps
    firsts = np.concatenate([[0], np.cumsum(n_ev)[:-1]]).astype(np.int64)
    offset = cum - cum[firsts][sess]
    del cum
    duration = offset[firsts + n_ev - 1]
    s_start = np.concatenate([o_sec - duration[:n_o] - 30, b_sec, c_sec, a_sec])
    ts = s_start[sess] + offset
    del offset, firsts, duration
    device = np.where(s_chan == 1, rng.integers(0, 2, n_s), 2 + rng.integers(0, 2, n_s))
    device[:n_o] = o_dev
    # stable cookie per member and channel; visitors get a fresh one
    anon_num = np.where(s_cust >= 0, s_cust * 2 + (s_chan == 2), pop.n * 2 + np.arange(n_s))
    anon_id = (anon_num * 2_654_435_761 + 97) % 10**12
    del anon_num

    last = pos == n_ev[sess] - 1
    e_kind = kind[sess]
    etype = np.where(
        pos == 0, 0, np.where(rng.random(len(sess)) < 0.25, 1, 2)
    )  # page_view/search/product_view
    etype = np.where((e_kind == 0) & last, 4, etype)
    etype = np.where((e_kind == 0) & (pos == n_ev[sess] - 2), 3, etype)
    etype = np.where((e_kind != 0) & last & (rng.random(len(sess)) < 0.1), 3, etype)
    etype = np.where(pos == login[sess], 5, etype)
    logged = (login[sess] >= 0) & (pos >= login[sess])
    del last, e_kind
    sku = rng.integers(0, len(w.cat.sku_launch), len(sess))
    ref_i = rng.integers(0, len(REFERRERS), len(sess))
    has_ref = (pos == 0) & (rng.random(len(sess)) < 0.6)
    keep = (s_start[sess] >= w.t0) & (w.day_of(ts) < w.days)  # whole sessions, from their start
    # a session just before a signup or churn boundary keeps only events of living members
    keep_idx = np.flatnonzero(keep)
    del keep
    order = keep_idx[np.lexsort((pos[keep_idx], sess[keep_idx], ts[keep_idx]))]
    del keep_idx, pos
    # the kept events in file order: only what their text is made of, in small types
    e_ts, e_sess, e_type = ts[order], sess[order], etype[order].astype(np.int8)
    e_logged, e_sku = logged[order], sku[order].astype(np.int32)
    e_ref, e_has_ref = ref_i[order].astype(np.int8), has_ref[order]
    del ts, sess, etype, logged, sku, ref_i, has_ref, order
    # Events that are no campaign's click read index 0 and are masked out; a history too short
    # for any campaign has no channel there to read.
    camp_channel = w.camps.channel if len(w.camps.channel) else np.zeros(1, dtype=np.int64)

    def table(idx: np.ndarray) -> pa.Table:
        """The text columns of the kept events at ``idx`` (their event numbers are idx + 1)."""
        s, et = e_sess[idx], e_type[idx]
        camp = s_camp[s]
        is_camp = camp >= 0
        page = take(PAGES, et).dictionary_decode()
        page = pa.compute.if_else(
            pa.array(et == 2),
            pa.compute.binary_join_element_wise(page, fmt_id("P", e_sku[idx] + 1, 5), ""),
            page,
        )
        return pa.table(
            {
                "event_id": fmt_id("E", idx + 1, 11),
                "ts": fmt_ts(e_ts[idx], "%Y-%m-%dT%H:%M:%S+09:00"),
                "anonymous_id": fmt_id("V", anon_id[s], 12),
                "customer_id": fmt_id("C", s_cust[s] + 1, 7, mask=~e_logged[idx] | (s_cust[s] < 0)),
                "session_id": fmt_id("SS", s + 1, 10),
                "channel": take(("store", "web", "app"), s_chan[s]),
                "event_type": take(EVENT_TYPES, et),
                "page": page,
                "referrer_domain": take(REFERRERS, e_ref[idx], mask=~e_has_ref[idx] | is_camp),
                "utm_source": take(CAMPAIGN_CHANNELS, camp_channel[np.maximum(camp, 0)], mask=~is_camp),
                "utm_medium": take(("crm",), np.zeros(len(idx), dtype=np.int64), mask=~is_camp),
                "utm_campaign": fmt_id("CMP", np.maximum(camp, 0) + 1, 4, mask=~is_camp),
                "device": take(DEVICES, device[s]),
            }
        )

    return Rows(
        "web_events",
        table,
        dt=w.day_of(e_ts),
        sort=np.arange(len(e_ts)),
        expected=[(d, 0) for d in range(w.days)],
    )


def loyalty_points(w: World, pos_lines: Lines, pos_receipts: dict, on_lines: Lines, orders: dict) -> Rows:
    """Earn 1 % of member purchases; redeem when paying with points; adjust on cancellations and
    returns; a signup bonus; expiry half a year after a customer leaves."""
    rng, pop, ev = w.rng, w.pop, w.ev
    # POS receipts of members (one entry per receipt)
    r_cust, r_sec, r_pay = pos_receipts["cust"], pos_receipts["sec"], pos_receipts["pay"]
    n_rec = len(r_cust)
    r_net = np.bincount(pos_lines.ref, weights=pos_lines.net, minlength=n_rec) if n_rec else np.zeros(0)
    receipt_no = pos_receipts["receipt"]
    # receipt numbers per receipt index: first line of each receipt
    owner = pos_receipts["owner"]
    first_line = np.full(n_rec, -1, dtype=np.int64)
    first_line[owner[::-1]] = np.arange(len(owner))[::-1]
    mem = (r_cust >= 0) & (first_line >= 0)
    rec_ref = receipt_no.take(pa.array(np.maximum(first_line, 0)))
    parts = []  # (cust, sec, points, reason, ref (pa), sort)
    earn = mem & (r_net > 0)
    parts.append(
        (
            r_cust[earn],
            r_sec[earn],
            np.floor(r_net[earn] * 0.01).astype(np.int64),
            0,
            rec_ref.filter(pa.array(earn)),
        )
    )
    red = mem & (r_pay == 2) & (r_net > 0)
    parts.append(
        (
            r_cust[red],
            r_sec[red] + 1,
            -np.minimum(np.round(r_net[red] * 0.3, -1), 30000).astype(np.int64),
            1,
            rec_ref.filter(pa.array(red)),
        )
    )
    # online orders: earn on payment, adjust back when cancelled or returned
    o_cust, o_sec, total = orders["cust"], orders["sec"], orders["total"]
    pts = np.floor(total * 0.01).astype(np.int64)
    parts.append((o_cust, o_sec, pts, 0, orders["ids"]))
    ch = orders["changed"]
    parts.append((o_cust[ch], orders["change_sec"][ch], -pts[ch], 4, orders["ids"].filter(pa.array(ch))))
    # signup bonus for new members
    new = np.flatnonzero((pop.signup_day >= 0) & (pop.signup_day < w.days))
    parts.append(
        (
            new,
            w.seconds(pop.signup_day[new], 12 * 3600),
            np.full(len(new), 1000),
            3,
            pa.nulls(len(new), pa.string()),
        )
    )
    cust = np.concatenate([p[0] for p in parts])
    sec = np.concatenate([p[1] for p in parts])
    points = np.concatenate([p[2] for p in parts])
    reason = np.concatenate([np.full(len(p[0]), p[3]) for p in parts])
    refs = pa.concat_arrays([p[4].cast(pa.string()) for p in parts])
    # expiry: 180 days after leaving, the remaining balance
    bal = np.bincount(cust, weights=points, minlength=pop.n)
    exp_day = ev.churn_day + 180
    gone = np.flatnonzero((ev.churn_day < w.days) & (exp_day < w.days) & (bal > 0))
    cust = np.concatenate([cust, gone])
    sec = np.concatenate([sec, w.seconds(exp_day[gone], 3 * 3600)])
    points = np.concatenate([points, -bal[gone].astype(np.int64)])
    reason = np.concatenate([reason, np.full(len(gone), 2)])
    refs = pa.concat_arrays([refs, pa.nulls(len(gone), pa.string())])
    order = np.lexsort((cust, sec))
    data = pa.table(
        {
            "entry_id": fmt_id("LP", np.arange(len(order)) + 1, 10),
            "customer_id": fmt_id("C", cust[order] + 1, 7),
            "ts": fmt_ts(sec[order]),
            "points": pa.array(points[order]),
            "reason": take(("earn", "redeem", "expire", "bonus", "adjust"), reason[order]),
            "order_ref": refs.take(pa.array(order)),
        }
    )
    _ = rng
    return Rows(
        "loyalty_points",
        data,
        dt=w.day_of(sec[order]),
        sort=np.arange(len(order)),
        expected=[(d, 0) for d in range(w.days)],
    )
