"""Synthetic source systems: a landing zone in the exact formats of SOURCES.md, plus the truth.

``from warehouse.generate import generate``; the heavy modules load on first call, so importing
the package (and ``crmwh --help``) stays fast.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path


def generate(
    out: Path,
    customers: int,
    start: date,
    days: int,
    seed: int = 42,
    clean: bool = False,
    progress: bool = False,
    mess_scale: float = 1.0,
) -> dict:
    """Write ``out/landing``, ``out/truth`` and ``out/superseded``; return rows/files per source."""
    from warehouse.generate.run import generate as _generate

    return _generate(
        out, customers, start, days, seed=seed, clean=clean, progress=progress, mess_scale=mess_scale
    )


__all__ = ["generate"]
