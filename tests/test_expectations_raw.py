"""The raw suites (expectations/raw.py) through the real GX runner, on hand-made files."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from expectations import raw
from expectations.raw import suite_for, validate_raw
from warehouse.config import load_settings
from warehouse.contracts import SOURCES
from warehouse.ingest import ingest

DATA = Path(__file__).parent / "data" / "ingest"
SURVEY_HEADER = "response_id,customer_id,survey_type,responded_at,score,touchpoint,comment\n"


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CRMWH_HOME", str(tmp_path))
    return load_settings()


def _surveys(landing: Path, day: str, rows: list[str]) -> None:
    folder = landing / "surveys" / f"dt={day}"
    folder.mkdir(parents=True)
    (folder / f"surveys_{day.replace('-', '')}.csv").write_text(
        SURVEY_HEADER + "".join(r + "\n" for r in rows)
    )


def _survey_rows(n: int, day: str, bad_score_rows: int = 0) -> list[str]:
    return [
        f"S{i:05d},C{i:07d},nps,{day} 10:00:00,{11 if i < bad_score_rows else i % 11},store,좋아요"
        for i in range(n)
    ]


def test_handmade_landing_passes_and_records_every_expectation(settings) -> None:
    landing = settings.home / "landing"
    shutil.copytree(DATA / "landing", landing)
    ingest(settings.warehouse, landing, run_id="r1")
    result = validate_raw(settings.warehouse, "r1", settings)
    assert (result["success"], result["critical_failures"], result["warnings"]) == (True, 0, 0)
    # Sources with loaded rows in this run: call_center, customers, online_orders, pos_sales, web_events.
    assert result["suites"] == 5
    loaded = ("call_center", "customers", "online_orders", "pos_sales", "web_events")
    expected = sum(len(suite_for(SOURCES[s], date(2024, 1, 1))) for s in loaded)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw._validation where run_id = 'r1'").fetchone() == (
            expected,
        )
    assert (settings.validation / "data_docs" / "index.html").exists()


def test_two_different_rows_under_one_key_fail_the_run(settings) -> None:
    landing = settings.home / "landing"
    _surveys(
        landing,
        "2024-02-01",
        ["S1,C1,nps,2024-02-01 10:00:00,9,store,", "S1,C2,nps,2024-02-01 11:00:00,3,store,"],
    )
    ingest(settings.warehouse, landing, run_id="r2")
    result = validate_raw(settings.warehouse, "r2", settings)
    assert (result["success"], result["critical_failures"], result["warnings"]) == (False, 1, 0)
    [failure] = result["failures"]
    assert (failure["suite"], failure["expectation"], failure["column"]) == (
        "raw.surveys",
        "ExpectColumnValuesToBeUnique",
        "response_id",
    )


def test_exact_duplicate_rows_do_not_fail_the_key(settings) -> None:
    landing = settings.home / "landing"
    row = "S1,C1,nps,2024-02-01 10:00:00,9,store,"
    _surveys(landing, "2024-02-01", [row, row])
    ingest(settings.warehouse, landing, run_id="r3")
    assert validate_raw(settings.warehouse, "r3", settings)["success"] is True


def test_out_of_range_values_load_and_warn(settings) -> None:
    landing = settings.home / "landing"
    _surveys(landing, "2024-02-01", _survey_rows(200, "2024-02-01", bad_score_rows=5))
    summary = ingest(settings.warehouse, landing, run_id="r4")
    assert summary["sources"]["surveys"]["rows_loaded"] == 200
    result = validate_raw(settings.warehouse, "r4", settings)
    assert (result["success"], result["critical_failures"], result["warnings"]) == (True, 0, 1)
    [failure] = result["failures"]
    assert (failure["expectation"], failure["column"]) == ("ExpectColumnValuesToBeBetween", "score")
    assert '"unexpected_count": 5' in failure["observed"]


def test_a_stale_delivery_warns_on_freshness(settings) -> None:
    landing = settings.home / "landing"
    _surveys(landing, "2024-03-01", _survey_rows(10, "2024-02-20"))
    ingest(settings.warehouse, landing, run_id="r5")
    result = validate_raw(settings.warehouse, "r5", settings)
    assert (result["success"], result["critical_failures"], result["warnings"]) == (True, 0, 1)
    assert result["failures"][0]["expectation"] == "ExpectColumnMaxToBeBetween"


def test_messy_generated_landing_warns_but_does_not_fail(landing_messy: Path, settings) -> None:
    import csv

    ingest(settings.warehouse, landing_messy / "landing", run_id="messy")
    result = validate_raw(settings.warehouse, "messy", settings)
    assert (result["success"], result["critical_failures"]) == (True, 0)
    with open(landing_messy / "truth" / "mess.csv", newline="") as f:
        out_of_range = {
            (r["source"], r["kind"].split(":", 1)[1])
            for r in csv.DictReader(f)
            if r["kind"].startswith("out_of_range:")
        }
    range_warnings = {
        (f["suite"].removeprefix("raw."), f["column"])
        for f in result["failures"]
        if f["expectation"] == "ExpectColumnValuesToBeBetween"
    }
    assert range_warnings == out_of_range


def _observed_rows(settings, run_id: str) -> int:
    import json

    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        [(observed,)] = con.execute(
            "select observed from raw._validation where run_id = ? and suite = 'raw.surveys'"
            " and expectation = 'ExpectColumnValuesToNotBeNull'",
            [run_id],
        ).fetchall()
    return json.loads(observed)["element_count"]


def test_a_second_day_validates_only_that_days_rows(settings) -> None:
    landing = settings.home / "landing"
    _surveys(landing, "2024-02-01", _survey_rows(10, "2024-02-01"))
    ingest(settings.warehouse, landing, run_id="day1")
    assert validate_raw(settings.warehouse, "day1", settings)["rows"] == {"raw.surveys": 10}
    _surveys(landing, "2024-02-02", [r.replace("S0", "S1", 1) for r in _survey_rows(7, "2024-02-02")])
    ingest(settings.warehouse, landing, run_id="day2")
    result = validate_raw(settings.warehouse, "day2", settings)
    assert (result["success"], result["critical_failures"], result["warnings"]) == (True, 0, 0)
    # 17 rows in raw.surveys; the suite of day 2 saw that day's 7.
    assert result["rows"] == {"raw.surveys": 7}
    assert _observed_rows(settings, "day2") == 7


def _day2(landing: Path, rows: list[str]) -> None:
    (landing / "surveys" / "dt=2024-02-02" / "surveys_20240202.csv").write_text(
        SURVEY_HEADER + "".join(r + "\n" for r in rows)
    )


def test_a_key_loaded_again_on_a_later_day_fails_until_corrected(settings) -> None:
    landing = settings.home / "landing"
    _surveys(
        landing,
        "2024-02-01",
        ["S1,C1,nps,2024-02-01 10:00:00,9,store,", "S2,C2,nps,2024-02-01 11:00:00,8,store,"],
    )
    ingest(settings.warehouse, landing, run_id="day1")
    assert validate_raw(settings.warehouse, "day1", settings)["success"] is True
    # Day 2 brings S1 again with another score, and S3: the earlier S1 joins the batch.
    _surveys(
        landing,
        "2024-02-02",
        ["S1,C1,nps,2024-02-02 10:00:00,3,store,", "S3,C3,nps,2024-02-02 10:00:00,7,store,"],
    )
    ingest(settings.warehouse, landing, run_id="day2")
    result = validate_raw(settings.warehouse, "day2", settings)
    assert (result["success"], result["critical_failures"], result["rows"]) == (False, 1, {"raw.surveys": 3})
    assert (result["failures"][0]["expectation"], result["failures"][0]["column"]) == (
        "ExpectColumnValuesToBeUnique",
        "response_id",
    )
    # A rerun under a new run id loads nothing new, and still checks day 2's rejected rows.
    ingest(settings.warehouse, landing, run_id="rerun")
    result = validate_raw(settings.warehouse, "rerun", settings)
    assert (result["success"], result["critical_failures"], result["rows"]) == (False, 1, {"raw.surveys": 3})
    # Day 2's corrected file drops the clashing S1: it replaces the first one and passes.
    _day2(landing, ["S3,C3,nps,2024-02-02 10:00:00,7,store,"])
    ingest(settings.warehouse, landing, run_id="corrected")
    result = validate_raw(settings.warehouse, "corrected", settings)
    assert (result["success"], result["critical_failures"], result["rows"]) == (True, 0, {"raw.surveys": 1})
    # Day 3 re-sends S3 verbatim: an exact duplicate of an earlier row is one row, no failure;
    # the files passed before are not read again.
    _surveys(landing, "2024-02-03", ["S3,C3,nps,2024-02-02 10:00:00,7,store,"])
    ingest(settings.warehouse, landing, run_id="day3")
    result = validate_raw(settings.warehouse, "day3", settings)
    assert (result["success"], result["critical_failures"], result["rows"]) == (True, 0, {"raw.surveys": 1})
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        marked = con.execute("select path, status, validated_by from raw._files order by file_id").fetchall()
    assert marked == [
        ("surveys/dt=2024-02-01/surveys_20240201.csv", "loaded", "day1"),
        ("surveys/dt=2024-02-02/surveys_20240202.csv", "replaced", None),
        ("surveys/dt=2024-02-02/surveys_20240202.csv", "loaded", "corrected"),
        ("surveys/dt=2024-02-03/surveys_20240203.csv", "loaded", "day3"),
    ]


# ---- a first run validates big sources in parts (expectations.raw.BATCH_ROWS) -------------------


def _validation_rows(settings, run_id: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(
            'select suite, expectation, "column", success, critical, observed from raw._validation'
            " where run_id = ? order by rowid",
            [run_id],
        ).fetchall()


def test_parts_give_the_results_of_one_batch(
    landing_messy: Path, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(settings.warehouse, landing_messy / "landing", run_id="messy")
    whole = validate_raw(settings.warehouse, "messy", settings)
    monkeypatch.setattr(raw, "BATCH_ROWS", 120)
    parted = validate_raw(settings.warehouse, "messy", settings)
    # nine sources (web_events: 1069 rows, 9 parts) exceed 120 rows and went in parts
    assert sum(n > 120 for n in whole["rows"].values()) == 9
    assert parted["rows"] == whole["rows"]
    rows = _validation_rows(settings, "messy")
    first, second = rows[: len(rows) // 2], rows[len(rows) // 2 :]
    assert second == first  # every expectation: same success, same observed counts and maxima
    assert (parted["success"], parted["critical_failures"], parted["warnings"]) == (
        whole["success"],
        whole["critical_failures"],
        whole["warnings"],
    )
    assert whole["warnings"] > 0  # out-of-range counts and percentages were combined


def test_a_duplicate_key_far_apart_is_caught_in_parts(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    landing = settings.home / "landing"
    survey_rows = _survey_rows(300, "2024-02-01")
    # the last row repeats the key of row 10 with another score: a different row under one key
    survey_rows[-1] = "S00010,C0000010,nps,2024-02-01 10:00:00,3,store,"
    _surveys(landing, "2024-02-01", survey_rows)
    ingest(settings.warehouse, landing, run_id="big")
    monkeypatch.setattr(raw, "BATCH_ROWS", 100)
    with duckdb.connect(str(settings.warehouse)) as con:
        files = raw._pending(con, SOURCES["surveys"], "big")
        parts = list(raw._frames(con, SOURCES["surveys"], files, 3, ["response_id", "score"]))
    # three parts of about 100 rows; each key in exactly one, the two S00010 rows together
    assert sum(len(p) for p in parts) == 300 and max(len(p) for p in parts) < 150
    assert sorted(len(p[p.response_id == "S00010"]) for p in parts) == [0, 0, 2]
    result = validate_raw(settings.warehouse, "big", settings)
    assert (result["success"], result["critical_failures"], result["rows"]) == (
        False,
        1,
        {"raw.surveys": 300},
    )
    [failure] = result["failures"]
    assert (failure["expectation"], failure["column"]) == ("ExpectColumnValuesToBeUnique", "response_id")
    assert json.loads(failure["observed"]) == {
        "element_count": 300,
        "missing_count": 0,
        "unexpected_count": 2,
        "unexpected_percent": 2 / 300 * 100,
    }
    # the freshness maximum is the whole run's newest survey
    observed = {r[1]: r[5] for r in _validation_rows(settings, "big")}
    assert json.loads(observed["ExpectColumnMaxToBeBetween"]) == {"observed_value": "2024-02-01 10:00:00"}


def test_an_expectation_parts_cannot_combine_is_refused() -> None:
    import pandas as pd

    from expectations.runner import ExpectationSpec, run_suite_in_parts

    # a mean of means is not the mean: such a suite has to be validated whole
    spec = ExpectationSpec("ExpectColumnMeanToBeBetween", {"column": "x", "min_value": 0, "max_value": 1})
    with duckdb.connect() as con, pytest.raises(ValueError, match="cannot be validated in parts"):
        run_suite_in_parts([pd.DataFrame({"x": [0.5]})], "t", [spec], "r", con)


def test_a_range_on_nullable_and_narrow_integers_counts_as_gx_does_on_int64() -> None:
    import pandas as pd

    from expectations.runner import ExpectationSpec, run_suite

    # DuckDB hands INTEGER over as int32 and a column with nulls as Int32: the range check reads
    # them as float64 (GX's vectorized path), a null as a missing value, not as out of range
    df = pd.DataFrame(
        {
            "narrow": pd.array([1, 5, 11, 0, 3], dtype="int32"),
            "nullable": pd.array([1, None, 7, 2, None], dtype="Int32"),
        }
    )
    specs = [
        ExpectationSpec("ExpectColumnValuesToBeBetween", {"column": c, "min_value": 1, "max_value": 5})
        for c in df.columns
    ]
    with duckdb.connect() as con:
        con.execute("create schema raw")
        rows = run_suite(df, "t", specs, "r", con)
    assert [(r["column"], r["success"], json.loads(r["observed"])) for r in rows] == [
        (
            "narrow",
            False,
            {"element_count": 5, "missing_count": 0, "unexpected_count": 2, "unexpected_percent": 40.0},
        ),
        (
            "nullable",
            False,
            {
                "element_count": 5,
                "missing_count": 2,
                "unexpected_count": 1,
                "unexpected_percent": 1 / 3 * 100,
            },
        ),
    ]
    assert str(df["nullable"].dtype) == "Int32"  # the caller's frame is left as it was


def test_fetch_frame_gives_the_frame_df_gives() -> None:
    import pandas as pd

    from expectations.runner import fetch_frame

    # Text through Arrow, every other type through DuckDB's .df(): the same dtypes and values
    query = """
        select * from (values
            ('C1', null, date '2025-01-31', 3, true, timestamp '2025-01-31 10:00:00', 1.5),
            (null, '가', date '2025-02-01', null, null, null, null)
        ) as t(customer_id, note, day, grade, resolved, seen_at, score)
        """
    with duckdb.connect() as con:
        expected = con.execute(query).df()
        got = fetch_frame(con, query)
        empty = fetch_frame(con, "select 1 as n where false")
    pd.testing.assert_frame_equal(got, expected)
    assert {c: str(t) for c, t in got.dtypes.items()} == {
        "customer_id": "str",
        "note": "str",
        "day": "datetime64[us]",
        "grade": "Int32",
        "resolved": "boolean",
        "seen_at": "datetime64[us]",
        "score": "float64",
    }
    assert list(empty.columns) == ["n"] and len(empty) == 0
