"""fct_customer_month is incremental by month: a daily run rewrites only the months it must.

A clean generated set (200 customers from 2024-01-01) is ingested and built up to 2024-04-07
the way production does it. Then, as in production:

1. one more day (04-08) arrives and is built with an 8-day lookback (from 03-31). Before that
   build every row of January to April is marked (complaints = -1): April is the month in
   progress and must be rewritten whole; in January and February only customers whose history
   as a whole can have changed (a new version, a points entry, activity on the new day) may
   be, and in March, where the window starts, those and the customers with facts on 03-31;
2. a corrected POS file for a January day is re-delivered (one line's qty + 1), another
   corrected to no lines at all, with a corrected points file for a January day that drops
   one customer's only entry of the day, and a new file that delivers another January entry
   again for another customer. The days are built again: January must be rewritten from the
   corrected facts, and the two customers who lost an entry keep their balances from January
   on without it (no new row names them). Then, on its own, January's finance delivery is
   corrected to no rows: January must lose its finance figures; and an April receipt is
   delivered again for another customer: it must move from one's April row to the other's; and
   a customers file delivered late adds a February version: the sales it covers must take it,
   and give it up when the file is corrected to no rows; the version also takes another
   customer's phone, and with it that customer's calls matched by phone, until the correction;
3. an account closed in January or February buys again on 04-09 (a late return): its span
   now runs to April, so the months between, older than the window, must appear. This build
   and the full refresh run without raw._replaced_days, as after an upgrade before ingest;
4. a full refresh of a copy of the warehouse must give exactly the incremental table.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from warehouse.build import build
from warehouse.config import load_settings

CUSTOMERS, DAYS, SEED = 200, 100, 11
START = date(2024, 1, 1)
BUILT_UNTIL = date(2024, 4, 7)
NEXT_DAY = date(2024, 4, 8)
RETURN_DAY = date(2024, 4, 9)
LATE_VERSION = datetime(2024, 2, 10, 12, 0)
LOOKBACK = 8  # the window of 04-08 starts on 03-31
SELECT = "+fct_customer_month"
NO_TESTS = "resource_type:test resource_type:unit_test"
MARKED_OLD = ("2024-01", "2024-02")
MARKED_WINDOW_START = "2024-03"
MARKED_WINDOW = "2024-04"
FACTS = ("fct_contacts", "fct_feedback", "fct_sales")


def _settings(home: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRMWH_HOME", str(home))
        return load_settings()


def _build(settings, run_date: date, full_refresh: bool = False, select: str = SELECT) -> None:
    build(
        settings,
        full_refresh=full_refresh,
        select=select,
        exclude=NO_TESTS,
        vars={"run_date": run_date.isoformat(), "lookback_days": LOOKBACK},
    )


def _correct_a_january_line(landing: Path) -> dict:
    """Add 1 to the qty of the first identified sale line of a mid-January POS file."""
    for day in range(10, 20):
        for path in sorted((landing / "pos_sales" / f"dt=2024-01-{day:02d}").glob("*.csv")):
            lines = path.read_text().splitlines()
            for i, line in enumerate(lines[1:], start=1):
                fields = line.split(",")
                customer, qty = fields[4].strip('"'), int(fields[6])
                if customer and qty > 0:
                    fields[6] = str(qty + 1)
                    lines[i] = ",".join(fields)
                    path.write_text("\n".join(lines) + "\n")
                    return {"day": date(2024, 1, day), "customer_id": customer, "unit_price": int(fields[7])}
    raise AssertionError("no identified January POS sale line in the generated set")


def _empty_a_january_pos_file(landing: Path) -> dict:
    """Correct a mid-January POS file with sales to none (its header alone)."""
    for day in range(20, 30):
        for path in sorted((landing / "pos_sales" / f"dt=2024-01-{day:02d}").glob("*.csv")):
            header, *lines = path.read_text().splitlines()
            if lines:
                path.write_text(header + "\n")
                return {"day": date(2024, 1, day), "store_id": path.stem.split("_")[1]}
    raise AssertionError("no late-January POS file with sales in the generated set")


def _empty_the_january_finance_file(landing: Path) -> date:
    """Correct January's finance delivery to no rows (its header alone); return its day."""
    path = next((landing / "finance_monthly").glob("dt=*/finance_monthly_2024-01.csv"))
    path.write_text(path.read_text().splitlines()[0] + "\n")
    return date.fromisoformat(path.parent.name.removeprefix("dt="))


def _drop_a_january_points_entry(landing: Path) -> dict:
    """Drop from a mid-January points file an entry whose customer has no other entry there."""
    for day in range(10, 20):
        for path in sorted((landing / "loyalty_points" / f"dt=2024-01-{day:02d}").glob("*.csv")):
            header, *lines = path.read_text().splitlines()
            customers = [line.split(",")[1].strip('"') for line in lines]
            for i, line in enumerate(lines):
                points = int(line.split(",")[3])
                if customers[i] and customers.count(customers[i]) == 1 and points:
                    path.write_text("\n".join([header, *lines[:i], *lines[i + 1 :]]) + "\n")
                    return {"day": date(2024, 1, day), "customer_id": customers[i], "points": points}
    raise AssertionError("no January points entry of a customer alone in its file")


def _move_a_january_points_entry(landing: Path, day: date, keep: str) -> dict:
    """Deliver the day's first entry with points whose customer is not `keep` again, a day
    later in a file of its own, for another customer of the month's points files."""
    path = next((landing / "loyalty_points" / f"dt={day.isoformat()}").glob("*.csv"))
    header, *lines = path.read_text().splitlines()
    fields = next(
        f for f in (line.split(",") for line in lines) if f[1].strip('"') not in ("", keep) and int(f[3])
    )
    moved = {"customer_id": fields[1].strip('"'), "points": int(fields[3])}
    january = sorted(
        {
            line.split(",")[1]
            for p in (landing / "loyalty_points").glob("dt=2024-01-*/*.csv")
            for line in p.read_text().splitlines()[1:]
        }
        - {'""', f'"{keep}"', fields[1]}
    )
    fields[1] = january[0]
    later = landing / "loyalty_points" / f"dt={(day + timedelta(days=1)).isoformat()}"
    (later / "loyalty_points_moved.csv").write_text(f"{header}\n{','.join(fields)}\n")
    return {**moved, "day": day + timedelta(days=1)}


def _move_an_april_receipt(landing: Path) -> dict:
    """Deliver an identified early-April POS receipt again, in a new file a day later, for
    another customer of the file: the new delivery wins, and no row names the old customer."""
    for path in sorted((landing / "pos_sales").glob("dt=2024-04-0[5-7]/*.csv")):
        header, *lines = path.read_text().splitlines()
        rows = [line.split(",") for line in lines]
        customers = sorted({f[4] for f in rows} - {'""'})
        for fields in rows:
            receipt, old = fields[0], fields[4]
            if old == '""' or int(fields[6]) <= 0:
                continue
            new = next(c for c in customers if c != old)
            moved = [[*f[:4], new, *f[5:]] for f in rows if f[0] == receipt]
            later = landing / "pos_sales" / f"dt={NEXT_DAY.isoformat()}"
            (later / "pos_moved.csv").write_text("\n".join([header, *(",".join(f) for f in moved)]) + "\n")
            return {
                "from": old.strip('"'),
                "to": new.strip('"'),
                "order_id": f"{fields[2]}-{receipt}".replace('"', ""),
            }
    raise AssertionError("no identified early-April POS receipt in the generated set")


def _deliver_a_late_version(landing: Path, wh: str) -> dict:
    """A customers file delivered late: a version dated LATE_VERSION of a customer with one
    version so far and sales from then on, who moves to another region and takes the phone of
    another customer, whose calls without customer_id from then on (matched by phone) it takes
    too (a reassigned number)."""
    with duckdb.connect(wh, read_only=True) as con:
        customer = con.execute(
            """select customer_id from marts.fct_sales
               where date_day >= ? and date_day < '2024-04-01'
                   and customer_id in (select customer_id from raw.customers group by 1 having count(*) = 1)
               group by customer_id order by count(*) desc, customer_id limit 1""",
            [LATE_VERSION.date()],
        ).fetchone()[0]
        caller, phone = con.execute(
            """select calls.customer_id, any_value(customers.phone) from marts.fct_contacts as calls
               join raw.customers as customers on customers.customer_id = calls.customer_id
               where calls.identified_by = 'phone' and calls.contact_at >= ? and calls.date_day < '2024-04-01'
                   and calls.customer_id <> ?
               group by calls.customer_id order by count(*) desc, calls.customer_id limit 1""",
            [LATE_VERSION, customer],
        ).fetchone()
    for path in sorted((landing / "customers").glob("dt=*/*.csv")):
        rows = list(csv.DictReader(path.read_text().splitlines()))
        row = next((r for r in rows if r["customer_id"] == customer), None)
        if row:
            break
    row = {
        **row,
        "region": "제주" if row["region"] != "제주" else "서울",
        "phone": phone,
        "updated_at": str(LATE_VERSION),
    }
    folder = landing / "customers" / f"dt={LATE_VERSION.date().isoformat()}"
    with (folder / "customers_late.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(row), quoting=csv.QUOTE_NONNUMERIC)
        writer.writeheader()
        writer.writerow(row)
    return {"customer_id": customer, "caller": caller, "phone": phone, "day": LATE_VERSION.date()}


def _add_a_purchase(landing: Path, day: date, customer_id: str) -> None:
    """Append a purchase by customer_id to the day's first POS file."""
    path = sorted((landing / "pos_sales" / f"dt={day.isoformat()}").glob("*.csv"))[0]
    store = path.stem.split("_")[1]
    stamp = day.strftime("%Y%m%d")
    line = f'"{stamp}-99999",1,"{store}","{stamp}120000","{customer_id}","P00001",1,10000,0,"CARD",'
    path.write_text(path.read_text().rstrip("\n") + "\n" + line + "\n")


def _calls_check(con: duckdb.DuckDBPyConnection, late: dict) -> dict:
    """The calls of fct_contacts whose customer is not the one identity stitching gives them
    now; the late version's customer's calls from the phone it took; and the customer months
    of the two customers whose call counts differ from fct_contacts."""
    return {
        "stale": con.execute(
            """select count(*) from marts.fct_contacts as f
               join intermediate.int_calls_identified as c on f.contact_id = 'call-' || c.call_id
               where f.customer_id is distinct from c.customer_id"""
        ).fetchone()[0],
        "by_phone": con.execute(
            """select count(*) from marts.fct_contacts as f
               join staging.stg_call_center__calls as c on f.contact_id = 'call-' || c.call_id
               where f.customer_id = ? and c.caller_phone_hash = md5(regexp_replace(?, '[^0-9]', '', 'g'))""",
            [late["customer_id"], late["phone"]],
        ).fetchone()[0],
        "months_off": con.execute(
            """select count(*) from marts.fct_customer_month as m
               full join (
                   select customer_id, month, count(*) as calls from marts.fct_contacts
                   where contact_channel = 'call_center' and customer_id in ($1, $2) group by all
               ) as f using (customer_id, month)
               where (m.customer_id in ($1, $2) or f.customer_id is not null)
                   and coalesce(m.contacts_call_center, 0) <> coalesce(f.calls, 0)""",
            [late["customer_id"], late["caller"]],
        ).fetchone()[0],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from warehouse.generate import generate
    from warehouse.ingest import ingest

    out = tmp_path_factory.mktemp("gen_customer_month")
    generate(out, CUSTOMERS, START, DAYS, seed=SEED, clean=True)
    landing = out / "landing"
    settings = _settings(tmp_path_factory.mktemp("customer_month"))
    wh = str(settings.warehouse)
    days = [START + timedelta(days=d) for d in range((BUILT_UNTIL - START).days + 1)]
    ingest(settings.warehouse, landing, days=days)
    _build(settings, BUILT_UNTIL)

    # 1. One more day, with every row of the marked months marked.
    with duckdb.connect(wh) as con:
        con.execute(
            "create table main.saved as select customer_id, month, complaints from marts.fct_customer_month"
        )
        marked = (*MARKED_OLD, MARKED_WINDOW_START, MARKED_WINDOW)
        con.execute(f"update marts.fct_customer_month set complaints = -1 where month in {marked}")
        old_rows = con.execute(
            f"select count(*) from marts.fct_customer_month where month in {MARKED_OLD}"
        ).fetchone()[0]
    run_id = ingest(settings.warehouse, landing, days=[NEXT_DAY])["run_id"]
    # The facts first, on their own: what they record for fct_customer_month, against their
    # rows before.
    with duckdb.connect(wh) as con:
        for fact in FACTS:
            source = "source" if fact == "fct_contacts" else "null"
            con.execute(
                f"create table main.{fact}_before as select customer_id, month, date_day, {source} as source"
                f" from marts.{fact}"
            )
    _build(settings, NEXT_DAY, select=" ".join(f"+{fact}" for fact in FACTS))
    with duckdb.connect(wh) as con:
        records = {
            "days": con.execute(
                "select model, source, first_day, after_day from ops._fact_rewritten_days order by all"
            ).fetchall(),
            "customers": {
                fact: sorted(
                    con.execute(
                        "select customer_id, month from ops._fact_rewritten_customers where model = ?",
                        [fact],
                    ).fetchall(),
                    key=str,
                )
                for fact in FACTS
            },
        }
        # The customer months of the rows on the recorded days before the run.
        records["expected"] = {}
        for fact in FACTS:
            ranges = [
                f"(date_day >= '{first}'"
                + (f" and date_day < '{after}'" if after else "")
                + (f" and source = '{source}'" if source else "")
                + ")"
                for model, source, first, after in records["days"]
                if model == fact
            ]
            records["expected"][fact] = sorted(
                con.execute(
                    f"select distinct customer_id, month from main.{fact}_before where {' or '.join(ranges)}"
                ).fetchall(),
                key=str,
            )
            con.execute(f"drop table main.{fact}_before")
        # A reader removed from the project left its mark: the build must drop it, or the
        # records it never reads again would stay.
        con.execute("insert into ops._fact_rewrite_reads values ('cube_removed', 'fct_sales', '2000-01-01')")
    _build(settings, NEXT_DAY)
    with duckdb.connect(wh) as con:
        records["left"] = con.execute(
            """select (select count(*) from ops._fact_rewritten_days)
                   + (select count(*) from ops._fact_rewritten_customers)"""
        ).fetchone()[0]
        records["reads"] = con.execute(
            "select reader, model from ops._fact_rewrite_reads order by all"
        ).fetchall()
        next_day = {
            "records": records,
            "old_rows": old_rows,
            "old_kept": con.execute(
                f"select count(*) from marts.fct_customer_month where month in {MARKED_OLD} and complaints = -1"
            ).fetchone()[0],
            "old_rewritten_customers": {
                row[0]
                for row in con.execute(
                    f"""select distinct customer_id from marts.fct_customer_month
                        where month in {MARKED_OLD} and complaints <> -1"""
                ).fetchall()
            },
            "start_rows": con.execute(
                "select count(*) from marts.fct_customer_month where month = ?", [MARKED_WINDOW_START]
            ).fetchone()[0],
            "start_kept": con.execute(
                "select count(*) from marts.fct_customer_month where month = ? and complaints = -1",
                [MARKED_WINDOW_START],
            ).fetchone()[0],
            "start_rewritten_customers": {
                row[0]
                for row in con.execute(
                    "select customer_id from marts.fct_customer_month where month = ? and complaints <> -1",
                    [MARKED_WINDOW_START],
                ).fetchall()
            },
            # Customers with facts on the window's day in March, which the facts rewrote.
            "start_day_customers": {
                row[0]
                for row in con.execute(
                    """select customer_id from marts.fct_sales where date_day = $day
                       union select customer_id from marts.fct_contacts where date_day = $day
                       union select customer_id from marts.fct_feedback where date_day = $day""",
                    {"day": NEXT_DAY - timedelta(days=LOOKBACK)},
                ).fetchall()
            },
            "window_kept": con.execute(
                "select count(*) from marts.fct_customer_month where month = ? and complaints = -1",
                [MARKED_WINDOW],
            ).fetchone()[0],
            "window_rows": con.execute(
                "select count(*) from marts.fct_customer_month where month = ?", [MARKED_WINDOW]
            ).fetchone()[0],
            # Customers the new day brought anything about: they may be rewritten in any month.
            "new_day_customers": {
                row[0]
                for row in con.execute(
                    """select customer_id from raw.customers where _run_id = $run
                       union select customer_id from raw.loyalty_points where _run_id = $run
                       union select customer_id from marts.fct_sales where date_day = $day
                       union select customer_id from marts.fct_contacts where date_day = $day
                       union select customer_id from marts.fct_feedback where date_day = $day""",
                    {"run": run_id, "day": NEXT_DAY},
                ).fetchall()
            },
        }
        # Put the marked values back, so the table can be compared with a full refresh.
        con.execute(
            """update marts.fct_customer_month as m set complaints = saved.complaints from main.saved
               where saved.customer_id = m.customer_id and saved.month = m.month and m.complaints = -1"""
        )
        con.execute("drop table main.saved")

    # 2. A corrected January POS file and a corrected January points file, re-delivered; then
    # on its own, a January points entry delivered again for another customer.
    corrected = _correct_a_january_line(landing)
    emptied = _empty_a_january_pos_file(landing)
    dropped = _drop_a_january_points_entry(landing)
    store_day = "select count(*) from marts.fct_sales where store_id = ? and date_day = ?"
    month_net = """select net_sales_krw, _loaded_at from marts.fct_customer_month
                   where customer_id = ? and month = '2024-01'"""
    balances = """select month, points_balance from marts.fct_customer_month
                  where customer_id = ? and month >= '2024-01' order by month"""
    with duckdb.connect(wh, read_only=True) as con:
        before = con.execute(month_net, [corrected["customer_id"]]).fetchone()
        balances_before = [con.execute(balances, [dropped["customer_id"]]).fetchall()]
        emptied["lines_before"] = con.execute(store_day, [emptied["store_id"], emptied["day"]]).fetchone()[0]
        high_water = con.execute("select max(_loaded_at) from marts.fct_customer_month").fetchone()[0]
    ingest(settings.warehouse, landing, days=sorted({corrected["day"], emptied["day"], dropped["day"]}))
    _build(settings, NEXT_DAY)
    moved = _move_a_january_points_entry(landing, dropped["day"], keep=dropped["customer_id"])
    with duckdb.connect(wh, read_only=True) as con:
        balances_after = [con.execute(balances, [dropped["customer_id"]]).fetchall()]
        emptied["lines_after"] = con.execute(store_day, [emptied["store_id"], emptied["day"]]).fetchone()[0]
        balances_before.append(con.execute(balances, [moved["customer_id"]]).fetchall())
    ingest(settings.warehouse, landing, days=[moved["day"]])
    _build(settings, NEXT_DAY)
    with duckdb.connect(wh, read_only=True) as con:
        after = con.execute(month_net, [corrected["customer_id"]]).fetchone()
        balances_after.append(con.execute(balances, [moved["customer_id"]]).fetchall())
        january = con.execute(
            """select
                   (select sum(net_sales_krw) from marts.fct_customer_month where month = '2024-01'),
                   (select sum(net_sales_krw) from marts.fct_sales where month = '2024-01'
                        and customer_id in (select customer_id from marts.fct_customer_month))"""
        ).fetchone()

    # 2c. On its own build (a correction of a January fact rewrites the month anyway): January's
    # finance delivery corrected to no rows. Finance rows have no timestamp, so ingest records
    # the month's first day in raw._replaced_days.
    january_finance = """select count(*) from marts.fct_customer_month
                         where month = '2024-01' and (has_finance or revenue_krw <> 0)"""
    with duckdb.connect(wh, read_only=True) as con:
        finance = [con.execute(january_finance).fetchone()[0]]
    ingest(settings.warehouse, landing, days=[_empty_the_january_finance_file(landing)])
    _build(settings, NEXT_DAY)
    with duckdb.connect(wh, read_only=True) as con:
        finance.append(con.execute(january_finance).fetchone()[0])

    # 2d. On its own build: an April receipt (the window's month) delivered again for another
    # customer. The old customer's row must lose it, although no row loaded since names them.
    receipt = _move_an_april_receipt(landing)
    april_net = """select customer_id, net_sales_krw from marts.fct_customer_month
                   where month = '2024-04' and customer_id in (?, ?) order by customer_id"""
    receipt_net = "select sum(net_sales_krw) from marts.fct_sales where order_id = ?"
    with duckdb.connect(wh, read_only=True) as con:
        receipt["before"] = dict(con.execute(april_net, [receipt["from"], receipt["to"]]).fetchall())
        receipt["net"] = con.execute(receipt_net, [receipt["order_id"]]).fetchone()[0]
    ingest(settings.warehouse, landing, days=[NEXT_DAY])
    _build(settings, NEXT_DAY)
    with duckdb.connect(wh, read_only=True) as con:
        receipt["after"] = dict(con.execute(april_net, [receipt["from"], receipt["to"]]).fetchall())

    # 2e. On its own build: a customer version delivered late (its file dated February). The
    # sales it covers, older than the window, must take it, as in a full build.
    late = _deliver_a_late_version(landing, wh)
    ingest(settings.warehouse, landing, days=[late["day"]])
    _build(settings, NEXT_DAY)
    with duckdb.connect(wh, read_only=True) as con:
        late["keys"] = con.execute(
            """select s.customer_key = v.customer_key, count(*) from marts.fct_sales as s
               join intermediate.int_customers_versioned as v
                   on v.customer_id = s.customer_id and v.valid_from = ?
               where s.customer_id = ? and s.sold_at >= v.valid_from group by 1 order by 1""",
            [LATE_VERSION, late["customer_id"]],
        ).fetchall()
        late["calls"] = [_calls_check(con, late)]

    # 2f. On its own build: that customers file corrected to no rows. The version is gone, and
    # the sales it covered must go back to the one before.
    late_file = landing / "customers" / f"dt={late['day'].isoformat()}" / "customers_late.csv"
    late_file.write_text(late_file.read_text().splitlines()[0] + "\n")
    ingest(settings.warehouse, landing, days=[late["day"]])
    _build(settings, NEXT_DAY)
    with duckdb.connect(wh, read_only=True) as con:
        late["dangling"] = con.execute(
            """select count(*) from marts.fct_sales where customer_id = ?
                   and customer_key not in (select customer_key from intermediate.int_customers_versioned)""",
            [late["customer_id"]],
        ).fetchone()[0]
        late["calls"].append(_calls_check(con, late))

    # 3. A closed account buys again.
    with duckdb.connect(wh, read_only=True) as con:
        closed = con.execute(
            """select v.customer_id
               from intermediate.int_customers_versioned as v
               join marts.fct_customer_month as m on m.customer_id = v.customer_id
               where v.is_current and v.status = 'closed'
               group by v.customer_id
               having max(m.month) < '2024-03'
               order by v.customer_id
               limit 1"""
        ).fetchone()
    assert closed, "no account closed before March in the generated set"
    returning = closed[0]
    _add_a_purchase(landing, RETURN_DAY, returning)
    ingest(settings.warehouse, landing, days=[RETURN_DAY])
    # As in a warehouse whose last ingest predates raw._replaced_days (ingest creates it): the
    # builds from here on run without it.
    with duckdb.connect(wh) as con:
        con.execute("drop table raw._replaced_days")
    _build(settings, RETURN_DAY)
    with duckdb.connect(wh, read_only=True) as con:
        returned_months = [
            row[0]
            for row in con.execute(
                "select month from marts.fct_customer_month where customer_id = ? order by month", [returning]
            ).fetchall()
        ]
        incremental = con.execute(
            "select * from marts.fct_customer_month order by customer_id, month"
        ).fetchall()
        incremental_sales = con.execute("select * from marts.fct_sales order by sales_line_id").fetchall()
        incremental_contacts = con.execute("select * from marts.fct_contacts order by contact_id").fetchall()

    # 4. A full refresh of a copy.
    copy = _settings(tmp_path_factory.mktemp("customer_month_full"))
    copy.warehouse.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.warehouse, copy.warehouse)
    _build(copy, RETURN_DAY, full_refresh=True)
    with duckdb.connect(str(copy.warehouse), read_only=True) as con:
        full = con.execute("select * from marts.fct_customer_month order by customer_id, month").fetchall()
        full_sales = con.execute("select * from marts.fct_sales order by sales_line_id").fetchall()
        full_contacts = con.execute("select * from marts.fct_contacts order by contact_id").fetchall()

    # 5. As after an upgrade, before fct_customer_month ever read the facts' records: without its
    # marks it must rewrite every month (every row marked before loses its mark), to the same rows.
    with duckdb.connect(wh) as con:
        con.execute("update marts.fct_customer_month set complaints = -1")
        con.execute("delete from ops._fact_rewrite_reads where reader = 'fct_customer_month'")
    _build(settings, RETURN_DAY, select="fct_customer_month")
    with duckdb.connect(wh) as con:
        unmarked = {
            "marked_left": con.execute(
                "select count(*) from marts.fct_customer_month where complaints = -1"
            ).fetchone()[0],
            "rows": con.execute(
                "select * from marts.fct_customer_month order by customer_id, month"
            ).fetchall(),
            "reads": con.execute(
                "select model from ops._fact_rewrite_reads where reader = 'fct_customer_month' order by model"
            ).fetchall(),
        }

    return {
        "unmarked": unmarked,
        "next_day": next_day,
        "corrected": corrected,
        "before": before,
        "after": after,
        "high_water": high_water,
        "january": january,
        "emptied": emptied,
        "january_finance": finance,
        "receipt": receipt,
        "lost": [dropped["points"], moved["points"]],
        "balances_before": balances_before,
        "balances_after": balances_after,
        "returned_months": returned_months,
        "incremental": incremental,
        "full": full,
        "late": late,
        "incremental_sales": incremental_sales,
        "full_sales": full_sales,
        "incremental_contacts": incremental_contacts,
        "full_contacts": full_contacts,
    }


def test_one_more_day_rewrites_the_month_in_progress_not_older_months(runs: dict) -> None:
    seen = runs["next_day"]
    # April (the month in progress) was rewritten whole.
    assert seen["window_rows"] > 100
    assert seen["window_kept"] == 0
    # January and February were not: only customers the new day brought news about were
    # rewritten there, and most rows kept their mark.
    assert seen["old_rows"] > 200
    assert seen["old_rewritten_customers"] <= seen["new_day_customers"]
    assert seen["old_kept"] >= 0.8 * seen["old_rows"]
    # Nor March, where the window starts: besides those, only customers whose facts the
    # facts' runs rewrote there (on 03-31).
    assert seen["start_rows"] > 100
    assert seen["start_rewritten_customers"] <= seen["new_day_customers"] | seen["start_day_customers"]
    assert seen["start_kept"] >= 0.5 * seen["start_rows"]


def test_the_facts_record_the_days_they_rewrite_and_the_customer_months_they_deleted(runs: dict) -> None:
    records = runs["next_day"]["records"]
    window_start = NEXT_DAY - timedelta(days=LOOKBACK)
    # Each fact rewrote its window, every source, from its first day on (the new day named no
    # older day).
    assert records["days"] == [(fact, None, window_start, None) for fact in FACTS]
    # The customer months of the rows each deleted: those its rows on the days had before.
    assert [len(records["customers"][fact]) for fact in FACTS] == [53, 4, 41]
    for fact in FACTS:
        assert records["customers"][fact] == records["expected"][fact], fact
    # fct_customer_month, their only reader here, read them in its run: they are gone (the
    # removed reader's mark went first).
    assert records["reads"] == [("fct_customer_month", fact) for fact in FACTS]
    assert records["left"] == 0


def test_without_its_marks_it_rewrites_every_month_to_the_same_rows(runs: dict) -> None:
    unmarked = runs["unmarked"]
    assert unmarked["marked_left"] == 0
    assert unmarked["rows"] == runs["incremental"]
    assert unmarked["reads"] == [(fact,) for fact in FACTS]


def test_late_correction_to_an_old_month_is_picked_up(runs: dict) -> None:
    net_before, loaded_before = runs["before"]
    net_after, loaded_after = runs["after"]
    assert net_after == net_before + runs["corrected"]["unit_price"]
    # The row now carries the corrected file's load time: the new high-water mark.
    assert loaded_before <= runs["high_water"] < loaded_after
    snapshot, facts = runs["january"]
    assert snapshot == facts


def test_a_file_corrected_to_no_sales_takes_its_sales_away(runs: dict) -> None:
    # No row of the correction names the day: raw._replaced_days does.
    assert runs["emptied"]["lines_before"] > 0
    assert runs["emptied"]["lines_after"] == 0


def test_a_finance_file_corrected_to_no_rows_takes_its_month_away(runs: dict) -> None:
    # Customer months of January with finance figures, before and after the correction: no
    # finance row names the month any more, and raw._replaced_days does.
    before, after = runs["january_finance"]
    assert before > 100
    assert after == 0


def test_a_receipt_moved_to_another_customer_leaves_the_old_one(runs: dict) -> None:
    moved = runs["receipt"]
    assert moved["net"] > 0
    assert moved["after"][moved["from"]] == moved["before"][moved["from"]] - moved["net"]
    assert moved["after"][moved["to"]] == moved["before"][moved["to"]] + moved["net"]


def test_a_late_customer_version_rekeys_the_sales_it_covers_until_it_is_corrected_away(runs: dict) -> None:
    # Every sale of the customer from the late version on points at it, as in a full build.
    ((same, lines),) = runs["late"]["keys"]
    assert same is True and lines >= 5
    # Once the version is corrected away, no sale keeps its key.
    assert runs["late"]["dangling"] == 0
    assert len(runs["incremental_sales"]) > 300
    assert runs["incremental_sales"] == runs["full_sales"]


def test_a_late_version_that_takes_a_phone_takes_its_calls_until_it_is_corrected_away(runs: dict) -> None:
    # The calls from the other customer's phone move to the late version's customer, and back
    # when the version is corrected away: both customers' months count them where they are.
    took, gave_back = runs["late"]["calls"]
    assert took["by_phone"] >= 1 and took["stale"] == 0 and took["months_off"] == 0
    assert gave_back == {"stale": 0, "by_phone": 0, "months_off": 0}
    assert len(runs["incremental_contacts"]) > 500
    assert runs["incremental_contacts"] == runs["full_contacts"]


def test_a_points_entry_dropped_or_moved_away_leaves_every_later_balance(runs: dict) -> None:
    for before, after, points in zip(
        runs["balances_before"], runs["balances_after"], runs["lost"], strict=True
    ):
        assert len(before) >= 4  # January to April
        assert [month for month, _ in after] == [month for month, _ in before]
        assert [balance for _, balance in after] == [balance - points for _, balance in before]


def test_late_return_of_a_closed_account_reopens_its_months(runs: dict) -> None:
    months = runs["returned_months"]
    # Contiguous from the first month to April: March and any month after the closing one,
    # older than the window (April), were written.
    assert months[-1] == "2024-04"
    assert "2024-03" in months
    first = date.fromisoformat(months[0] + "-01")
    expected = []
    while first <= date(2024, 4, 1):
        expected.append(first.strftime("%Y-%m"))
        first = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    assert months == expected


def test_incremental_by_month_equals_full_refresh(runs: dict) -> None:
    assert len(runs["incremental"]) > 500
    assert runs["incremental"] == runs["full"]
