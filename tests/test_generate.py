"""The generator writes every source exactly as SOURCES.md declares, deterministically, with
truth that agrees with the data and defects that reconcile line by line with truth/mess.csv."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import date, datetime
from pathlib import Path

import pytest

from warehouse.contracts import SOURCES, Source, delivery_date
from warehouse.generate import generate, writers
from warehouse.generate.mess import MessRates, range_columns

# as in conftest.py
FIXTURE_START = date(2024, 1, 1)
FIXTURE_DAYS = 60
FIXTURE_MESS_SCALE = 5.0
NUMERIC = ("INTEGER", "BIGINT", "DOUBLE")
ISO_SOURCES = ("online_orders", "web_events")


def _parse_ts(src: Source, col: str, value: str) -> datetime:
    if col in src.time_formats:
        return datetime.strptime(value, src.time_formats[col])
    if src.name in ISO_SOURCES:
        if not value.endswith("+09:00"):
            raise ValueError(f"{value} lacks +09:00")
        return datetime.fromisoformat(value)
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")


def _check_value(src: Source, col: str, typ: str, value) -> str | None:
    """None when the value fits the contract; else the defect kind a loader would report."""
    if value is None or value == "":
        return "malformed:missing_key" if col in src.key else None
    if typ in NUMERIC:
        if isinstance(value, str) and src.format == "jsonl":
            return "malformed:non_numeric"
        try:
            number = float(value) if typ == "DOUBLE" else int(value)
        except (TypeError, ValueError):
            return "malformed:non_numeric"
        if col in src.ranges:
            lo, hi = src.ranges[col]
            if not lo <= number <= hi:
                return f"out_of_range:{col}"
    elif typ == "DATE":
        date.fromisoformat(value)
    elif typ == "TIMESTAMP":
        _parse_ts(src, col, value)
    elif col in src.enums and value not in src.enums[col]:
        return "malformed:unknown_enum"
    return None


def _check_record(src: Source, values: dict, skus: set[str]) -> str | None:
    for col, typ in src.columns:
        if typ.startswith("STRUCT"):
            v = values.get(col)
            if not (isinstance(v, dict) and set(v) == {"method", "installment_months"}):
                return "malformed:struct"
            continue
        problem = _check_value(src, col, typ, values.get(col))
        if problem:
            return problem
    for nested in src.nested:
        for line in values.get(nested.field) or []:
            if set(line) != {c for c, _ in nested.columns}:
                return "malformed:nested"
            if line["sku"] not in skus:
                return "unknown_sku"
    if "sku" in values and values["sku"] not in skus:
        return "unknown_sku"
    return None


def _lines(path: Path, src: Source) -> list[tuple[int, str | None, object]]:
    """(line number, defect or None, parsed record) for every data line of a landed file."""
    text = path.read_bytes().decode(src.encoding)
    out = []
    if src.format == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == list(src.column_names), f"{path}: header {rows[0]}"
        for i, row in enumerate(rows[1:], start=2):
            if len(row) != len(src.columns):
                out.append((i, "malformed:field_count", row))
                continue
            out.append((i, None, dict(zip(src.column_names, row, strict=True))))
    else:
        for i, line in enumerate(text.split("\n")[:-1], start=1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                out.append((i, "malformed:broken_json", line))
                continue
            missing = set(src.column_names) - set(obj)
            if src.key[0] in missing:
                out.append((i, "malformed:missing_key", obj))
                continue
            expected = set(src.column_names) | {n.field for n in src.nested}
            assert set(obj) == expected, f"{path}:{i}: keys {sorted(obj)}"
            out.append((i, None, obj))
    return out


def _scan(out: Path) -> dict[tuple[str, int], str]:
    """Every defect the contract can see, keyed by (path relative to landing, line)."""
    landing = out / "landing"
    skus = set()
    for f in sorted((landing / "products").glob("*/*.csv")):
        skus |= {r["sku"] for r in csv.DictReader(io.StringIO(f.read_text("utf-8")))}
    found: dict[tuple[str, int], str] = {}
    for name, src in SOURCES.items():
        for path in sorted((landing / name).glob("dt=*/*")):
            rel = path.relative_to(landing).as_posix()
            for line, problem, record in _lines(path, src):
                if problem is None:
                    problem = _check_record(src, record, skus)
                if problem:
                    found[(rel, line)] = problem
    return found


def _mess(out: Path) -> list[dict]:
    with (out / "truth" / "mess.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_clean_set_every_line_parses_with_its_contract(landing_clean: Path) -> None:
    landing = landing_clean / "landing"
    assert sorted(p.name for p in landing.iterdir()) == sorted(SOURCES)
    assert _scan(landing_clean) == {}
    assert _mess(landing_clean) == []
    assert not (landing_clean / "superseded").exists()
    # daily sources have one dt= folder per day; POS one file per open store per day
    for name in ("customers", "online_orders", "web_events", "call_center", "voc", "loyalty_points"):
        assert len(list((landing / name).glob("dt=*"))) == FIXTURE_DAYS
    pos = list((landing / "pos_sales").glob("dt=*/pos_S*_*.csv"))
    assert {p.parent.name for p in pos} == {
        f"dt={date.fromordinal(FIXTURE_START.toordinal() + i)}" for i in range(FIXTURE_DAYS)
    }
    for p in pos:
        store, day = re.fullmatch(r"pos_(S\d{3})_(\d{8})\.csv", p.name).groups()
        assert p.parent.name == f"dt={datetime.strptime(day, '%Y%m%d').date()}"


def test_pos_is_cp949_and_korean_text_is_utf8(landing_clean: Path) -> None:
    landing = landing_clean / "landing"
    for p in (landing / "pos_sales").glob("*/*.csv"):
        p.read_bytes().decode("cp949")
    names = [
        r["name"]
        for f in (landing / "customers").glob("*/*.csv")
        for r in csv.DictReader(f.open(encoding="utf-8"))
    ]
    assert all(re.fullmatch(r"[가-힣]{2,4}", n) for n in names)
    summaries = [
        r["summary"]
        for f in (landing / "call_center").glob("*/*.csv")
        for r in csv.DictReader(f.open(encoding="utf-8"))
    ]
    assert summaries and all(re.search(r"[가-힣]", s) for s in summaries)


def _rows(out: Path, source: str) -> list[dict]:
    src = SOURCES[source]
    rows = []
    for path in sorted((out / "landing" / source).glob("dt=*/*")):
        for _, problem, record in _lines(path, src):
            if problem is None:
                rows.append(record | {"_dt": delivery_date(path)})
    return rows


@pytest.fixture(scope="module")
def long_clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough for customers to decide to leave, drift away, churn and close accounts."""
    out = tmp_path_factory.mktemp("gen_long")
    generate(out, 400, date(2024, 1, 1), 240, seed=11, clean=True)
    return out


def test_truth_agrees_with_the_data(long_clean: Path) -> None:
    landing_clean = long_clean
    truth = {r["customer_id"]: r for r in csv.DictReader((landing_clean / "truth" / "customers.csv").open())}
    delta = _rows(landing_clean, "customers")
    assert {r["customer_id"] for r in delta} == set(truth)
    churn = {c: date.fromisoformat(r["true_churn_date"]) for c, r in truth.items() if r["true_churn_date"]}
    assert len(churn) >= 10, "customers churn within 240 days"
    events = [
        ("pos_sales", "sold_at"),
        ("online_orders", "ordered_at"),
        ("call_center", "started_at"),
        ("voc", "received_at"),
        ("surveys", "responded_at"),
        ("web_events", "ts"),
        ("sales_activities", "ts"),
    ]
    checked = 0
    for source, col in events:
        src = SOURCES[source]
        for r in _rows(landing_clean, source):
            c = r.get("customer_id")
            if c:
                assert c in truth, f"{source}: unknown customer {c}"
            if c in churn:
                checked += 1
                assert _parse_ts(src, col, r[col]).date() < churn[c], f"{source} {r} after churn {churn[c]}"
    assert checked > 0
    referrals = _rows(landing_clean, "referrals")
    assert referrals
    for r in referrals:
        assert r["referrer_customer_id"] in truth
        if r["referred_customer_id"]:
            assert truth[r["referred_customer_id"]]["signup_channel"] == "referral"
            assert truth[r["referred_customer_id"]]["referred_by"] == r["referrer_customer_id"]
    # closed accounts appear as a closed version in the delta, on the truth's date
    closed = {r["customer_id"]: r["closed_at"] for r in delta if r["status"] == "closed"}
    assert closed == {c: r["closed_at"] for c, r in truth.items() if r["closed_at"]}


def test_identity_gaps_are_present_and_resolvable(landing_clean: Path) -> None:
    phones = {r["phone"]: r["customer_id"] for r in _rows(landing_clean, "customers")}
    calls = _rows(landing_clean, "call_center")
    by_phone = [c for c in calls if not c["customer_id"] and c["caller_phone"] in phones]
    assert by_phone and any(c["customer_id"] for c in calls)
    events = _rows(landing_clean, "web_events")
    sessions: dict[str, list[dict]] = {}
    for e in events:
        sessions.setdefault(e["session_id"], []).append(e)
    logged = 0
    for evs in sessions.values():
        evs.sort(key=lambda e: e["event_id"])
        seen_login = False
        for e in evs:
            seen_login |= e["event_type"] == "login"
            assert (e["customer_id"] is not None) == seen_login, e
        logged += seen_login
    assert 0 < logged < len(sessions)
    pos = _rows(landing_clean, "pos_sales")
    assert any(not r["customer_id"] for r in pos) and any(r["customer_id"] for r in pos)


def test_messy_defects_reconcile_line_by_line(landing_messy: Path) -> None:
    landing = landing_messy / "landing"
    recorded = _mess(landing_messy)
    kinds = {m["kind"].split(":")[0] for m in recorded}
    assert {"duplicate", "malformed", "out_of_range", "unknown_sku", "late_file"} <= kinds
    found = _scan(landing_messy)
    expected = {
        (m["path"], int(m["line"])): m["kind"]
        for m in recorded
        if m["kind"] not in ("duplicate", "late_file")
    }
    assert found == expected
    for m in recorded:
        path = landing / m["path"]
        if m["kind"] == "duplicate":
            lines = path.read_bytes().split(b"\n")
            n = int(m["line"])
            assert lines[n - 1] == lines[n - 2]
        elif m["kind"] == "late_file":
            day = datetime.strptime(re.search(r"_(\d{8})\.", path.name).group(1), "%Y%m%d").date()
            assert 1 <= (delivery_date(path) - day).days <= 3


def test_mess_rates_stay_within_configured_bounds(landing_messy: Path) -> None:
    rates = MessRates().scaled(FIXTURE_MESS_SCALE)
    files = list(csv.DictReader((landing_messy / "truth" / "files.csv").open()))
    recorded = _mess(landing_messy)
    for name, src in SOURCES.items():
        lines = sum(int(f["rows"]) for f in files if f["source"] == name)
        mine = [m for m in recorded if m["source"] == name]
        dup = sum(m["kind"] == "duplicate" for m in mine)
        base = lines - dup  # rows before duplication
        assert dup == round(rates.duplicate * base), name
        assert sum(m["kind"].startswith("malformed") for m in mine) == round(rates.malformed * base), name
        oor = sum(m["kind"].startswith("out_of_range") for m in mine)
        assert oor == (round(rates.out_of_range * base) if range_columns(src) else 0), name
        n_files = sum(1 for f in files if f["source"] == name)
        assert sum(m["kind"] == "late_file" for m in mine) <= max(3, 3 * rates.late_file * n_files), name


def test_redeliveries_keep_the_wrong_version_aside(landing_messy: Path) -> None:
    red = list(csv.DictReader((landing_messy / "truth" / "redeliveries.csv").open()))
    assert red
    for r in red:
        new = (landing_messy / "landing" / r["path"]).read_bytes()
        old = (landing_messy / "superseded" / r["path"]).read_bytes()
        assert old != new
        if r["path"].endswith(".csv"):
            assert old.split(b"\n")[0] == new.split(b"\n")[0]
        diff = new.count(b"\n") - old.count(b"\n")
        assert diff == (int(r["rows_changed"]) if r["kind"] == "missing_rows" else 0)
    superseded = {
        p.relative_to(landing_messy / "superseded").as_posix()
        for p in (landing_messy / "superseded").rglob("*")
        if p.is_file()
    }
    assert superseded == {r["path"] for r in red}


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", 150, date(2024, 12, 20), 40, seed=3, mess_scale=5)
    b = generate(tmp_path / "b", 150, date(2024, 12, 20), 40, seed=3, mess_scale=5)
    assert a["rows"] == b["rows"]
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert da == db and len(da) > 300
    c = generate(tmp_path / "c", 150, date(2024, 12, 20), 40, seed=4, mess_scale=5)
    assert c["rows"] != a["rows"]


def test_sources_staged_in_small_chunks_give_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sources are serialised CHUNK_ROWS rows at a time; where a chunk ends must show in no file
    (chunks ending inside a file, files spanning many chunks, defects on both sides of a cut)."""
    whole = generate(tmp_path / "whole", 150, date(2024, 12, 20), 40, seed=3, mess_scale=5)
    assert max(whole["rows"].values()) < writers.CHUNK_ROWS  # one chunk per source
    monkeypatch.setattr(writers, "CHUNK_ROWS", 7)
    chunked = generate(tmp_path / "chunked", 150, date(2024, 12, 20), 40, seed=3, mess_scale=5)
    assert chunked["rows"] == whole["rows"]
    digest = _digest(tmp_path / "whole")
    assert _digest(tmp_path / "chunked") == digest and len(digest) > 300
    # the staging folder is gone once the files are written
    assert sorted(p.name for p in (tmp_path / "chunked").iterdir()) == ["landing", "superseded", "truth"]


def test_volumes_grow_linearly_with_customers(tmp_path: Path) -> None:
    small = generate(tmp_path / "s", 600, date(2024, 3, 1), 45, seed=5, clean=True)["rows"]
    large = generate(tmp_path / "l", 2400, date(2024, 3, 1), 45, seed=5, clean=True)["rows"]
    for source in (
        "customers",
        "pos_sales",
        "online_orders",
        "web_events",
        "call_center",
        "voc",
        "loyalty_points",
    ):
        assert 3.0 <= large[source] / small[source] <= 5.0, (source, small[source], large[source])


def test_a_history_too_short_for_campaigns_still_generates(tmp_path: Path) -> None:
    rows = generate(tmp_path, 50, date(2024, 1, 1), 3, seed=42, clean=True)["rows"]
    assert rows["campaigns"] == rows["campaign_touches"] == 0 and rows["web_events"] > 0
    files = sorted((tmp_path / "landing" / "web_events").rglob("*.jsonl"))
    events = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(files) == 3 and len(events) == rows["web_events"]
    assert {e["utm_source"] for e in events} == {None}


@pytest.mark.parametrize("bad", [0, -5])
def test_rejects_empty_runs(tmp_path: Path, bad: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate(tmp_path, bad, date(2024, 1, 1), 10)


def test_closed_accounts_get_no_campaigns_after_closing(long_clean: Path) -> None:
    landing_clean = long_clean
    truth = {r["customer_id"]: r for r in csv.DictReader((landing_clean / "truth" / "customers.csv").open())}
    closed = {c: date.fromisoformat(r["closed_at"]) for c, r in truth.items() if r["closed_at"]}
    starts = {
        r["campaign_id"]: date.fromisoformat(r["start_date"]) for r in _rows(landing_clean, "campaigns")
    }
    touches = _rows(landing_clean, "campaign_touches")
    assert touches and closed
    for t in touches:
        if t["customer_id"] in closed:
            assert starts[t["campaign_id"]] <= closed[t["customer_id"]], t
    # control rows are delivered too, with an empty sent_at and no cost
    control = [t for t in touches if t["assigned_group"] == "control"]
    assert control and all(t["sent_at"] == "" and t["cost_krw"] == "0" for t in control)


def test_command_writes_into_crmwh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from warehouse.generate.command import command

    monkeypatch.setenv("CRMWH_HOME", str(tmp_path / "home"))
    args = ["--customers", "60", "--start", "2024-05-01", "--days", "12", "--seed", "2", "--clean"]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "home" / "truth" / "summary.json").read_text())
    assert summary["clean"] is True and summary["customers"] == 60 and summary["days"] == 12
    assert f"wrote {summary['total_rows']:,} rows" in result.output
    assert len(list((tmp_path / "home" / "landing" / "customers").glob("dt=*"))) == 12


def test_a_customer_version_in_its_previous_versions_second_moves_a_second_later() -> None:
    import numpy as np

    from warehouse.generate.accounts import distinct_seconds

    # customer 7: a base row and two changes clamped to its second; customer 8 keeps its own
    cust = np.array([7, 7, 7, 7, 8])
    sec = np.array([3600, 3600, 3600, 3602, 3600])
    assert distinct_seconds(cust, sec).tolist() == [3600, 3601, 3602, 3603, 3600]
