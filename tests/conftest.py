"""Session fixtures shared by every test module: small generated landing zones.

``landing_clean`` and ``landing_messy`` return the ``out`` folder of a generated set (about 300
customers, 60 days from 2024-01-01, seed 7): ``out/landing`` holds the files, ``out/truth`` the
truth (``mess.csv`` lists every injected defect), ``out/superseded`` the first, wrong versions
of re-delivered files. The messy set uses five times the default defect rates so every kind of
defect occurs at least once. Treat both as read-only: copy before modifying.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

FIXTURE_CUSTOMERS = 300
FIXTURE_START = date(2024, 1, 1)
FIXTURE_DAYS = 60
FIXTURE_SEED = 7
FIXTURE_MESS_SCALE = 5.0


@pytest.fixture(scope="session")
def landing_clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from warehouse.generate import generate

    out = tmp_path_factory.mktemp("gen_clean")
    generate(out, FIXTURE_CUSTOMERS, FIXTURE_START, FIXTURE_DAYS, seed=FIXTURE_SEED, clean=True)
    return out


@pytest.fixture(scope="session")
def landing_messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from warehouse.generate import generate

    out = tmp_path_factory.mktemp("gen_messy")
    generate(
        out, FIXTURE_CUSTOMERS, FIXTURE_START, FIXTURE_DAYS, seed=FIXTURE_SEED, mess_scale=FIXTURE_MESS_SCALE
    )
    return out
