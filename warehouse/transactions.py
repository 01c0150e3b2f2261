"""Bring your own data: load a plain transaction log into ``raw.transactions``.

The mining code needs only who bought, when and for how much. A user's export (or the real
CDNOW sample, whitespace separated without a header) goes through the same guarantees as the
landed sources: the file is recorded in ``raw._files`` (same hash: skipped; new hash: its rows
replaced), bad rows go to ``raw._quarantine`` with a reason, and it all commits at once.
"""

from __future__ import annotations

from pathlib import Path

import click

from warehouse.contracts import Source
from warehouse.ingest import (
    FileResult,
    commit_batch,
    connect,
    current_versions,
    drop_stage,
    fill_raw_text,
    load_lines,
    new_run_id,
    next_file_id,
    read_entry,
    register_batch,
    sql_str,
    stage_csv,
)
from warehouse.raw_schema import TRANSACTION_COLUMNS, quote

WHITESPACE = "whitespace"


def _file_columns(con, delimiter: str, header: bool) -> list[str]:
    """The file's column names: its header, or column1..columnN from the first line."""
    row = con.execute("select t from _lines where trim(t) <> '' order by line limit 1").fetchone()
    first = row[0] if row else ""
    fields = (
        first.split() if delimiter == WHITESPACE else [f.strip().strip('"') for f in first.split(delimiter)]
    )
    if header:
        return [f or f"column{i + 1}" for i, f in enumerate(fields)]
    return [f"column{i + 1}" for i in range(len(fields))]


def _resolve(spec: str, columns: list[str], path: Path, option: str) -> str:
    """A column given by name or by 1-based position."""
    if spec in columns:
        return spec
    if spec.isdigit() and 1 <= int(spec) <= len(columns):
        return columns[int(spec) - 1]
    raise click.BadParameter(
        f"{path}: no column {spec!r}; the file has {columns} (give a name, or a 1-based position)",
        param_hint=option,
    )


def _stage_whitespace(con, columns: list[str], header: bool) -> None:
    """``_stage`` for fields separated by runs of whitespace (leading blanks ignored)."""
    first = 2 if header else 1
    picks = ", ".join(f"f[{i + 1}] as {quote('c_' + c)}" for i, c in enumerate(columns))
    drop_stage(con)
    con.execute(
        f"""
        create or replace temp table _stage as
        select file_id, line, raw_text,
               case when len(f) <> {len(columns)} then 'expected {len(columns)} fields, found ' || len(f) end as parse_error,
               {picks}
        from (select file_id, line, t as raw_text, string_split_regex(trim(t), '\\s+') as f
              from _lines where line >= {first} and trim(t) <> '')
        """
    )


def ingest_transactions(
    warehouse: Path,
    file: Path,
    customer_col: str,
    date_col: str,
    amount_col: str,
    date_format: str | None = None,
    delimiter: str = ",",
    header: bool = True,
    run_id: str | None = None,
) -> dict:
    """Load ``file`` into ``raw.transactions(customer_id, txn_date, amount)`` + lineage.

    Columns are named or 1-based positions. Without ``date_format`` a date is ISO
    (YYYY-MM-DD, or a timestamp) or YYYYMMDD.
    """
    file = Path(file).resolve()
    run_id = run_id or new_run_id()
    source = Source(
        name="transactions",
        format="csv",
        encoding="utf-8",
        columns=TRANSACTION_COLUMNS,
        key=("customer_id",),
        grain="one row per purchase of a user-provided transaction log",
    )
    con = connect(Path(warehouse).resolve())
    try:
        known = current_versions(con, "transactions")
        entry = read_entry(source, file, str(file), None, known, iter([next_file_id(con)]))
        if isinstance(entry, FileResult):
            return vars(entry)
        register_batch(con, [entry])
        load_lines(con, [entry])
        if entry.error is None:
            columns = _file_columns(con, delimiter, header)
            cust, day, amount = (
                _resolve(spec, columns, file, opt)
                for spec, opt in (
                    (customer_col, "--customer-col"),
                    (date_col, "--date-col"),
                    (amount_col, "--amount-col"),
                )
            )
            if delimiter == WHITESPACE:
                _stage_whitespace(con, columns, header)
            else:
                as_source = Source(
                    "transactions", "csv", "utf-8", tuple((c, "VARCHAR") for c in columns), (), ""
                )
                stage_csv(con, as_source, [entry], delim=delimiter, header=header)
        if entry.error is None:
            _classify(con, cust, day, amount, date_format)
            fill_raw_text(con, [entry])
        else:
            con.execute(
                "create or replace temp table _typed as select null::bigint as file_id, null::bigint as line,"
                " null::varchar as raw_text, null::varchar as reason, null::varchar as detail,"
                " null::varchar as t_customer_id, null::date as t_txn_date, null::double as t_amount where false"
            )
        [result] = commit_batch(con, source, [entry], run_id)
    finally:
        con.close()
    return vars(result)


def _classify(con, cust: str, day: str, amount: str, date_format: str | None) -> None:
    """``_typed`` in the shape ``commit_file`` expects: line, raw_text, reason, detail, r."""
    c, d, a = (f"nullif(trim({quote('c_' + x)}), '')" for x in (cust, day, amount))
    if date_format:
        parsed = f"try_strptime({d}, {sql_str(date_format)})::date"
        date_hint = f"a date in format {date_format}"
    else:
        parsed = f"coalesce(try_cast({d} as date), try_cast({d} as timestamp)::date, try_strptime({d}, '%Y%m%d')::date)"
        date_hint = "a date (YYYY-MM-DD or YYYYMMDD; pass --date-format)"
    con.execute(
        f"""
        create or replace temp table _typed as
        with v as (select file_id, line, raw_text, parse_error, {c} as c, {d} as d, {parsed} as txn_date, {a} as a,
                          try_cast({a} as double) as amount from _stage)
        select file_id, line, raw_text,
               case when parse_error is not null then 'parse'
                    when c is null then 'missing key'
                    when txn_date is null or amount is null then 'type' end as reason,
               case when parse_error is not null then parse_error
                    when c is null then {sql_str(f"empty customer id in column {cust}")}
                    when txn_date is null then {sql_str(f"{day}=")} || coalesce(d, '(empty)') || {sql_str(f" is not {date_hint}")}
                    when amount is null then {sql_str(f"{amount}=")} || coalesce(a, '(empty)') || ' is not a number'
               end as detail,
               c as t_customer_id, txn_date as t_txn_date, amount as t_amount
        from v
        """
    )


@click.command("ingest-transactions")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--customer-col", required=True, help="Customer id column: a name or 1-based position.")
@click.option("--date-col", required=True, help="Purchase date column: a name or 1-based position.")
@click.option("--amount-col", required=True, help="Amount column: a name or 1-based position.")
@click.option("--date-format", help="strptime format of the date (default: ISO, or YYYYMMDD).")
@click.option(
    "--delimiter", default=",", show_default=True, help="Field separator, or 'whitespace' (runs of spaces)."
)
@click.option("--no-header", is_flag=True, help="The file has no header row (refer to columns by position).")
def command(
    file: Path,
    customer_col: str,
    date_col: str,
    amount_col: str,
    date_format: str | None,
    delimiter: str,
    no_header: bool,
) -> None:
    """Load a plain transaction log (customer, date, amount) into raw.transactions for mining.

    Example, the CDNOW sample: crmwh ingest-transactions CDNOW_sample.txt --delimiter whitespace
    --no-header --customer-col 1 --date-col 3 --amount-col 5 --date-format %Y%m%d
    """
    from warehouse.config import load_settings

    delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)
    settings = load_settings()
    r = ingest_transactions(
        settings.warehouse, file, customer_col, date_col, amount_col, date_format, delimiter, not no_header
    )
    click.echo(
        f"{r['status']}: {r['path']}  read={r['rows_read']} loaded={r['rows_loaded']}"
        f" quarantined={r['rows_quarantined']}" + (f"  ({r['detail']})" if r["detail"] else "")
    )
