"""The daily life of the customer base: purchases, service failures, campaigns, referrals, churn.

One vectorised step per day (a loop over days, never over customers). Churn is a hazard
process: each day a customer leaves with probability exp(baseline + effects), where the effects
are things the warehouse can observe in the sources: unresolved complaints, delivery problems,
long calls, falling satisfaction (surveys) and competitors' offers (calls about cancelling).
Purchases slow down as grievances pile up, but recency alone does not tell who will leave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from warehouse.generate.population import Population

NEVER = np.iinfo(np.int32).max
OBJECTIVES = ("acquisition", "retention", "winback", "cross_sell", "upsell")
OBJECTIVE_FACTOR = np.array([0.8, 1.0, 0.6, 1.1, 0.9])
CAMPAIGN_CHANNELS = ("email", "sms", "kakao", "direct_mail", "telemarketing", "app_push")
UNIT_COST = np.array([20, 30, 15, 900, 2500, 5])
INCIDENT_KINDS = ("delivery", "product", "billing", "service")
ATTRIBUTION_DAYS = 14


@dataclass
class Campaigns:
    start_day: np.ndarray
    plan_day: np.ndarray
    objective: np.ndarray  # index into OBJECTIVES
    channel: np.ndarray  # index into CAMPAIGN_CHANNELS
    control_share: np.ndarray
    target_share: np.ndarray
    theme: np.ndarray  # index into korean.CAMPAIGN_THEMES


@dataclass
class Events:
    """Everything that happened, as columns; expanded into source rows by behaviour.py."""

    churn_day: np.ndarray
    closed_day: np.ndarray
    n_purchases: np.ndarray
    advocate: np.ndarray
    referred_by: np.ndarray
    signup_channel: np.ndarray
    cols: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


class _Log:
    """Collects per-day arrays and concatenates them once at the end."""

    def __init__(self) -> None:
        self.parts: dict[str, dict[str, list[np.ndarray]]] = {}

    def add(self, event: str, /, **cols: np.ndarray) -> None:
        store = self.parts.setdefault(event, {k: [] for k in cols})
        for k, v in cols.items():
            store[k].append(np.asarray(v))

    def result(self, kinds: dict[str, tuple[str, ...]]) -> dict[str, dict[str, np.ndarray]]:
        out = {}
        for kind, names in kinds.items():
            store = self.parts.get(kind, {})
            out[kind] = {
                k: (np.concatenate(store[k]) if store.get(k) else np.zeros(0, dtype=np.int64)) for k in names
            }
        return out


SCHEMA = {
    "purchase": ("day", "cust", "chan", "campaign"),
    "incident": ("day", "cust", "kind", "via_call", "resolution", "long"),
    "competitor": ("day", "cust", "called"),
    "survey": ("day", "cust", "nps", "score", "touchpoint"),
    "suggestion": ("day", "cust"),
    "referral": ("day", "cust", "referred", "channel"),
    "touch": ("campaign", "cust", "control", "responds", "delivered", "opened", "clicked", "unsub"),
    "life": ("day", "cust", "kind", "city"),
}


def make_campaigns(rng: np.random.Generator, days: int) -> Campaigns:
    starts = np.arange(5, days, 11)
    starts = starts + rng.integers(0, 4, size=len(starts))
    starts = starts[starts < days]
    k = len(starts)
    objective = rng.choice(len(OBJECTIVES), size=k, p=[0.15, 0.3, 0.2, 0.2, 0.15])
    channel = rng.choice(len(CAMPAIGN_CHANNELS), size=k, p=[0.25, 0.2, 0.25, 0.08, 0.07, 0.15])
    return Campaigns(
        start_day=starts,
        plan_day=np.maximum(starts - rng.integers(3, 10, size=k), 0),
        objective=objective,
        channel=channel,
        control_share=rng.choice([0.1, 0.15, 0.2], size=k),
        target_share=rng.uniform(0.05, 0.12, size=k),
        theme=rng.integers(0, 8, size=k),
    )


def simulate(
    rng: np.random.Generator,
    pop: Population,
    camps: Campaigns,
    season: np.ndarray,
    days: int,
    n_cities: int,
    city_weights: np.ndarray,
    start_ordinal: int,
    progress=None,
) -> Events:
    n = pop.n
    log = _Log()
    churn = np.full(n, NEVER, dtype=np.int64)
    closed = np.full(n, NEVER, dtype=np.int64)
    leave_at = np.full(n, NEVER, dtype=np.int64)  # planned last day of a customer who decided to go
    sat0 = rng.beta(8, 2.5, size=n)
    sat = sat0.copy()
    griev = np.zeros(n)
    deliv = np.zeros(n)
    longc = np.zeros(n)
    comp = np.zeros(n, dtype=np.int32)
    tenure0 = np.maximum(-pop.signup_day, 0)
    n_purch = rng.poisson(pop.rate * tenure0 * 0.8).astype(np.int64)
    last_buy = np.where(n_purch > 0, -rng.integers(1, 90, size=n), -NEVER // 2).astype(np.int64)
    advocate = np.zeros(n, dtype=bool)
    opt_in = pop.opt_in.copy()
    retired = pop.occupation == "retired"
    age_days = start_ordinal - pop.birth_ord
    referred_by = np.full(n, -1, dtype=np.int64)
    claimed = np.zeros(n, dtype=bool)
    signup_channel = pop.signup_channel.copy()
    arrival_order = pop.signup_day  # sorted: ids follow signup order
    scheduled: dict[int, list[tuple[np.ndarray, np.ndarray, int]]] = {}
    camp_by_day: dict[int, list[int]] = {}
    for c, s in enumerate(camps.start_day):
        camp_by_day.setdefault(int(s), []).append(c)

    for d in range(days):
        alive_mask = (pop.signup_day <= d) & (churn == NEVER)
        idx = np.flatnonzero(alive_mask)
        m = len(idx)
        # churn first, from yesterday's state
        lin = (
            pop.log_hazard[idx]
            + 2.0 * griev[idx]
            + 0.6 * deliv[idx]
            + 0.6 * longc[idx]
            + 8.0 * (0.72 - sat[idx])
            + 2.6 * (comp[idx] > 0)
        )
        # one draw per customer and purpose, for the whole day (rare events share a row by
        # using disjoint ranges of the same uniform number)
        u = rng.random((5, m), dtype=np.float32)
        # a hazard event is a decision to leave; the customer drifts away for 3-14 weeks first
        deciding = (leave_at[idx] == NEVER) & (u[0] < np.exp(lin))
        dec = idx[deciding]
        leave_at[dec] = d + rng.integers(20, 100, len(dec))
        leave = leave_at[idx] <= d
        churn[idx[leave]] = d
        # some who leave also close the account, within three weeks
        closing = idx[leave][rng.random(int(leave.sum())) < 0.4]
        closed[closing] = d + rng.integers(0, 21, len(closing))
        idx = idx[~leave]
        u = u[1:, ~leave]
        m = len(idx)

        # purchases: rate x season, damped by grievances and by a decision to leave
        leaving = idx[leave_at[idx] != NEVER]
        lam = pop.rate[idx] * season[d] * np.exp(-0.3 * griev[idx] * pop.sensitivity[idx])
        lam = np.where(leave_at[idx] != NEVER, lam * 0.45, lam)
        # Poisson counts truncated at 2 (rates are small): P(k>=1), P(k>=2) from one uniform
        p1 = -np.expm1(-lam)
        p2 = p1 - lam * np.exp(-lam)
        k = (u[0] < p1).astype(np.int64) + (u[0] < p2)
        buyers = np.repeat(idx, k)
        chan = np.where(rng.random(len(buyers)) < 0.8, pop.pref[buyers], rng.integers(0, 3, size=len(buyers)))
        camp = np.full(len(buyers), -1)
        for cust, ch, c in scheduled.pop(d, []):
            ok = churn[cust] == NEVER
            buyers = np.concatenate([buyers, cust[ok]])
            chan = np.concatenate([chan, ch[ok]])
            camp = np.concatenate([camp, np.full(int(ok.sum()), c)])
        log.add("purchase", day=np.full(len(buyers), d), cust=buyers, chan=chan, campaign=camp)
        np.add.at(n_purch, buyers, 1)
        last_buy[buyers] = d

        # service failures: deliveries go wrong, products break, bills are wrong, staff are rude
        p_inc = np.where(chan > 0, 0.08, 0.02) + 0.006
        inc_from_buy = rng.random(len(buyers)) < p_inc
        inc_cust = buyers[inc_from_buy]
        inc_kind = np.where(chan[inc_from_buy] > 0, np.where(rng.random(len(inc_cust)) < 0.85, 0, 2), 1)
        spont = idx[u[1] < 1 / 450]
        inc_cust = np.concatenate([inc_cust, spont])
        inc_kind = np.concatenate([inc_kind, np.full(len(spont), 3)])
        q = len(inc_cust)
        via_call = rng.random(q) < 0.72
        res = rng.choice(3, size=q, p=[0.62, 0.25, 0.13])
        is_long = rng.random(q) < np.where(res > 0, 0.45, 0.12)
        log.add(
            "incident",
            day=np.full(q, d),
            cust=inc_cust,
            kind=inc_kind,
            via_call=via_call,
            resolution=res,
            long=is_long,
        )
        sens = pop.sensitivity[inc_cust]
        np.add.at(griev, inc_cust, sens * np.where(res > 0, 1.0, 0.25))
        np.add.at(deliv, inc_cust, (inc_kind == 0).astype(float))
        np.add.at(longc, inc_cust, is_long.astype(float))
        np.subtract.at(sat, inc_cust, 0.03 + 0.07 * (res > 0))

        # competitors' offers: some customers call to ask how to cancel
        offered = idx[u[1] > 1 - 1 / 500]
        comp[offered] = 75
        log.add(
            "competitor", day=np.full(len(offered), d), cust=offered, called=rng.random(len(offered)) < 0.6
        )

        # customers on their way out ask about cancelling and sour on the brand
        asks = leaving[rng.random(len(leaving)) < 1 / 35]
        log.add("competitor", day=np.full(len(asks), d), cust=asks, called=np.ones(len(asks), dtype=bool))
        sat[leaving] -= 0.002

        # surveys after purchases and service contacts; NPS 9-10 makes an advocate
        s_buy = buyers[rng.random(len(buyers)) < 0.1]
        s_tp = np.where(pop.pref[s_buy] == 0, 0, 1)
        s_inc = inc_cust[rng.random(q) < 0.15]
        s_cust = np.concatenate([s_buy, s_inc])
        s_tp = np.concatenate([s_tp, np.full(len(s_inc), 2)])
        nps = rng.random(len(s_cust)) < 0.6
        sv = np.clip(sat[s_cust], 0, 1)
        score = np.where(
            nps,
            np.clip(np.round(10 * sv + rng.normal(0.8, 1.2, size=len(s_cust))), 0, 10),
            np.clip(np.round(1 + 4 * sv + rng.normal(0.2, 0.6, size=len(s_cust))), 1, 5),
        ).astype(int)
        log.add("survey", day=np.full(len(s_cust), d), cust=s_cust, nps=nps, score=score, touchpoint=s_tp)
        advocate[s_cust[nps & (score >= 9)]] = True

        # referrals from satisfied repeat buyers; some referred friends sign up within 30 days
        refs = idx[u[3] < 0.0025]
        refs = refs[(n_purch[refs] >= 3) & (sat[refs] > 0.78) & (d - last_buy[refs] < 120)]
        referred = np.full(len(refs), -1)
        if len(refs):
            lo, hi = np.searchsorted(arrival_order, [d + 1, d + 31])
            pool = np.arange(lo, hi)
            pool = pool[~claimed[pool]]
            convert = np.flatnonzero(rng.random(len(refs)) < 0.45)[: len(pool)]
            chosen = rng.permutation(pool)[: len(convert)]
            referred[convert] = chosen
            claimed[chosen] = True
            referred_by[chosen] = refs[convert]
            signup_channel[chosen] = "referral"
            advocate[refs] = True
        log.add(
            "referral",
            day=np.full(len(refs), d),
            cust=refs,
            referred=referred,
            channel=rng.integers(0, 5, size=len(refs)),
        )

        # advocates of two years' standing take part: suggestions, co-creation surveys
        part = idx[u[3] > 1 - 0.004]
        part = part[advocate[part] & (d - pop.signup_day[part] >= 700)]
        log.add("suggestion", day=np.full(len(part), d), cust=part)

        # campaigns starting today: random treatment/control, a latent subset truly responds
        for c in camp_by_day.get(d, []):
            _campaign_day(
                rng,
                c,
                d,
                camps,
                pop,
                churn,
                closed,
                leave_at,
                n_purch,
                last_buy,
                opt_in,
                griev,
                sat,
                scheduled,
                log,
                days,
            )

        # life events: moves and retirements
        movers = idx[u[2] < 0.0003]
        log.add(
            "life",
            day=np.full(len(movers), d),
            cust=movers,
            kind=np.zeros(len(movers), dtype=int),
            city=rng.choice(n_cities, size=len(movers), p=city_weights),
        )
        ret = idx[u[2] > 1 - 0.0007]
        ret = ret[(~retired[ret]) & (age_days[ret] + d > 58 * 365)]
        retired[ret] = True
        log.add(
            "life",
            day=np.full(len(ret), d),
            cust=ret,
            kind=np.ones(len(ret), dtype=int),
            city=np.full(len(ret), -1),
        )

        # grievances fade slowly (half-lives of about four and two and a half months)
        griev *= 0.994
        deliv *= 0.99
        longc *= 0.99
        sat += (sat0 - sat) * 0.004
        np.subtract(comp, 1, out=comp, where=comp > 0)
        if progress is not None:
            progress(1)

    closed[closed >= days] = NEVER
    cols = log.result(SCHEMA)
    return Events(
        churn_day=churn,
        closed_day=closed,
        n_purchases=n_purch,
        advocate=advocate,
        referred_by=referred_by,
        signup_channel=signup_channel,
        cols=cols,
    )


def _campaign_day(
    rng,
    c,
    d,
    camps,
    pop,
    churn,
    closed,
    leave_at,
    n_purch,
    last_buy,
    opt_in,
    griev,
    sat,
    scheduled,
    log,
    days,
) -> None:
    signed = pop.signup_day <= d
    open_acct = signed & opt_in & (closed > d)
    alive = churn == NEVER
    obj = camps.objective[c]
    if obj == 0:  # acquisition: members who never bought
        elig = open_acct & alive & (n_purch == 0)
    elif obj == 1:  # retention: recent buyers
        elig = open_acct & alive & (d - last_buy <= 90)
    elif obj == 2:  # winback: lapsed members (some have truly left)
        elig = open_acct & (d - last_buy > 60) & (n_purch > 0)
    else:  # cross-sell / upsell: repeat buyers
        elig = open_acct & alive & (n_purch >= 2)
    cand = np.flatnonzero(elig)
    size = min(len(cand), max(10, int(len(cand) * camps.target_share[c])))
    if size == 0:
        return
    cust = np.sort(rng.choice(cand, size=size, replace=False))
    control = rng.random(size) < camps.control_share[c]
    responds = (rng.random(size) < pop.respond[cust] * OBJECTIVE_FACTOR[obj]) & alive[cust]
    delivered = ~control & (rng.random(size) < 0.96)
    # customers who have left ignore the message: no opens, clicks or unsubscribes
    opened = delivered & alive[cust] & (rng.random(size) < np.where(responds, 0.75, 0.3))
    clicked = opened & (rng.random(size) < np.where(responds, 0.6, 0.12))
    unsub = opened & (rng.random(size) < 0.004)
    opt_in[cust[unsub]] = False
    log.add(
        "touch",
        campaign=np.full(size, c),
        cust=cust,
        control=control,
        responds=responds,
        delivered=delivered,
        opened=opened,
        clicked=clicked,
        unsub=unsub,
    )
    log.add(
        "life",
        day=np.full(int(unsub.sum()), d),
        cust=cust[unsub],
        kind=np.full(int(unsub.sum()), 2),
        city=np.full(int(unsub.sum()), -1),
    )
    conv = delivered & responds & (rng.random(size) < 0.85)
    when = d + rng.integers(0, ATTRIBUTION_DAYS, size=int(conv.sum()))
    chan = np.where(
        camps.channel[c] in (0, 1, 2, 5),
        np.where(pop.pref[cust[conv]] == 0, 1, pop.pref[cust[conv]]),
        pop.pref[cust[conv]],
    )
    for w in np.unique(when):
        if w < days:
            sel = when == w
            scheduled.setdefault(int(w), []).append((cust[conv][sel], chan[sel], c))
    if obj in (1, 2):
        treated = cust[delivered & responds]
        griev[treated] *= 0.5
        # a retention offer wins back half of those who had decided to leave
        wavering = treated[(leave_at[treated] != NEVER) & (rng.random(len(treated)) < 0.5)]
        leave_at[wavering] = NEVER
        sat[treated] = np.minimum(sat[treated] + 0.05, 1.0)
