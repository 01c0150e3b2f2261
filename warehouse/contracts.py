"""The source contracts of ``shared/spec/SOURCES.md``, as data.

One declaration per source system. The generator writes files from these declarations, the
loader reads files through them, the raw-layer expectations are derived from them. Adding a
source is adding a declaration here, not new code.

Conventions every source shares (SOURCES.md):

- Files land at ``<landing>/<source>/dt=YYYY-MM-DD/<file>``; ``dt`` is the delivery date.
- CSV: comma separated, ``"`` quoting, a header row, ``\\n`` line ends. Empty field = NULL.
- JSON Lines: one object per line; a missing key or ``null`` is NULL.
- Times are local Asia/Seoul. Values with an offset (ISO 8601 ``+09:00``) are converted to
  Asia/Seoul local time on load; the raw layer stores ``TIMESTAMP`` (local, no zone).
- Money is integer KRW (``BIGINT``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

LOCAL_TZ = "Asia/Seoul"
LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_file_id", "BIGINT"),
    ("_line", "BIGINT"),
    ("_loaded_at", "TIMESTAMP"),
    ("_run_id", "VARCHAR"),
)


@dataclass(frozen=True)
class Nested:
    """A JSON field holding a list of objects, loaded into its own raw table.

    ``raw.<table>`` gets the parent's key columns, ``line_no`` (1-based position in the list)
    and the declared child columns, plus lineage pointing at the parent's file and line.
    """

    field: str
    table: str
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Match:
    """How a source's rows without customer_id find their customer (dbt's identity stitching):
    the customer of ``source`` whose ``by`` has the digits of the row's ``column``."""

    column: str
    source: str
    by: str


@dataclass(frozen=True)
class Source:
    name: str
    format: str  # "csv" | "jsonl"
    encoding: str  # "utf-8" | "cp949"
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type) in file order
    key: tuple[str, ...]
    grain: str
    # How one delivery relates to the others:
    #   "event": each row is a new fact; "versioned": rows are versions, the latest
    #   ``version_column`` wins; "snapshot": every delivery is the full table, latest dt wins.
    kind: str = "event"
    version_column: str | None = None
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Inclusive plausible ranges, checked by expectations (out-of-range rows load, and warn).
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Columns that identify a person: they stay in the raw layer, never in published marts.
    pii: tuple[str, ...] = ()
    # Free text: kept raw, never published.
    free_text: tuple[str, ...] = ()
    # strptime formats for columns that are not ISO 8601.
    time_formats: dict[str, str] = field(default_factory=dict)
    nested: tuple[Nested, ...] = ()
    # The column whose value says which business day a row belongs to (freshness checks).
    event_time: str | None = None
    # A 'YYYY-MM' column naming the month a row belongs to, for a source without a timestamp:
    # a correction records the month's first day as a replaced day (ingest._record_replaced_days).
    month_column: str | None = None
    # Rows sharing this column's value make one record downstream, and may come in several
    # files (web_events: a session crossing midnight): a correction that deletes some of them
    # records the days of all of them as replaced days.
    group_column: str | None = None
    # Rows without customer_id belong to the customer a Match finds: a file of Match.source
    # that gives the value to a customer or takes it away (a new customer, a changed or
    # reassigned number, a version corrected away) records the days of those rows as replaced
    # days (ingest._record_rematched_days).
    matched_by: Match | None = None
    # File name inside the dt= folder; {day} is YYYYMMDD, other fields are filled by the writer.
    file_pattern: str = "{source}_{day}.csv"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def column_type(self, name: str) -> str:
        return dict(self.columns)[name]


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """Parse ``"a:T, b:U"`` into ``(("a", "T"), ("b", "U"))`` (types may hold spaces)."""
    out = []
    # Split on commas outside parentheses, so STRUCT(a T, b U) stays one type.
    for part in re.split(r",(?![^()]*\))", spec):
        name, _, typ = part.strip().partition(":")
        out.append((name.strip(), typ.strip() or "VARCHAR"))
    return tuple(out)


YN = ("Y", "N")
SALES_CHANNELS = ("web", "app")
CAMPAIGN_CHANNELS = ("email", "sms", "kakao", "direct_mail", "telemarketing", "app_push")

SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            name="customers",
            format="csv",
            encoding="utf-8",
            columns=_cols(
                "customer_id, name, phone, email, birth_date:DATE, gender, household_size:INTEGER,"
                " income_band, education, occupation, region, city, signup_date:DATE, signup_channel,"
                " marketing_opt_in, status, closed_at:DATE, updated_at:TIMESTAMP"
            ),
            key=("customer_id", "updated_at"),
            grain="one row per customer version; a daily delta of new and changed customers",
            kind="versioned",
            version_column="updated_at",
            enums={"gender": ("M", "F", "U"), "marketing_opt_in": YN, "status": ("active", "closed")},
            ranges={"household_size": (1, 10)},
            pii=("name", "phone", "email"),
            event_time="updated_at",
        ),
        Source(
            name="products",
            format="csv",
            encoding="utf-8",
            columns=_cols(
                "sku, product_name, category, subcategory, brand, unit_cost:BIGINT, list_price:BIGINT,"
                " updated_at:TIMESTAMP"
            ),
            key=("sku",),
            grain="one row per product; every delivery is the full catalogue",
            kind="snapshot",
            ranges={"unit_cost": (0, 100_000_000), "list_price": (0, 100_000_000)},
        ),
        Source(
            name="stores",
            format="csv",
            encoding="utf-8",
            columns=_cols("store_id, store_name, region, city, format, opened_at:DATE"),
            key=("store_id",),
            grain="one row per store; every delivery is the full list",
            kind="snapshot",
        ),
        Source(
            name="staff",
            format="csv",
            encoding="utf-8",
            columns=_cols("staff_id, staff_name, role, team, region, hired_at:DATE"),
            key=("staff_id",),
            grain="one row per sales rep or call-center agent; every delivery is the full list",
            kind="snapshot",
            enums={"role": ("sales_rep", "agent")},
        ),
        Source(
            name="pos_sales",
            format="csv",
            encoding="cp949",
            columns=_cols(
                "receipt_no, line_no:INTEGER, store_id, sold_at:TIMESTAMP, customer_id, sku, qty:INTEGER,"
                " unit_price:BIGINT, discount_amt:BIGINT, pay_method, rep_id"
            ),
            key=("store_id", "receipt_no", "line_no"),
            grain="one row per receipt line; qty < 0 is a return; empty customer_id is a non-member",
            enums={"pay_method": ("CARD", "CASH", "POINT", "TRANSFER")},
            ranges={"qty": (-100, 100), "unit_price": (0, 50_000_000), "discount_amt": (0, 50_000_000)},
            time_formats={"sold_at": "%Y%m%d%H%M%S"},
            event_time="sold_at",
            file_pattern="pos_{store_id}_{day}.csv",
        ),
        Source(
            name="online_orders",
            format="jsonl",
            encoding="utf-8",
            columns=_cols(
                "order_id, customer_id, ordered_at:TIMESTAMP, channel, device, status, coupon_code,"
                " payment:STRUCT(method VARCHAR, installment_months INTEGER), updated_at:TIMESTAMP"
            ),
            key=("order_id", "updated_at"),
            grain="one row per order version; the latest updated_at wins",
            kind="versioned",
            version_column="updated_at",
            enums={"channel": SALES_CHANNELS, "status": ("paid", "cancelled", "returned")},
            nested=(
                Nested(
                    field="lines",
                    table="online_order_lines",
                    columns=_cols("sku, qty:INTEGER, unit_price:BIGINT, discount_amt:BIGINT"),
                ),
            ),
            event_time="ordered_at",
            file_pattern="{source}_{day}.jsonl",
        ),
        Source(
            name="web_events",
            format="jsonl",
            encoding="utf-8",
            columns=_cols(
                "event_id, ts:TIMESTAMP, anonymous_id, customer_id, session_id, channel, event_type, page,"
                " referrer_domain, utm_source, utm_medium, utm_campaign, device"
            ),
            key=("event_id",),
            grain="one row per clickstream event; customer_id is null until the visitor logs in",
            enums={
                "channel": SALES_CHANNELS,
                "event_type": ("page_view", "search", "product_view", "add_to_cart", "checkout", "login"),
            },
            event_time="ts",
            group_column="session_id",
            file_pattern="{source}_{day}.jsonl",
        ),
        Source(
            name="call_center",
            format="csv",
            encoding="utf-8",
            columns=_cols(
                "call_id, caller_phone, customer_id, agent_id, started_at:TIMESTAMP, ended_at:TIMESTAMP,"
                " direction, reason, resolution, csat:INTEGER, summary"
            ),
            key=("call_id",),
            grain="one row per call; customer_id is often empty and is matched by caller_phone",
            enums={
                "direction": ("inbound", "outbound"),
                "reason": ("order", "delivery", "billing", "product", "complaint", "cancel", "other"),
                "resolution": ("resolved", "unresolved", "escalated"),
            },
            ranges={"csat": (1, 5)},
            pii=("caller_phone",),
            free_text=("summary",),
            event_time="started_at",
            matched_by=Match("caller_phone", "customers", "phone"),
        ),
        Source(
            name="campaigns",
            format="csv",
            encoding="utf-8",
            columns=_cols(
                "campaign_id, campaign_name, channel, objective, start_date:DATE, end_date:DATE,"
                " budget_krw:BIGINT, unit_cost_krw:BIGINT, control_share:DOUBLE"
            ),
            key=("campaign_id",),
            grain="one row per campaign, delivered when it is planned",
            enums={
                "channel": CAMPAIGN_CHANNELS,
                "objective": ("acquisition", "retention", "winback", "cross_sell", "upsell"),
            },
            ranges={"control_share": (0, 1), "budget_krw": (0, 10_000_000_000)},
        ),
        Source(
            name="campaign_touches",
            format="csv",
            encoding="utf-8",
            columns=_cols(
                "touch_id, campaign_id, customer_id, assigned_group, sent_at:TIMESTAMP, delivered,"
                " opened_at:TIMESTAMP, clicked_at:TIMESTAMP, unsubscribed_at:TIMESTAMP, cost_krw:BIGINT"
            ),
            key=("touch_id",),
            grain="one row per targeted customer and campaign; sent_at is empty for the control group",
            enums={"assigned_group": ("treatment", "control"), "delivered": YN},
            ranges={"cost_krw": (0, 100_000)},
            event_time="sent_at",
        ),
        Source(
            name="sales_activities",
            format="jsonl",
            encoding="utf-8",
            columns=_cols(
                "activity_id, rep_id, customer_id, ts:TIMESTAMP, activity_type, outcome,"
                " duration_min:INTEGER, note"
            ),
            key=("activity_id",),
            grain="one row per sales-rep activity with a customer",
            enums={
                "activity_type": ("visit", "call", "meeting", "email"),
                "outcome": ("no_contact", "contacted", "opportunity", "won", "lost"),
            },
            ranges={"duration_min": (0, 600)},
            free_text=("note",),
            event_time="ts",
            file_pattern="{source}_{day}.jsonl",
        ),
        Source(
            name="voc",
            format="jsonl",
            encoding="utf-8",
            columns=_cols(
                "voc_id, customer_id, received_at:TIMESTAMP, channel, voc_type, category,"
                " severity:INTEGER, text, status, resolved_at:TIMESTAMP, compensation_krw:BIGINT,"
                " updated_at:TIMESTAMP"
            ),
            key=("voc_id", "updated_at"),
            grain="one row per voice-of-customer case version; the latest updated_at wins",
            kind="versioned",
            version_column="updated_at",
            enums={
                "channel": ("call", "web", "app", "store", "email"),
                "voc_type": ("complaint", "inquiry", "suggestion", "praise"),
                "category": ("product", "delivery", "price", "service", "staff", "billing", "app"),
                "status": ("open", "in_progress", "resolved", "closed"),
            },
            ranges={"severity": (1, 3), "compensation_krw": (0, 10_000_000)},
            free_text=("text",),
            event_time="received_at",
            file_pattern="{source}_{day}.jsonl",
        ),
        Source(
            name="surveys",
            format="csv",
            encoding="utf-8",
            columns=_cols(
                "response_id, customer_id, survey_type, responded_at:TIMESTAMP, score:INTEGER,"
                " touchpoint, comment"
            ),
            key=("response_id",),
            grain="one row per survey response (NPS 0-10 or CSAT 1-5)",
            enums={
                "survey_type": ("nps", "csat"),
                "touchpoint": ("store", "online", "call", "delivery"),
            },
            ranges={"score": (0, 10)},
            free_text=("comment",),
            event_time="responded_at",
        ),
        Source(
            name="finance_monthly",
            format="csv",
            encoding="utf-8",
            columns=_cols(
                "month, customer_id, revenue_krw:BIGINT, cogs_krw:BIGINT, cost_to_serve_krw:BIGINT,"
                " credit_grade:INTEGER, credit_limit_krw:BIGINT, outstanding_krw:BIGINT,"
                " days_past_due:INTEGER"
            ),
            key=("month", "customer_id"),
            grain="one row per customer and month, delivered early in the following month",
            ranges={"credit_grade": (1, 10), "days_past_due": (0, 365)},
            month_column="month",
            file_pattern="{source}_{month}.csv",
        ),
        Source(
            name="loyalty_points",
            format="csv",
            encoding="utf-8",
            columns=_cols("entry_id, customer_id, ts:TIMESTAMP, points:BIGINT, reason, order_ref"),
            key=("entry_id",),
            grain="one row per points-ledger entry (signed)",
            enums={"reason": ("earn", "redeem", "expire", "bonus", "adjust")},
            event_time="ts",
        ),
        Source(
            name="referrals",
            format="csv",
            encoding="utf-8",
            columns=_cols(
                "referral_id, referrer_customer_id, referred_customer_id, referred_at:TIMESTAMP,"
                " channel, converted_at:TIMESTAMP"
            ),
            key=("referral_id",),
            grain=(
                "one row per referral; re-delivered once the referred person signs up (latest delivery wins)"
            ),
            kind="versioned",
            event_time="referred_at",
        ),
    ]
}


def landing_dir(landing: Path, source: str, day: date) -> Path:
    """The folder one source's files for one delivery date land in."""
    return landing / source / f"dt={day.isoformat()}"


def delivery_date(path: Path) -> date | None:
    """The ``dt=`` partition a landed file sits in, or None when the path has none."""
    for part in reversed(path.parts):
        if part.startswith("dt="):
            return date.fromisoformat(part[3:])
    return None
