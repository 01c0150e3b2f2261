"""Campaigns (delivered when planned), their touches (delivered on the send day, control rows
included with an empty sent_at), and referrals (re-delivered once the friend signs up)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from warehouse.generate import korean
from warehouse.generate.common import World
from warehouse.generate.simulate import ATTRIBUTION_DAYS, CAMPAIGN_CHANNELS, OBJECTIVES, UNIT_COST
from warehouse.generate.writers import Rows, fmt_date, fmt_id, fmt_ts, take

OBJECTIVE_KO = {
    "acquisition": "첫구매",
    "retention": "고객 감사",
    "winback": "다시 만나요",
    "cross_sell": "추천 상품",
    "upsell": "프리미엄 업그레이드",
}
REFERRAL_CHANNELS = ("kakao", "sms", "link", "in_store", "email")


def campaigns(w: World) -> Rows:
    c = w.camps
    k = len(c.start_day)
    t = w.ev.cols["touch"]
    targeted = np.bincount(t["campaign"], minlength=k) if k else np.zeros(0, int)
    unit = UNIT_COST[c.channel]
    budget = np.maximum(np.round(targeted * unit * 1.2, -4), 100_000).astype(np.int64)
    names = [
        f"{korean.CAMPAIGN_THEMES[c.theme[i]]} {OBJECTIVE_KO[OBJECTIVES[c.objective[i]]]} 캠페인 {i + 1}"
        for i in range(k)
    ]
    data = pa.table(
        {
            "campaign_id": fmt_id("CMP", np.arange(k) + 1, 4),
            "campaign_name": pa.array(names, type=pa.string()),
            "channel": take(CAMPAIGN_CHANNELS, c.channel),
            "objective": take(OBJECTIVES, c.objective),
            "start_date": fmt_date(w.seconds(c.start_day, 0)),
            "end_date": fmt_date(w.seconds(c.start_day + ATTRIBUTION_DAYS - 1, 0)),
            "budget_krw": pa.array(budget),
            "unit_cost_krw": pa.array(unit.astype(np.int64)),
            "control_share": pa.array(c.control_share.astype(float)),
        }
    )
    return Rows("campaigns", data, dt=c.plan_day.astype(np.int64), sort=np.arange(k))


def campaign_touches(w: World) -> Rows:
    rng = w.rng
    t = w.ev.cols["touch"]
    camp = t["campaign"]
    n = len(camp)
    control = t["control"].astype(bool)
    delivered = t["delivered"].astype(bool)
    day = w.camps.start_day[camp]
    sent = w.seconds(day, 9 * 3600 + rng.integers(0, 2 * 3600, n))
    end_of_day = w.seconds(day, 86399)
    opened = np.minimum(sent + rng.integers(60, 8 * 3600, n), end_of_day)
    clicked = np.minimum(opened + rng.integers(10, 1800, n), end_of_day)
    unsub = np.minimum(clicked + rng.integers(5, 300, n), end_of_day)
    cost = np.where(control, 0, UNIT_COST[w.camps.channel[camp]])
    order = np.lexsort((t["cust"], camp))
    o = order
    data = pa.table(
        {
            "touch_id": fmt_id("T", np.arange(n) + 1, 9),
            "campaign_id": fmt_id("CMP", camp[o] + 1, 4),
            "customer_id": fmt_id("C", t["cust"][o] + 1, 7),
            "assigned_group": take(("treatment", "control"), control[o].astype(int)),
            "sent_at": fmt_ts(sent[o], mask=control[o]),
            "delivered": take(("N", "Y"), delivered[o].astype(int)),
            "opened_at": fmt_ts(opened[o], mask=~t["opened"][o].astype(bool)),
            "clicked_at": fmt_ts(clicked[o], mask=~t["clicked"][o].astype(bool)),
            "unsubscribed_at": fmt_ts(unsub[o], mask=~t["unsub"][o].astype(bool)),
            "cost_krw": pa.array(cost[o].astype(np.int64)),
        }
    )
    return Rows("campaign_touches", data, dt=day[o].astype(np.int64), sort=np.arange(n))


def referrals(w: World) -> Rows:
    rng, pop = w.rng, w.pop
    r = w.ev.cols["referral"]
    n = len(r["cust"])
    sec = w.seconds(r["day"], 10 * 3600 + rng.integers(0, 12 * 3600, n))
    referred = r["referred"]
    conv = referred >= 0
    conv_day = np.where(conv, pop.signup_day[np.maximum(referred, 0)], -1)
    conv_sec = w.seconds(conv_day, 9 * 3600 + rng.integers(0, 12 * 3600, n))
    conv = conv & (conv_day < w.days)
    idx = np.concatenate([np.arange(n), np.flatnonzero(conv)])
    second = np.concatenate([np.zeros(n, bool), np.ones(int(conv.sum()), bool)])
    dt = np.where(second, conv_day[idx], r["day"][idx])
    data = pa.table(
        {
            "referral_id": fmt_id("RF", idx + 1, 8),
            "referrer_customer_id": fmt_id("C", r["cust"][idx] + 1, 7),
            "referred_customer_id": fmt_id("C", referred[idx] + 1, 7, mask=~second),
            "referred_at": fmt_ts(sec[idx]),
            "channel": take(REFERRAL_CHANNELS, r["channel"][idx]),
            "converted_at": fmt_ts(conv_sec[idx], mask=~second),
        }
    )
    return Rows(
        "referrals",
        data,
        dt=dt.astype(np.int64),
        sort=np.where(second, conv_sec[idx], sec[idx]),
        expected=[(d, 0) for d in range(w.days)],
    )
