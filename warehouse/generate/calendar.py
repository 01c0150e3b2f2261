"""Korean retail seasonality: weekly cycle, Seollal, Chuseok, year-end and autumn sales.

The multipliers scale every customer's purchase rate on a day; they are data, not logic, so a
reader can see at a glance why a January week in 2025 sells more than a March one.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

# Lunar New Year's Day and Chuseok (15th of the 8th lunar month); the holiday spans day -1..+1.
SEOLLAL = ("2022-02-01", "2023-01-22", "2024-02-10", "2025-01-29", "2026-02-17", "2027-02-07", "2028-01-27")
CHUSEOK = ("2022-09-10", "2023-09-29", "2024-09-17", "2025-10-06", "2026-09-25", "2027-09-15", "2028-10-03")
# Monday=0 .. Sunday=6.
WEEKDAY_FACTOR = np.array([0.88, 0.9, 0.92, 0.95, 1.08, 1.25, 1.12])


def day_dates(start: date, days: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(days)]


def season_factor(start: date, days: int) -> np.ndarray:
    """Purchase-rate multiplier per day (mean about 1)."""
    dates = day_dates(start, days)
    f = np.array([WEEKDAY_FACTOR[d.weekday()] for d in dates])
    ordinals = np.array([d.toordinal() for d in dates])
    for holiday in SEOLLAL + CHUSEOK:
        h = date.fromisoformat(holiday).toordinal()
        before = (ordinals >= h - 14) & (ordinals < h - 1)  # gift shopping
        during = (ordinals >= h - 1) & (ordinals <= h + 1)  # families travel, stores quiet
        f = np.where(before, f * 1.8, f)
        f = np.where(during, f * 0.55, f)
    months = np.array([d.month for d in dates])
    dom = np.array([d.day for d in dates])
    f = np.where((months == 12) & (dom >= 10), f * 1.6, f)  # year-end
    f = np.where((months == 11) & (dom <= 15), f * 1.15, f)  # Korea Sale Festa
    f = np.where((months == 2) & (dom >= 20) | (months == 3) & (dom <= 5), f * 1.1, f)  # new school year
    return f / f.mean() if days > 0 else f


def is_holiday(start: date, days: int) -> np.ndarray:
    ordinals = np.array([(start + timedelta(days=i)).toordinal() for i in range(days)])
    out = np.zeros(days, dtype=bool)
    for holiday in SEOLLAL + CHUSEOK:
        h = date.fromisoformat(holiday).toordinal()
        out |= (ordinals >= h - 1) & (ordinals <= h + 1)
    return out


def epoch_seconds(d: date) -> int:
    """Seconds since 1970-01-01 of local midnight (local times are stored zone-less)."""
    return (d.toordinal() - date(1970, 1, 1).toordinal()) * 86400


def time_of_day(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    """Seconds after midnight: stores 10-21h peaking late afternoon, online peaking at night."""
    if kind == "store":
        hours = np.arange(10, 21)
        w = np.array([3, 5, 7, 6, 6, 7, 8, 9, 9, 7, 4], dtype=float)
    elif kind == "office":
        hours = np.arange(9, 18)
        w = np.array([6, 9, 9, 6, 8, 9, 8, 7, 5], dtype=float)
    else:
        hours = np.arange(24)
        w = np.array([3, 2, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 7, 6, 5, 5, 5, 6, 7, 8, 10, 11, 10, 6], dtype=float)
    h = rng.choice(hours, size=n, p=w / w.sum())
    return h * 3600 + rng.integers(0, 3600, size=n)
