"""The hidden truth beside the landing zone: what a perfect model would know.

``truth/`` is never read by the pipeline; tests and model evaluations compare against it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

from warehouse.config import Settings
from warehouse.generate.common import NEVER, World
from warehouse.generate.population import MARGIN
from warehouse.generate.simulate import OBJECTIVES

PREF = np.array(["store", "web", "app"], dtype=object)


def true_stage(w: World) -> np.ndarray:
    """Relationship stage on the last day, by MARTS.md's rules applied to what truly happened."""
    defaults = Settings.__dataclass_fields__
    min_12m = defaults["client_min_purchases_12m"].default
    min_nps = defaults["advocate_min_nps"].default
    tenure = defaults["partner_min_tenure_days"].default
    pop, ev = w.pop, w.ev
    p = ev.cols["purchase"]
    recent = p["day"] >= w.days - 365
    n12 = np.bincount(p["cust"][recent], minlength=pop.n)
    ever = ev.n_purchases > 0
    s = ev.cols["survey"]
    promoter = np.zeros(pop.n, bool)
    promoter[s["cust"][s["nps"].astype(bool) & (s["score"] >= min_nps)]] = True
    referrer = np.zeros(pop.n, bool)
    referrer[ev.cols["referral"]["cust"]] = True
    suggested = np.zeros(pop.n, bool)
    suggested[ev.cols["suggestion"]["cust"]] = True
    client = ever & (n12 >= min_12m)
    advocate = client & (promoter | referrer)
    partner = advocate & suggested & (w.days - 1 - pop.signup_day >= tenure)
    stage = np.where(ever, "customer", "prospect").astype(object)
    stage[client] = "client"
    stage[advocate] = "advocate"
    stage[partner] = "partner"
    return stage


def _date(w: World, day: np.ndarray) -> list[str]:
    return [
        (w.start.fromordinal(w.start.toordinal() + int(d))).isoformat() if d != NEVER else "" for d in day
    ]


def write_truth(out: Path, w: World, written, summary: dict) -> None:
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    pop, ev = w.pop, w.ev
    ids = [f"C{i + 1:07d}" for i in range(pop.n)]
    referred_by = [f"C{r + 1:07d}" if r >= 0 else "" for r in ev.referred_by]
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": _date(w, pop.signup_day),
            "signup_channel": ev.signup_channel,
            "preferred_channel": PREF[pop.pref],
            "latent_value": np.round(pop.latent_value).astype(np.int64),
            "purchase_rate_per_year": np.round(pop.rate * 365, 3),
            "mean_basket_krw": np.round(pop.spend).astype(np.int64),
            "respond_propensity": np.round(pop.respond, 4),
            "true_churn_date": _date(w, ev.churn_day),
            "closed_at": _date(w, ev.closed_day),
            "true_stage": true_stage(w),
            "referred_by": referred_by,
            "purchases_in_window": np.bincount(ev.cols["purchase"]["cust"], minlength=pop.n),
        }
    )
    frame.to_csv(truth / "customers.csv", index=False, lineterminator="\n")
    t = ev.cols["touch"]
    order = np.lexsort((t["cust"], t["campaign"]))
    pd.DataFrame(
        {
            "campaign_id": [f"CMP{c + 1:04d}" for c in t["campaign"][order]],
            "customer_id": [f"C{c + 1:07d}" for c in t["cust"][order]],
            "objective": [OBJECTIVES[w.camps.objective[c]] for c in t["campaign"][order]],
            "assigned_group": np.where(t["control"][order].astype(bool), "control", "treatment"),
            "responds": t["responds"][order].astype(bool),
        }
    ).to_csv(truth / "campaign_response.csv", index=False, lineterminator="\n")
    _rows(truth / "mess.csv", ["source", "path", "line", "kind"], written.mess)
    _rows(truth / "redeliveries.csv", ["source", "path", "kind", "rows_changed"], written.redeliveries)
    _rows(truth / "files.csv", ["source", "path", "dt", "rows", "bytes"], written.files)
    value = np.sort(pop.latent_value)[::-1]
    top = value[: max(1, pop.n // 10)].sum() / max(value.sum(), 1)
    churned = int((ev.churn_day != NEVER).sum())
    summary.update(
        {
            "churned_customers": churned,
            "closed_accounts": int((ev.closed_day != NEVER).sum()),
            "top_decile_latent_value_share": round(float(top), 3),
            "margin_assumed": MARGIN,
            "campaign_touches": len(t["cust"]),
            "responders_treated": int((t["responds"].astype(bool) & ~t["control"].astype(bool)).sum()),
            "mess_items": len(written.mess),
            "redelivered_files": len(written.redeliveries),
        }
    )
    (truth / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")


def _rows(path: Path, header: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        writer.writeheader()

        def key(r: dict) -> tuple:
            return tuple(-1 if r[h] is None else r[h] if isinstance(r[h], int) else str(r[h]) for h in header)

        for r in sorted(rows, key=key):
            writer.writerow({h: ("" if r[h] is None else r[h]) for h in header})
