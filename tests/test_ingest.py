"""Ingest on hand-made landing files (tests/data/ingest/landing): one file per bad-input class.

Every figure below is counted by hand from those files.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from warehouse.ingest import ingest

DATA = Path(__file__).parent / "data" / "ingest"

# (path, rows_read, rows_loaded, rows_quarantined, status)
EXPECTED_FILES = {
    "call_center/dt=2024-01-01/call_center_20240101.csv": (4, 2, 2, "loaded"),
    "customers/dt=2024-01-01/customers_20240101.csv": (8, 3, 5, "loaded"),
    "online_orders/dt=2024-01-01/online_orders_20240101.jsonl": (7, 2, 5, "loaded"),
    "pos_sales/dt=2024-01-01/pos_S001_20240101.csv": (5, 3, 2, "loaded"),
    "pos_sales/dt=2024-01-01/pos_S002_20240101.csv": (0, 0, 0, "quarantined"),
    "products/dt=2024-01-01/products_20240101.csv.gz": (0, 0, 0, "quarantined"),
    "staff/dt=2024-01-01/staff_20240101.csv": (0, 0, 0, "quarantined"),
    # Line 3 repeats line 1 exactly: it loads (staging dedupes on the key); line 4 is blank.
    "web_events/dt=2024-01-02/web_events_20240102.jsonl": (4, 4, 0, "loaded"),
}

# (path, line) -> reason; line None = the whole file.
EXPECTED_QUARANTINE = {
    ("call_center/dt=2024-01-01/call_center_20240101.csv", 5): "unknown enum",
    ("call_center/dt=2024-01-01/call_center_20240101.csv", 6): "type",
    ("customers/dt=2024-01-01/customers_20240101.csv", 4): "missing key",
    ("customers/dt=2024-01-01/customers_20240101.csv", 5): "type",
    ("customers/dt=2024-01-01/customers_20240101.csv", 6): "unknown enum",
    ("customers/dt=2024-01-01/customers_20240101.csv", 7): "parse",
    ("customers/dt=2024-01-01/customers_20240101.csv", 8): "type",
    ("online_orders/dt=2024-01-01/online_orders_20240101.jsonl", 3): "parse",
    ("online_orders/dt=2024-01-01/online_orders_20240101.jsonl", 4): "type",
    ("online_orders/dt=2024-01-01/online_orders_20240101.jsonl", 5): "missing key",
    ("online_orders/dt=2024-01-01/online_orders_20240101.jsonl", 6): "unknown enum",
    ("online_orders/dt=2024-01-01/online_orders_20240101.jsonl", 7): "parse",
    ("pos_sales/dt=2024-01-01/pos_S001_20240101.csv", 5): "type",
    ("pos_sales/dt=2024-01-01/pos_S001_20240101.csv", 6): "unknown enum",
    ("pos_sales/dt=2024-01-01/pos_S002_20240101.csv", None): "encoding",
    ("products/dt=2024-01-01/products_20240101.csv.gz", None): "parse",
    ("staff/dt=2024-01-01/staff_20240101.csv", None): "parse",
}


def _copy_landing(dst: Path) -> Path:
    shutil.copytree(DATA / "landing", dst)
    return dst


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("ingest_handmade")
    landing = _copy_landing(root / "landing")
    warehouse = root / "build.duckdb"
    summary = ingest(warehouse, landing, run_id="run-1")
    return warehouse, landing, summary


def _rows(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_manifest_counts_per_file(loaded: tuple[Path, Path, dict]) -> None:
    warehouse, _, _ = loaded
    rows = _rows(warehouse, "select path, rows_read, rows_loaded, rows_quarantined, status from raw._files")
    assert {r[0]: tuple(r[1:]) for r in rows} == EXPECTED_FILES


def test_each_bad_input_lands_in_quarantine_with_its_reason(loaded: tuple[Path, Path, dict]) -> None:
    warehouse, _, _ = loaded
    rows = _rows(warehouse, "select path, line, reason from raw._quarantine where run_id = 'run-1'")
    assert {(p, line): reason for p, line, reason in rows} == EXPECTED_QUARANTINE
    assert len(rows) == len(EXPECTED_QUARANTINE)


def test_counts_reconcile_against_tables(loaded: tuple[Path, Path, dict]) -> None:
    warehouse, _, _ = loaded
    sources = [
        r[0] for r in _rows(warehouse, "select distinct source from raw._files where status = 'loaded'")
    ]
    for source in sources:
        mismatches = _rows(
            warehouse,
            f"""select f.path from raw._files f
                where f.source = ? and f.status = 'loaded' and (
                  f.rows_loaded <> (select count(*) from raw.{source} r where r._file_id = f.file_id)
                  or f.rows_quarantined <> (select count(*) from raw._quarantine q where q.file_id = f.file_id)
                  or f.rows_read <> f.rows_loaded + f.rows_quarantined)""",
            [source],
        )
        assert mismatches == [], source


def test_values_round_trip(loaded: tuple[Path, Path, dict]) -> None:
    warehouse, _, _ = loaded
    customers = {
        r[0]: r[1:]
        for r in _rows(
            warehouse,
            "select customer_id, name, city, household_size, updated_at, closed_at, _line from raw.customers",
        )
    }
    assert customers == {
        "C0000001": ("김민준", "강남구", 3, datetime(2024, 1, 1, 9, 0), None, 2),
        "C0000002": ("이, 서연", "해운대구", 2, datetime(2024, 1, 1, 10, 30), None, 3),
        # 2024-01-01T01:00:00Z is 10:00 in Seoul.
        "C0000008": ("임지우", "연수구", 2, datetime(2024, 1, 1, 10, 0), date(2023, 12, 31), 9),
    }
    # CP949: the Korean rep_id survives decoding; sold_at parsed from YYYYMMDDHHMMSS.
    pos = _rows(
        warehouse,
        "select receipt_no, line_no, sold_at, customer_id, qty, rep_id from raw.pos_sales order by _line",
    )
    assert pos == [
        ("R0001", 1, datetime(2024, 1, 1, 9, 30), "C0000001", 2, "R001"),
        ("R0001", 2, datetime(2024, 1, 1, 9, 30), "C0000001", -1, "R001"),
        ("R0002", 1, datetime(2024, 1, 1, 10, 15), None, 1, "김영업"),
    ]
    calls = _rows(warehouse, "select call_id, summary, _line from raw.call_center order by call_id")
    assert calls == [("K0001", "배송 지연 문의, 해결됨", 2), ("K0002", '첫 줄\n둘째 줄 "인용"', 3)]


def test_nested_orders_and_struct(loaded: tuple[Path, Path, dict]) -> None:
    warehouse, _, _ = loaded
    orders = _rows(
        warehouse,
        "select order_id, ordered_at, payment, coupon_code, updated_at from raw.online_orders order by 1",
    )
    assert orders == [
        (
            "O0001",
            datetime(2024, 1, 1, 9, 10),
            {"method": "card", "installment_months": 3},
            None,
            datetime(2024, 1, 1, 9, 10),
        ),
        (
            "O0002",
            datetime(2024, 1, 1, 10, 0),
            {"method": "kakaopay", "installment_months": 0},
            "새해",
            datetime(2024, 1, 1, 11, 0),
        ),
    ]
    lines = _rows(
        warehouse,
        "select order_id, updated_at, line_no, sku, qty, unit_price, discount_amt, _line from raw.online_order_lines order by 1, 3",
    )
    assert lines == [
        ("O0001", datetime(2024, 1, 1, 9, 10), 1, "P00001", 2, 15000, 0, 1),
        ("O0001", datetime(2024, 1, 1, 9, 10), 2, "P00002", 1, 8000, 500, 1),
        ("O0002", datetime(2024, 1, 1, 11, 0), 1, "P00003", 1, 30000, 3000, 2),
    ]


def test_undecodable_file_names_encoding_and_offset(loaded: tuple[Path, Path, dict]) -> None:
    warehouse, landing, _ = loaded
    rel = "pos_sales/dt=2024-01-01/pos_S002_20240101.csv"
    offset = (landing / rel).read_bytes().index(b"\xff")
    [(detail,)] = _rows(warehouse, "select detail from raw._quarantine where path = ?", [rel])
    assert f"cp949 at byte offset {offset}" in detail


def test_utf8_files_are_checked_as_python_decodes_them() -> None:
    # Arrow checks UTF-8 sources; it must refuse what Python's decoder refuses (a stray
    # continuation byte, an overlong form, a surrogate), and the message names the first bad byte.
    from warehouse.contracts import SOURCES
    from warehouse.ingest import decode

    good = "배송 문의, 해결됨\n".encode()
    assert decode(SOURCES["voc"], Path("v.jsonl"), good)[1:] == (
        None,
        {"first_line": "배송 문의, 해결됨", "quoted": False, "utf8": good},
    )
    for bad in (b"\x80", b"\xc0\xaf", b"\xed\xa0\x80"):
        path, error, _ = decode(SOURCES["voc"], Path("v.jsonl"), good + bad + good)
        assert path is None
        assert error == (
            "encoding",
            f"not decodable as utf-8 at byte offset {len(good)} (byte 0x{bad[0]:02x}); re-export the file in utf-8",
        )


def test_second_ingest_changes_nothing(tmp_path: Path) -> None:
    landing = _copy_landing(tmp_path / "landing")
    warehouse = tmp_path / "build.duckdb"
    ingest(warehouse, landing)
    count_sql = """select (select count(*) from raw.customers), (select count(*) from raw.online_order_lines),
                          (select count(*) from raw._quarantine), (select count(*) from raw._files)"""
    before = _rows(warehouse, count_sql)
    again = ingest(warehouse, landing)
    assert {f["status"] for f in again["files"]} == {"skipped"}
    assert _rows(warehouse, count_sql) == before


def test_redelivered_file_replaces_exactly_its_rows(tmp_path: Path) -> None:
    landing = _copy_landing(tmp_path / "landing")
    warehouse = tmp_path / "build.duckdb"
    ingest(warehouse, landing, run_id="first")
    rel = "customers/dt=2024-01-01/customers_20240101.csv"
    days_sql = """select distinct cast(updated_at as date) from raw.customers
                  where _file_id = (select file_id from raw._files where path = ?) order by 1"""
    first_days = [day for (day,) in _rows(warehouse, days_sql, [rel])]
    header = (landing / rel).read_text(encoding="utf-8-sig").splitlines()[0]
    (landing / rel).write_text(
        header + "\n"
        "C0000001,김민준,010-1234-5678,minjun@example.com,1985-03-02,M,4,mid,university,office,서울,송파구,"
        "2023-05-01,store,Y,active,,2024-01-01 09:00:00\n"
        "C0000009,오하늘,010-9999-1111,,1999-09-09,F,1,low,university,student,서울,종로구,2023-10-01,web,Y,active,,"
        "2024-01-01 15:00:00\n"
        "C0000010,broken,,,,Q,1,,,,,,,,,,,2024-01-01 15:00:00\n",
        encoding="utf-8",
    )
    summary = ingest(warehouse, landing, run_id="second")
    statuses = {f["path"]: f["status"] for f in summary["files"]}
    assert statuses[rel] == "corrected"
    assert {s for p, s in statuses.items() if p != rel} == {"skipped"}
    assert _rows(
        warehouse, "select customer_id, city, household_size, _run_id from raw.customers order by 1"
    ) == [
        ("C0000001", "송파구", 4, "second"),
        ("C0000009", "종로구", 1, "second"),
    ]
    files = _rows(
        warehouse,
        "select status, rows_read, rows_loaded, rows_quarantined from raw._files where path = ? order by file_id",
        [rel],
    )
    assert files == [("replaced", 8, 3, 5), ("loaded", 3, 2, 1)]
    # The days of the rows it replaced, as of the correction's load, for the incremental models.
    replaced_days = _rows(
        warehouse,
        """select d.source, d.day from raw._replaced_days as d
           join raw._files as old on old.file_id = d.file_id and old.status = 'replaced'
           join raw._files as new on new.path = old.path and new.status = 'loaded'
           where d.replaced_at = new.loaded_at and old.path = ? order by d.day""",
        [rel],
    )
    assert first_days and replaced_days == [("customers", day) for day in first_days]
    # Quarantine rows stay with the version they came from.
    current = _rows(
        warehouse,
        "select q.line, q.reason from raw._quarantine q join raw._files f using (file_id) where f.path = ? and f.status = 'loaded'",
        [rel],
    )
    assert current == [(4, "unknown enum")]
    # The other sources are untouched.
    assert _rows(warehouse, "select count(*) from raw.pos_sales") == [(3,)]


def test_a_phone_given_to_a_customer_or_taken_away_replaces_the_days_of_its_calls(tmp_path: Path) -> None:
    """Call K0002 (2024-01-01) names no customer, and no customer holds its phone. A later
    customers file gives it to C0000002: the call's customer changes, though no call loaded
    since names it, so its day is a replaced day; then the file is corrected to none."""
    landing = _copy_landing(tmp_path / "landing")
    warehouse = tmp_path / "build.duckdb"
    ingest(warehouse, landing, run_id="first")
    rel = "customers/dt=2024-01-02/customers_20240102.csv"
    header = (landing / "customers/dt=2024-01-01/customers_20240101.csv").read_text(encoding="utf-8-sig")
    header = header.splitlines()[0]
    (landing / rel).parent.mkdir()
    (landing / rel).write_text(
        header + "\n"
        # the same phone as before, another city: no call changes customer
        "C0000001,김민준,010-1234-5678,minjun@example.com,1985-03-02,M,3,mid,university,office,서울,송파구,"
        "2023-05-01,store,Y,active,,2024-01-02 09:00:00\n"
        # K0002's phone, written another way
        'C0000002,"이, 서연",(010) 9999 0000,seoyeon@example.com,1990-07-15,F,2,high,graduate,professional,부산,'
        "해운대구,2023-06-10,web,N,active,,2024-01-02 10:00:00\n",
        encoding="utf-8",
    )
    days_sql = """select d.source, d.day, f.path, f.status from raw._replaced_days as d
                  join raw._files as f on f.file_id = d.file_id where d.source = 'call_center'
                  order by d.replaced_at"""
    ingest(warehouse, landing, run_id="second")
    assert _rows(warehouse, days_sql) == [("call_center", date(2024, 1, 1), rel, "loaded")]
    (landing / rel).write_text(header + "\n", encoding="utf-8")
    ingest(warehouse, landing, run_id="third")
    assert _rows(warehouse, days_sql) == [
        ("call_center", date(2024, 1, 1), rel, "replaced"),
        ("call_center", date(2024, 1, 1), rel, "replaced"),
    ]


def test_day_and_source_filters(tmp_path: Path) -> None:
    landing = _copy_landing(tmp_path / "landing")
    warehouse = tmp_path / "build.duckdb"
    summary = ingest(warehouse, landing, days=[date(2024, 1, 2)])
    assert [f["path"] for f in summary["files"]] == ["web_events/dt=2024-01-02/web_events_20240102.jsonl"]
    summary = ingest(warehouse, landing, sources=["pos_sales"], days=[date(2024, 1, 1)])
    assert sorted(f["path"] for f in summary["files"]) == [
        "pos_sales/dt=2024-01-01/pos_S001_20240101.csv",
        "pos_sales/dt=2024-01-01/pos_S002_20240101.csv",
    ]


def test_cli_prints_summary_and_succeeds_despite_quarantine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warehouse.cli import main

    monkeypatch.setenv("CRMWH_HOME", str(tmp_path))
    landing = _copy_landing(tmp_path / "landing")
    result = CliRunner().invoke(main, ["ingest", "--landing", str(landing), "--all", "--no-validate"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("customers "))
    assert line.split() == ["customers", "1", "0", "0", "0", "8", "3", "5"]
    total = next(x for x in result.output.splitlines() if x.startswith("total "))
    assert total.split() == ["total", "8", "0", "0", "3", "28", "14", "14"]
    assert (tmp_path / "warehouse" / "build.duckdb").exists()


def test_control_bytes_inside_a_line_stay_in_its_values(tmp_path: Path) -> None:
    # \x01 (once the line splitter's separator) is an ordinary character of a value.
    folder = tmp_path / "landing" / "call_center" / "dt=2024-01-03"
    folder.mkdir(parents=True)
    header = "call_id,caller_phone,customer_id,agent_id,started_at,ended_at,direction,reason,resolution,csat,summary\n"
    (folder / "call_center_20240103.csv").write_text(
        header
        + "K1,010-1,,A001,2024-01-03 09:00:00,2024-01-03 09:01:00,inbound,other,resolved,3,a\x01b\n"
        + "K2,010-2,,A001,2024-01-03 10:00:00,2024-01-03 10:01:00,inbound,other,maybe,3,c\x01d\n",
        encoding="utf-8",
    )
    warehouse = tmp_path / "build.duckdb"
    ingest(warehouse, tmp_path / "landing")
    assert _rows(warehouse, "select call_id, summary, _line from raw.call_center") == [("K1", "a\x01b", 2)]
    assert _rows(warehouse, "select line, reason, raw_text from raw._quarantine") == [
        (
            3,
            "unknown enum",
            "K2,010-2,,A001,2024-01-03 10:00:00,2024-01-03 10:01:00,inbound,other,maybe,3,c\x01d",
        )
    ]


def test_mixed_line_endings_load_line_by_line(tmp_path: Path) -> None:
    # Lines end in \r\n or \n at random, in a quoted CSV, an unquoted CSV and JSON Lines: every
    # record loads or is quarantined under its own line, with its text without the line end.
    landing = tmp_path / "landing"
    files = {
        "surveys/dt=2024-02-01/surveys_20240201.csv": (
            b"response_id,customer_id,survey_type,responded_at,score,touchpoint,comment\r\n"
            b'"S1","C1","nps","2024-02-01 10:00:00",9,"store","good"\n'
            b'"S2","C2","nps","2024-02-01 10:05:00",8,"store","ok,\r\nfine"\r\n'
            b'"S3","C3","nps","2024-02-01 10:10:00",7,"moon",""\n'
            b'"S4","C4","nps","2024-02-01 10:15:00",6,"online","x"\r\n'
        ),
        "loyalty_points/dt=2024-02-01/loyalty_points_20240201.csv": (
            b"entry_id,customer_id,ts,points,reason,order_ref\n"
            b"L1,C1,2024-02-01 09:00:00,100,earn,O1\r\n"
            b"L2,C2,2024-02-01 09:01:00,abc,earn,O2\n"
            b"L3,C3,2024-02-01 09:02:00,-50,redeem,\r\n"
        ),
        "web_events/dt=2024-02-01/web_events_20240201.jsonl": (
            b'{"event_id":"E1","ts":"2024-02-01T10:00:00+09:00","channel":"web","event_type":"login"}\r\n'
            b'{"event_id":"E2","ts":"2024-02-01T10:01:00+09:00","channel":"web","event_type":"search"}\n'
            b'{"event_id":"E3",\r\n'
            b'{"event_id":"E4","ts":"2024-02-01T10:03:00+09:00","channel":"app","event_type":"page_view"}'
        ),
    }
    for rel, data in files.items():
        (landing / rel).parent.mkdir(parents=True)
        (landing / rel).write_bytes(data)
    warehouse = tmp_path / "build.duckdb"
    ingest(warehouse, landing)
    assert _rows(
        warehouse, "select path, rows_read, rows_loaded, rows_quarantined, status from raw._files order by 1"
    ) == [
        ("loyalty_points/dt=2024-02-01/loyalty_points_20240201.csv", 3, 2, 1, "loaded"),
        ("surveys/dt=2024-02-01/surveys_20240201.csv", 4, 3, 1, "loaded"),
        ("web_events/dt=2024-02-01/web_events_20240201.jsonl", 4, 3, 1, "loaded"),
    ]
    assert _rows(warehouse, "select source, line, reason, raw_text from raw._quarantine order by 1") == [
        ("loyalty_points", 3, "type", "L2,C2,2024-02-01 09:01:00,abc,earn,O2"),
        ("surveys", 5, "unknown enum", '"S3","C3","nps","2024-02-01 10:10:00",7,"moon",""'),
        ("web_events", 3, "parse", '{"event_id":"E3",'),
    ]
    # A quoted line break is read as \n, whatever the file's line ends.
    assert _rows(warehouse, "select response_id, comment, _line from raw.surveys order by 1") == [
        ("S1", "good", 2),
        ("S2", "ok,\nfine", 3),
        ("S4", "x", 6),
    ]
    assert _rows(
        warehouse, "select entry_id, points, order_ref, _line from raw.loyalty_points order by 1"
    ) == [
        ("L1", 100, "O1", 2),
        ("L3", -50, None, 4),
    ]
    assert _rows(warehouse, "select event_id, event_type, _line from raw.web_events order by 1") == [
        ("E1", "login", 1),
        ("E2", "search", 2),
        ("E4", "page_view", 4),
    ]


def test_stray_quotes_stay_within_their_file(tmp_path: Path) -> None:
    # The quoted CSV files of a batch are read together: a quote left open, or a stray quote
    # inside a value, costs its own record only, never a line of the files around it.
    header = "call_id,caller_phone,customer_id,agent_id,started_at,ended_at,direction,reason,resolution,csat,summary\n"

    def call(call_id: str, summary: str) -> str:
        return f'"{call_id}","010-1",,"A1","2024-01-01 09:00:00","2024-01-01 09:01:00","inbound","other","resolved",3,{summary}\n'

    bodies = {
        "01": call("K1", '"two\nlines"') + call("K2", '"b"'),
        "02": call("K3", '"never closed') + call("K4", '"b"'),
        "03": call("K5", '"ab"cd"') + call("K6", '"b"'),
        "04": call("K7", '"c"'),
    }
    for day, body in bodies.items():
        folder = tmp_path / "landing" / "call_center" / f"dt=2024-01-{day}"
        folder.mkdir(parents=True)
        (folder / f"call_center_202401{day}.csv").write_text(header + body, encoding="utf-8")
    warehouse = tmp_path / "build.duckdb"
    ingest(warehouse, tmp_path / "landing")
    assert _rows(warehouse, "select call_id, summary, _file_id, _line from raw.call_center order by 1") == [
        ("K1", "two\nlines", 1, 2),
        ("K2", "b", 1, 4),
        ("K6", "b", 3, 3),
        ("K7", "c", 4, 2),
    ]
    # The open quote swallows the rest of its file (K4): one rejected record from line 2.
    assert _rows(warehouse, "select file_id, line, reason, detail from raw._quarantine order by 1") == [
        (2, 2, "parse", "CSV record: too many columns, unquoted value"),
        (3, 2, "parse", "CSV record: unquoted value"),
    ]
    assert _rows(
        warehouse, "select file_id, rows_read, rows_loaded, rows_quarantined from raw._files order by 1"
    ) == [
        (1, 2, 2, 0),
        (2, 1, 0, 1),
        (3, 2, 1, 1),
        (4, 1, 1, 0),
    ]


def test_lines_of_a_batch_are_numbered_per_file() -> None:
    from warehouse.ingest import Entry, lines_table

    texts = [
        b'h\r\n"a\nb"\r\n\n',  # CRLF and LF, a quoted line break, a blank last line
        b"",  # an empty file
        b"x\ry",  # a lone \r is not a line end; no final newline
        b"\r",  # ends in \r ...
        b"\nlast",  # ... and the next file starts with \n: each keeps its own byte
    ]
    entries = [Entry(i + 1, f"f{i}", None, "", 0, None, None, utf8=t) for i, t in enumerate(texts)]
    table = lines_table(entries)
    assert list(zip(*(table[c].to_pylist() for c in ("file_id", "line", "t", "balanced")), strict=True)) == [
        (1, 1, "h", True),
        (1, 2, '"a', True),
        (1, 3, 'b"', False),
        (1, 4, "", True),
        (3, 1, "x\ry", True),
        (4, 1, "\r", True),
        (5, 1, "", True),
        (5, 2, "last", True),
    ]


def test_lines_of_random_batches_match_a_line_by_line_split() -> None:
    # lines_table works on positions in the joined batch; here each file is split on its own,
    # line by line, in Python: 2,000 random batches of newlines, carriage returns, quotes and
    # empty files must give the same lines, numbers and quote balances.
    import random

    from warehouse.ingest import Entry, lines_table

    def split(file_id: int, text: bytes) -> list[tuple[int, int, str, bool]]:
        pieces = text.split(b"\n")
        if pieces[-1] == b"":  # a final newline (or an empty file) starts no line
            pieces.pop()
        out, quotes = [], 0
        for i, piece in enumerate(pieces):
            ended = i < len(pieces) - 1 or text.endswith(b"\n")
            shown = piece[:-1] if ended and piece.endswith(b"\r") else piece
            out.append((file_id, i + 1, shown.decode(), quotes % 2 == 0))
            quotes += piece.count(b'"')
        return out

    rng = random.Random(7)
    alphabet = [b"a", b"\n", b"\r", b"\r\n", b'"', b",", "가".encode()]
    for _ in range(2000):
        texts = [b"".join(rng.choices(alphabet, k=rng.randint(0, 10))) for _ in range(rng.randint(1, 6))]
        entries = [Entry(i + 1, f"f{i}", None, "", 0, None, None, utf8=t) for i, t in enumerate(texts)]
        table = lines_table(entries)
        got = list(zip(*(table[c].to_pylist() for c in ("file_id", "line", "t", "balanced")), strict=True))
        assert got == [row for e in entries for row in split(e.file_id, e.utf8)], texts


def test_json_values_of_the_wrong_shape_are_type_errors(tmp_path: Path) -> None:
    # A struct or list field holding a string, a number or the other shape, or a list with an
    # element that is no object or an empty one, is a type error on its own line (a JSON
    # string inside one once stopped the whole run); the rows around it load. Offset
    # timestamps become Seoul time: +09:00 is exact since 1988, not in its DST.
    import json

    order = {
        "order_id": "O1",
        "customer_id": "C1",
        "ordered_at": "2024-10-30T00:00:24+09:00",
        "channel": "app",
        "status": "paid",
        "payment": {"method": "card", "installment_months": 0},
        "lines": [{"sku": "P1", "qty": 1, "unit_price": 100, "discount_amt": 0}],
        "updated_at": "2024-10-30T00:00:24+09:00",
    }
    shapes = [
        ("payment", "abc"),
        ("payment", 5),
        ("payment", [1]),
        ("lines", "abc"),
        ("lines", {"sku": "P1"}),
        ("lines", [{"sku": "P1", "qty": 1.5}]),
        ("lines", [1, {"sku": "P1"}]),
        ("lines", [{}]),
        ("lines", []),
        ("payment", {}),
    ]
    rows = [order] + [dict(order, order_id=f"O{i + 2}", **{k: v}) for i, (k, v) in enumerate(shapes)]
    times = [
        "2024-10-30T00:00:00+09:00",
        "2024-10-30T00:00:00.5+09:00",
        "2024-10-30T00:00:00Z",
        "2024-10-30 00:00:00",
        "1988-06-01T00:00:00+09:00",
        "1988-12-01T00:00:00+09:00",
    ]
    events = [
        {"event_id": f"E{i}", "ts": ts, "channel": "web", "event_type": "login"} for i, ts in enumerate(times)
    ]
    landing = tmp_path / "landing"
    for rel, records in {
        "online_orders/dt=2024-10-30/online_orders_20241030.jsonl": rows,
        "web_events/dt=2024-10-30/web_events_20241030.jsonl": events,
    }.items():
        (landing / rel).parent.mkdir(parents=True)
        (landing / rel).write_text("".join(json.dumps(r) + "\n" for r in records))
    warehouse = tmp_path / "build.duckdb"
    ingest(warehouse, landing)
    struct = " is not STRUCT(method VARCHAR, installment_months INTEGER)"
    lines = "lines is not a list of valid lines objects"
    assert _rows(warehouse, "select line, reason, detail from raw._quarantine order by 1") == [
        (2, "type", "payment=abc" + struct),
        (3, "type", "payment=5" + struct),
        (4, "type", "payment=[1]" + struct),
        (5, "type", lines),
        (6, "type", lines),
        (7, "type", lines),
        (8, "type", lines),
        (9, "type", lines),
    ]
    assert _rows(warehouse, "select order_id, payment from raw.online_orders order by 1") == [
        ("O1", {"method": "card", "installment_months": 0}),
        ("O10", {"method": "card", "installment_months": 0}),
        ("O11", {"method": None, "installment_months": None}),
    ]
    assert _rows(
        warehouse, "select order_id, count(*) from raw.online_order_lines group by 1 order by 1"
    ) == [
        ("O1", 1),
        ("O11", 1),
    ]
    assert _rows(warehouse, "select ts from raw.web_events order by event_id") == [
        (datetime(2024, 10, 30, 0, 0),),
        (datetime(2024, 10, 30, 0, 0, 0, 500000),),
        (datetime(2024, 10, 30, 9, 0),),
        (datetime(2024, 10, 30, 0, 0),),
        (datetime(1988, 6, 1, 1, 0),),
        (datetime(1988, 12, 1, 0, 0),),
    ]


def test_a_batch_leaves_the_connection_keeping_insertion_order(tmp_path: Path) -> None:
    # The raw insert may reorder rows; the CSV reader's rows after it must not be (_read_groups
    # matches the k-th record read to the k-th record start).
    from warehouse.contracts import SOURCES
    from warehouse.ingest import connect, load_batch, read_batch

    landing = _copy_landing(tmp_path / "landing")
    con = connect(tmp_path / "build.duckdb")
    paths = sorted((landing / "call_center").rglob("*.csv"))
    batch = read_batch(SOURCES["call_center"], landing, paths, {}, iter([1]))
    results = load_batch(con, batch, "run-1")
    assert [(r.rows_read, r.rows_loaded) for r in results] == [(4, 2)]
    assert con.execute("select current_setting('preserve_insertion_order')").fetchone() == (True,)
    con.close()


def test_simply_quoted_files_are_split_and_the_others_read(tmp_path: Path) -> None:
    # A file whose quotes only enclose whole values is split on commas; a quote around a comma
    # or a doubled quote sends its file to DuckDB's CSV reader. Both give the same values.
    import itertools

    from warehouse.contracts import SOURCES
    from warehouse.ingest import _simply_quoted, read_batch

    header = "call_id,caller_phone,customer_id,agent_id,started_at,ended_at,direction,reason,resolution,csat,summary\n"
    bodies = {
        "01": '"K1","010-1",,"A1","2024-01-01 09:00:00","2024-01-01 09:01:00","inbound","other","resolved",3,"late"\n'
        '"K2","","C1","A1","2024-01-01 10:00:00","2024-01-01 10:05:00","outbound","order","resolved",,""\n',
        "02": '"K3","010-3",,"A2","2024-01-02 09:00:00","2024-01-02 09:01:00","inbound","other","resolved",5,"late, again"\n'
        '"K4","010-4",,"A2","2024-01-02 09:00:00","2024-01-02 09:01:00","inbound","other","resolved",1,"said ""no"""\n',
    }
    for day, body in bodies.items():
        folder = tmp_path / "landing" / "call_center" / f"dt=2024-01-{day}"
        folder.mkdir(parents=True)
        (folder / f"call_center_202401{day}.csv").write_text(header + body, encoding="utf-8")
    paths = sorted((tmp_path / "landing").rglob("*.csv"))
    batch = read_batch(SOURCES["call_center"], tmp_path / "landing", paths, {}, itertools.count(1))
    with duckdb.connect() as con:
        con.register("_lines", batch.lines)
        assert _simply_quoted(con, batch.entries, ",", 2) == {1}
    warehouse = tmp_path / "build.duckdb"
    ingest(warehouse, tmp_path / "landing")
    assert _rows(
        warehouse,
        "select call_id, caller_phone, customer_id, csat, summary, _line from raw.call_center order by 1",
    ) == [
        ("K1", "010-1", None, 3, "late", 2),
        ("K2", None, "C1", None, None, 3),
        ("K3", "010-3", None, 5, "late, again", 2),
        ("K4", "010-4", None, 1, 'said "no"', 3),
    ]
