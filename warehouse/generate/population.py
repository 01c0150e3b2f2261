"""Who the customers are: demographics, signup over time, and the latent traits behind them.

Each customer carries hidden traits the warehouse never sees directly: a purchase rate and a
basket size (heavy-tailed, so a few customers bring most of the profit), a propensity to
respond to campaigns, a baseline churn hazard and a sensitivity to service failures. The daily
simulation (simulate.py) turns them into behaviour; truth.py writes them out for evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from warehouse.generate import korean
from warehouse.generate.catalog import Catalog

MARGIN = 0.35  # average gross margin used to express latent value as profit


@dataclass
class Population:
    n: int
    signup_day: np.ndarray  # day index; negative = signed up before the window
    birth_ord: np.ndarray  # date ordinal of the birth date
    gender: np.ndarray
    household: np.ndarray
    income: np.ndarray
    education: np.ndarray
    occupation: np.ndarray  # object; retirements overwrite it in versions
    region: np.ndarray  # region index at signup
    city: np.ndarray  # city index at signup
    signup_channel: np.ndarray  # object; referral conversions overwrite it
    opt_in: np.ndarray  # bool at signup
    pref: np.ndarray  # 0 store, 1 web, 2 app
    home_store: np.ndarray
    rate: np.ndarray  # purchases per day at season factor 1
    spend: np.ndarray  # mean basket value (KRW)
    respond: np.ndarray  # probability of truly responding to a campaign
    log_hazard: np.ndarray  # baseline daily churn log-hazard
    sensitivity: np.ndarray  # how much service failures move this customer
    credit: np.ndarray  # latent credit grade 1-10
    name: np.ndarray
    phone_num: np.ndarray  # 8 digits after 010
    email_user: np.ndarray

    @property
    def latent_value(self) -> np.ndarray:
        """Expected annual profit (KRW) if the customer never churned."""
        return self.rate * 365 * self.spend * MARGIN


def make_population(
    rng: np.random.Generator, n: int, days: int, start_ordinal: int, catalog: Catalog, season: np.ndarray
) -> Population:
    pre = rng.random(n) < 0.55
    n_pre = int(pre.sum())
    pre_days = np.sort(-rng.integers(1, 1096, size=n_pre))
    w = season / season.sum() if days else None
    arr_days = np.sort(rng.choice(days, size=n - n_pre, p=w)) if days else np.zeros(0, dtype=int)
    signup = np.concatenate([pre_days, arr_days]).astype(int)  # ids follow signup order

    age = np.clip(rng.normal(44, 14, size=n), 19, 85)
    birth = (start_ordinal - age * 365.25).astype(int)
    gender = rng.choice(np.array(["M", "F", "U"], dtype=object), size=n, p=[0.46, 0.51, 0.03])
    household = np.clip(rng.poisson(1.6, size=n) + 1, 1, 8)
    inc_idx = np.clip(np.round(rng.normal(1.6 + (age - 44) / 40, 1.1, size=n)), 0, 4).astype(int)
    income = np.array(korean.INCOME_BANDS, dtype=object)[inc_idx]
    education = rng.choice(np.array(korean.EDUCATION, dtype=object), size=n, p=[0.25, 0.2, 0.42, 0.13])
    occ = rng.choice(
        np.array(korean.OCCUPATIONS, dtype=object), size=n, p=[0.38, 0.14, 0.12, 0.07, 0.05, 0.12, 0.04, 0.08]
    )
    occ = np.where(age < 24, np.where(rng.random(n) < 0.6, "student", occ), occ)
    occ = np.where(age >= 63, np.where(rng.random(n) < 0.7, "retired", occ), occ)
    occ = np.where((age < 55) & (occ == "retired"), "other", occ).astype(object)

    # Customers live near a store most of the time: region from the store's region mix.
    home_store = rng.integers(0, catalog.n_stores, size=n)
    home_store = np.where(catalog.store_opened[home_store] > signup, 0, home_store)
    near = rng.random(n) < 0.8
    rand_city = rng.choice(len(korean.CITY_NAMES), size=n, p=_city_weights())
    city = np.where(near, catalog.store_city[home_store], rand_city)
    region = korean.CITY_REGION[city]

    channel = rng.choice(
        np.array(korean.SIGNUP_CHANNELS, dtype=object), size=n, p=[0.45, 0.22, 0.2, 0.06, 0.07]
    )
    young = age < 40
    p_online = np.where(young, 0.6, 0.3)
    online = rng.random(n) < p_online
    pref = np.where(online, np.where(rng.random(n) < np.where(young, 0.6, 0.35), 2, 1), 0)
    pref = np.where(channel == "store", np.where(rng.random(n) < 0.7, 0, pref), pref)
    pref = np.where(channel == "app", 2, np.where(channel == "web", 1, pref))

    # Heavy tails: a gamma purchase rate times a lognormal basket; some prospects never buy.
    rate = rng.gamma(0.5, (1 / 45) / 0.5, size=n)
    rate = np.where(rng.random(n) < 0.07, 0.0, rate)
    spend = 28000 * np.exp(0.18 * (inc_idx - 2)) * rng.lognormal(0, 0.8, size=n)
    respond = rng.beta(1.3, 6.0, size=n)
    log_hazard = np.log(1 / 7000) + rng.normal(0, 0.4, size=n)
    sensitivity = rng.lognormal(0, 0.35, size=n)
    credit = np.clip(np.round(rng.normal(4.2 - 0.5 * (inc_idx - 2), 1.8, size=n)), 1, 10).astype(int)

    names = korean.name_pool(int(rng.integers(1 << 30)))
    name = names[rng.integers(0, len(names), size=n)]
    # Unique phone numbers: an affine map of the index modulo 10^8 is a bijection.
    phone_num = (np.arange(n, dtype=np.int64) * 7_919_113 + 38_271_645) % 100_000_000
    users = np.array(
        ["kim", "lee", "park", "choi", "jung", "kang", "cho", "yoon", "jang", "lim", "han", "seo"]
    )
    email_user = users[rng.integers(0, len(users), size=n)]
    return Population(
        n=n,
        signup_day=signup,
        birth_ord=birth,
        gender=gender,
        household=household,
        income=income,
        education=education,
        occupation=occ,
        region=region,
        city=city,
        signup_channel=channel,
        opt_in=rng.random(n) < 0.72,
        pref=pref.astype(int),
        home_store=home_store,
        rate=rate,
        spend=spend,
        respond=respond,
        log_hazard=log_hazard,
        sensitivity=sensitivity,
        credit=credit,
        name=name,
        phone_num=phone_num,
        email_user=email_user,
    )


def _city_weights() -> np.ndarray:
    counts = np.bincount(korean.CITY_REGION)
    w = korean.REGION_WEIGHTS[korean.CITY_REGION] / counts[korean.CITY_REGION]
    return w / w.sum()
