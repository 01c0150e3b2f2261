"""A killed ingest leaves no partial file behind, and the next run loads it.

The child process ingests the hand-made landing; when it reaches the commit of its third file
(rows and quarantine entries already inserted in the open transaction) it signals the test and
waits; the test then sends it SIGKILL. DuckDB must recover to the two committed files only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from warehouse.ingest import ingest

DATA = Path(__file__).parent / "data" / "ingest"

CHILD = r"""
import sys, time
from pathlib import Path
import warehouse.ingest as ing

warehouse, landing, marker = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
real_connect = ing.connect
commits = []


class Connection:
    # Delegates to DuckDB; on the third commit it announces itself and hangs until killed.
    def __init__(self, con):
        self._con = con

    def __getattr__(self, name):
        return getattr(self._con, name)

    def commit(self):
        commits.append(1)
        if len(commits) == 3:
            marker.write_text("in transaction")
            time.sleep(600)
        return self._con.commit()


ing.connect = lambda path: Connection(real_connect(path))
ing.ingest(warehouse, landing, run_id="killed")
"""

COUNTS = """select (select count(*) from raw._files), (select count(*) from raw._quarantine),
    (select count(*) from raw.customers), (select count(*) from raw.call_center),
    (select count(*) from raw.online_orders), (select count(*) from raw.online_order_lines),
    (select count(*) from raw.pos_sales), (select count(*) from raw.web_events)"""


def test_sigkill_mid_file_leaves_no_partial_file_and_rerun_completes(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(DATA / "landing", landing)
    warehouse = tmp_path / "build.duckdb"
    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(warehouse), str(landing), str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the child ingest ended before reaching its third commit"
            assert time.monotonic() < deadline, "the child ingest never reached its third commit"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    # Files are loaded in (dt, source, name) order: call_center and customers committed; the third,
    # online_orders, had its rows inserted but not committed.
    with duckdb.connect(str(warehouse)) as con:
        paths = [r[0] for r in con.execute("select path from raw._files order by file_id").fetchall()]
        assert paths == [
            "call_center/dt=2024-01-01/call_center_20240101.csv",
            "customers/dt=2024-01-01/customers_20240101.csv",
        ]
        assert con.execute("select count(*) from raw.online_orders").fetchone() == (0,)
        assert con.execute("select count(*) from raw.online_order_lines").fetchone() == (0,)
        assert con.execute(
            "select count(*) from raw._quarantine where source = 'online_orders'"
        ).fetchone() == (0,)

    rerun = ingest(warehouse, landing, run_id="rerun")
    statuses = {f["path"]: f["status"] for f in rerun["files"]}
    assert statuses["call_center/dt=2024-01-01/call_center_20240101.csv"] == "skipped"
    assert statuses["online_orders/dt=2024-01-01/online_orders_20240101.jsonl"] == "loaded"

    reference = tmp_path / "reference.duckdb"
    ingest(reference, landing)
    with duckdb.connect(str(warehouse)) as a, duckdb.connect(str(reference)) as b:
        assert a.execute(COUNTS).fetchone() == b.execute(COUNTS).fetchone()
