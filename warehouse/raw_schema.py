"""The raw layer's tables, derived from the source contracts.

Every raw table is a contract's columns in file order with the declared DuckDB types, then the
lineage columns that tie each row to the file and line it came from. The bookkeeping tables
(``_files``, ``_quarantine``, ``_replaced_days``, ``_validation``) are what lets a data
engineer answer "was this file loaded, once, and where did each of its rows go?". Tables are created if missing, so this
runs at the start of every ingest; a ``_files`` made before ``validated_by`` (the run whose raw
suite passed the file's rows) gains the column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from expectations.runner import VALIDATION_DDL
from warehouse.contracts import LINEAGE_COLUMNS, SOURCES, Nested, Source

if TYPE_CHECKING:
    import duckdb

SCHEMA = "raw"

FILES_DDL = f"""
create table if not exists {SCHEMA}._files (
    file_id bigint primary key,
    source varchar not null,
    path varchar not null,
    dt date,
    sha256 varchar not null,
    bytes bigint not null,
    rows_read bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    status varchar not null,
    run_id varchar,
    loaded_at timestamp,
    detail varchar,
    validated_by varchar
)"""

QUARANTINE_DDL = f"""
create table if not exists {SCHEMA}._quarantine (
    file_id bigint,
    source varchar,
    path varchar,
    line bigint,
    raw_text varchar,
    reason varchar,
    detail varchar,
    run_id varchar
)"""

# The days a correction took rows away from: for each replaced file, the distinct days of its
# rows' timestamps (for finance_monthly, which has none, its months' first days; for web_events,
# those of every event of their sessions), written as the correction loads (replaced_at = the
# correction's _loaded_at). The incremental models rewrite those days, which no row loaded with
# the correction may name (a file corrected to fewer rows, or to none).
REPLACED_DAYS_DDL = f"""
create table if not exists {SCHEMA}._replaced_days (
    file_id bigint,
    source varchar,
    day date,
    replaced_at timestamp
)"""

# raw._validation has the shape every suite writes (expectations/runner.py owns it).


# raw.transactions: a plain transaction log brought by the user (crmwh ingest-transactions).
TRANSACTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("customer_id", "VARCHAR"),
    ("txn_date", "DATE"),
    ("amount", "DOUBLE"),
)


def quote(name: str) -> str:
    """A safely quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def nested_columns(source: Source, nested: Nested) -> tuple[tuple[str, str], ...]:
    """The columns of a nested child table: the parent's key, ``line_no``, the child's fields."""
    parent = tuple((k, source.column_type(k)) for k in source.key)
    return parent + (("line_no", "INTEGER"),) + nested.columns


def table_ddl(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    cols = [f"{quote(n)} {t}" for n, t in columns + LINEAGE_COLUMNS]
    return f"create table if not exists {SCHEMA}.{quote(table)} (\n    " + ",\n    ".join(cols) + "\n)"


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema ``raw`` and every raw table that does not exist yet."""
    con.execute(f"create schema if not exists {SCHEMA}")
    for ddl in (FILES_DDL, QUARANTINE_DDL, REPLACED_DAYS_DDL, VALIDATION_DDL.format(schema=SCHEMA)):
        con.execute(ddl)
    con.execute(f"alter table {SCHEMA}._files add column if not exists validated_by varchar")
    for source in SOURCES.values():
        con.execute(table_ddl(source.name, source.columns))
        for nested in source.nested:
            con.execute(table_ddl(nested.table, nested_columns(source, nested)))
    con.execute(table_ddl("transactions", TRANSACTION_COLUMNS))
