"""Service contacts: calls (often without customer_id), VOC cases with status re-deliveries,
surveys, and sales reps' activities with their portfolio of valuable customers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from warehouse.generate import korean
from warehouse.generate.calendar import time_of_day
from warehouse.generate.common import DAY, World, interval_events
from warehouse.generate.writers import Rows, fmt_id, fmt_ts, take

# incident kind (simulate.INCIDENT_KINDS) -> call reason / VOC category
KIND_REASON = np.array([1, 3, 2, 4])  # delivery, product, billing, complaint
KIND_CATEGORY = np.array([1, 0, 5, 3])  # delivery, product, billing, service
VOC_CATEGORIES = ("product", "delivery", "price", "service", "staff", "billing", "app")


def _summary(rng: np.random.Generator, reason: np.ndarray) -> pa.Array:
    flat = [s for r in korean.CALL_REASONS for s in korean.CALL_SUMMARY[r]]
    return take(flat, reason * 3 + rng.integers(0, 3, len(reason)))


def call_center(w: World) -> tuple[Rows, dict]:
    rng, pop, ev = w.rng, w.pop, w.ev
    inc = ev.cols["incident"]
    call = inc["via_call"].astype(bool)
    i_cust, i_day = inc["cust"][call], inc["day"][call]
    i_reason = KIND_REASON[inc["kind"][call]]
    i_res = inc["resolution"][call]
    i_reason = np.where((i_res > 0) & (rng.random(len(i_cust)) < 0.3), 4, i_reason)
    i_long = inc["long"][call].astype(bool)
    comp = ev.cols["competitor"]
    called = comp["called"].astype(bool)
    c_cust, c_day = comp["cust"][called], comp["day"][called]
    b_cust, b_day = interval_events(rng, np.maximum(pop.signup_day, 0), w.end_day(), 1 / 200)
    n_b = len(b_cust)
    b_reason = rng.choice([0, 2, 3, 6], size=n_b, p=[0.4, 0.15, 0.2, 0.25])
    # strangers and wrong numbers
    a_day = np.repeat(np.arange(w.days), rng.poisson(max(pop.n * 0.0004, 0.5), w.days))
    n_a = len(a_day)
    cust = np.concatenate([i_cust, c_cust, b_cust, np.full(n_a, -1)])
    day = np.concatenate([i_day, c_day, b_day, a_day])
    reason = np.concatenate([i_reason, np.full(len(c_cust), 5), b_reason, rng.choice([0, 6], n_a)])
    res = np.concatenate(
        [
            i_res,
            rng.choice(3, len(c_cust), p=[0.5, 0.4, 0.1]),
            rng.choice(3, n_b, p=[0.86, 0.1, 0.04]),
            rng.choice(3, n_a, p=[0.7, 0.3, 0.0]),
        ]
    )
    long_ = np.concatenate(
        [i_long, rng.random(len(c_cust)) < 0.3, rng.random(n_b) < 0.05, np.zeros(n_a, bool)]
    )
    n = len(cust)
    outbound = np.concatenate(
        [np.zeros(len(i_cust) + len(c_cust), bool), rng.random(n_b) < 0.12, np.zeros(n_a, bool)]
    )
    dur = np.where(
        long_, rng.integers(900, 2700, n), np.minimum(rng.lognormal(5.3, 0.6, n), 890).astype(np.int64)
    )
    start = w.seconds(day, time_of_day(rng, n, "office"))
    # the agent typed the customer number on some calls; others are matched by phone later
    member = cust >= 0
    has_id = member & (rng.random(n) < 0.45)
    own_phone = member & (rng.random(n) < 0.92)
    phone_num = np.where(
        own_phone,
        pop.phone_num[np.maximum(cust, 0)],
        (pop.n + rng.integers(0, 10**7, n)) * 7_919_113 % 100_000_000,
    )
    phone = _phone(phone_num)
    csat_given = rng.random(n) < 0.35
    csat = np.clip(np.where(res == 0, rng.integers(3, 6, n), rng.integers(1, 4, n)) - long_, 1, 5)
    n_agents = int((w.cat.staff_role == "agent").sum())
    agent = rng.integers(0, n_agents, n)
    order = np.lexsort((cust, start))
    data = pa.table(
        {
            "call_id": fmt_id("CL", np.arange(n) + 1, 10),
            "caller_phone": phone.take(pa.array(order)),
            "customer_id": fmt_id("C", cust[order] + 1, 7, mask=~has_id[order]),
            "agent_id": fmt_id("A", agent[order] + 1, 3),
            "started_at": fmt_ts(start[order]),
            "ended_at": fmt_ts(start[order] + dur[order]),
            "direction": take(("inbound", "outbound"), outbound[order].astype(int)),
            "reason": take(korean.CALL_REASONS, reason[order]),
            "resolution": take(korean.RESOLUTIONS, res[order]),
            "csat": pa.array(csat[order], mask=~csat_given[order]),
            "summary": _summary(rng, reason[order]),
        }
    )
    facts = {"cust": cust, "day": day, "dur": dur, "member": member}
    return Rows(
        "call_center", data, dt=day[order], sort=np.arange(n), expected=[(d, 0) for d in range(w.days)]
    ), facts


def _phone(num: np.ndarray) -> pa.Array:
    s = fmt_id("", num, 8)
    return pa.compute.binary_join_element_wise(
        "010", pa.compute.utf8_slice_codeunits(s, 0, 4), pa.compute.utf8_slice_codeunits(s, 4, 8), "-"
    )


def phones(num: np.ndarray) -> pa.Array:
    return _phone(num)


def voc(w: World) -> tuple[Rows, dict]:
    rng, pop, ev = w.rng, w.pop, w.ev
    inc = ev.cols["incident"]
    v = ~inc["via_call"].astype(bool)
    i_cust, i_day, i_res = inc["cust"][v], inc["day"][v], inc["resolution"][v]
    i_cat = KIND_CATEGORY[inc["kind"][v]]
    i_cat = np.where(i_cat == 3, rng.choice([3, 4, 6], len(i_cat)), i_cat)
    sug = ev.cols["suggestion"]
    q_cust, q_day = interval_events(rng, np.maximum(pop.signup_day, 0), w.end_day(), 1 / 600)
    cust = np.concatenate([i_cust, sug["cust"], q_cust])
    day = np.concatenate([i_day, sug["day"], q_day])
    n_i, n_s, n_q = len(i_cust), len(sug["cust"]), len(q_cust)
    vtype = np.concatenate([np.zeros(n_i, int), np.full(n_s, 2), rng.choice([1, 3], n_q, p=[0.7, 0.3])])
    cat = np.concatenate([i_cat, rng.choice([0, 3, 6], n_s), rng.integers(0, 7, n_q)])
    res = np.concatenate([i_res, np.zeros(n_s + n_q, int)])
    sev = np.where(vtype == 0, np.clip(1 + res + (rng.random(len(cust)) < 0.3), 1, 3), 1)
    n = len(cust)
    recv = w.seconds(day, time_of_day(rng, n, "online"))
    chan = np.where(pop.pref[cust] == 0, rng.choice([0, 3], n), np.where(pop.pref[cust] == 1, 1, 2))
    chan = np.where(rng.random(n) < 0.1, 4, chan)
    text_flat = [t for c in VOC_CATEGORIES for t in korean.VOC_TEXT[c]]
    text_i = cat * 3 + np.where(vtype == 3, 2, rng.integers(0, 2, n))
    text = take(text_flat, text_i).dictionary_decode()
    text = pa.compute.if_else(
        pa.array(vtype == 2), take(korean.SUGGESTION_TEXT, rng.integers(0, 4, n)).dictionary_decode(), text
    )
    # versions: open -> in_progress -> resolved -> closed; unresolved cases close unresolved
    t_prog = recv + rng.integers(2 * 3600, 30 * 3600, n)
    t_res = np.where(
        res == 2, t_prog + rng.integers(5 * DAY, 15 * DAY, n), t_prog + rng.integers(3600, 4 * DAY, n)
    )
    t_close = np.where(
        res == 1, t_prog + rng.integers(20 * DAY, 40 * DAY, n), t_res + rng.integers(DAY, 3 * DAY, n)
    )
    comp = np.where(
        (vtype == 0) & (res != 1) & (rng.random(n) < 0.3), np.round(rng.integers(5, 50, n) * 1000, -3), 0
    )
    idx_parts, status_parts, upd_parts, resolved_parts, comp_parts = [], [], [], [], []
    for status, t, has_res in ((0, recv, False), (1, t_prog, False), (2, t_res, True), (3, t_close, True)):
        take_ = np.ones(n, bool) if status != 2 else res != 1
        idx = np.flatnonzero(take_ & (w.day_of(t) < w.days))
        idx_parts.append(idx)
        status_parts.append(np.full(len(idx), status))
        upd_parts.append(t[idx])
        resolved_parts.append(has_res & (res[idx] != 1))
        comp_parts.append(np.where(status >= 2, comp[idx], 0))
    vi = np.concatenate(idx_parts)
    status = np.concatenate(status_parts)
    upd = np.concatenate(upd_parts)
    resolved = np.concatenate(resolved_parts)
    vcomp = np.concatenate(comp_parts)
    # ids follow the order cases were received
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((cust, recv))] = np.arange(n)
    via = pa.array(vi)
    data = pa.table(
        {
            "voc_id": fmt_id("V", rank[vi] + 1, 8),
            "customer_id": fmt_id("C", cust[vi] + 1, 7),
            "received_at": fmt_ts(recv[vi]),
            "channel": take(("call", "web", "app", "store", "email"), chan[vi]),
            "voc_type": take(("complaint", "inquiry", "suggestion", "praise"), vtype[vi]),
            "category": take(VOC_CATEGORIES, cat[vi]),
            "severity": pa.array(sev[vi]),
            "text": text.take(via),
            "status": take(("open", "in_progress", "resolved", "closed"), status),
            "resolved_at": fmt_ts(t_res[vi], mask=~resolved),
            "compensation_krw": pa.array(vcomp, mask=vcomp == 0),
            "updated_at": fmt_ts(upd),
        }
    )
    facts = {"cust": cust, "day": day, "vtype": vtype}
    return Rows("voc", data, dt=w.day_of(upd), sort=upd, expected=[(d, 0) for d in range(w.days)]), facts


def surveys(w: World) -> Rows:
    rng, ev = w.rng, w.ev
    s = ev.cols["survey"]
    n = len(s["cust"])
    sec = w.seconds(s["day"], time_of_day(rng, n, "online"))
    nps = s["nps"].astype(bool)
    score = s["score"]
    band = np.where(
        nps,
        np.where(score <= 6, 0, np.where(score <= 8, 1, 2)),
        np.where(score <= 2, 0, np.where(score == 3, 1, 2)),
    )
    flat = [c for b in ("low", "mid", "high") for c in korean.SURVEY_COMMENT[b]]
    has_comment = rng.random(n) < 0.4
    tp = s["touchpoint"]
    order = np.lexsort((s["cust"], sec))
    data = pa.table(
        {
            "response_id": fmt_id("SV", np.arange(n) + 1, 9),
            "customer_id": fmt_id("C", s["cust"][order] + 1, 7),
            "survey_type": take(("csat", "nps"), nps[order].astype(int)),
            "responded_at": fmt_ts(sec[order]),
            "score": pa.array(score[order]),
            "touchpoint": take(("store", "online", "call", "delivery"), tp[order]),
            "comment": take(flat, (band * 3 + rng.integers(0, 3, n))[order], mask=~has_comment[order]),
        }
    )
    return Rows(
        "surveys", data, dt=s["day"][order], sort=np.arange(n), expected=[(d, 0) for d in range(w.days)]
    )


def sales_activities(w: World) -> tuple[Rows, dict]:
    """Reps look after a portfolio: the most valuable few percent and those they signed up."""
    rng, pop, cat = w.rng, w.pop, w.cat
    value = pop.latent_value
    cutoff = np.quantile(value, 0.97) if pop.n else 0
    portfolio = (value >= cutoff) | (pop.signup_channel == "sales_rep")
    rate = np.where(portfolio, 1 / 30, 0.0)
    cust, day = interval_events(rng, np.maximum(pop.signup_day, 0), w.end_day(), rate)
    n = len(cust)
    store = pop.home_store[cust]
    rep = store * 2 + (cust % 2)
    rep = np.where(cat.staff_hired[rep] > day, (store * 0) + (cust % 2), rep)  # new store: its first reps
    atype = rng.choice(4, n, p=[0.3, 0.4, 0.15, 0.15])
    outcome = rng.choice(5, n, p=[0.2, 0.45, 0.2, 0.1, 0.05])
    dur = np.select(
        [atype == 0, atype == 1, atype == 2],
        [rng.integers(30, 91, n), rng.integers(5, 21, n), rng.integers(30, 121, n)],
        rng.integers(1, 6, n),
    )
    sec = w.seconds(day, time_of_day(rng, n, "office"))
    order = np.lexsort((cust, sec))
    data = pa.table(
        {
            "activity_id": fmt_id("SA", np.arange(n) + 1, 9),
            "rep_id": fmt_id("R", rep[order] + 1, 3),
            "customer_id": fmt_id("C", cust[order] + 1, 7),
            "ts": fmt_ts(sec[order]),
            "activity_type": take(("visit", "call", "meeting", "email"), atype[order]),
            "outcome": take(("no_contact", "contacted", "opportunity", "won", "lost"), outcome[order]),
            "duration_min": pa.array(dur[order]),
            "note": take(korean.ACTIVITY_NOTES, rng.integers(0, len(korean.ACTIVITY_NOTES), n)),
        }
    )
    facts = {"cust": cust, "day": day}
    return Rows(
        "sales_activities", data, dt=day[order], sort=np.arange(n), expected=[(d, 0) for d in range(w.days)]
    ), facts
