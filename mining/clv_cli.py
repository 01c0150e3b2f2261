"""``crmwh clv``: fit the lifetime-value models to any transaction file, for analysts.

Why a file and not the warehouse: analysts validate the models on reference data (the CDNOW
sample of the papers) and on extracts before trusting the scores the pipeline writes, so the
command reads a delimited file, summarizes it as of a calibration date, fits BG/NBD, Pareto/NBD
and (with an amount column) Gamma-Gamma, and with a holdout compares predicted and actual
purchases, the test the papers use.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

DELIMITERS = {"comma": ",", "tab": "\t", "semicolon": ";", "pipe": "|"}


def _sniff_delimiter(path: Path) -> str | None:
    """',', ';', tab or '|' if every one of the first lines holds it equally often, else None
    (whitespace-separated columns)."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        lines = [line.rstrip("\n") for _, line in zip(range(50), handle, strict=False) if line.strip()]
    for candidate in (",", "\t", ";", "|"):
        counts = {line.count(candidate) for line in lines}
        if lines and len(counts) == 1 and counts.pop() > 0:
            return candidate
    return None


def read_transactions(
    path: Path, delimiter: str = "auto", header: bool = True, columns: list[str] | None = None
) -> Any:
    """Read a delimited file with every column as text (ids keep their leading zeros)."""
    import pandas as pd

    if delimiter == "auto":
        sep = _sniff_delimiter(path)
    elif delimiter == "whitespace":
        sep = None
    else:
        sep = DELIMITERS.get(delimiter, delimiter)
    options: dict[str, Any] = {"dtype": str, "keep_default_na": False, "skipinitialspace": True}
    if sep is None:
        options["sep"] = r"\s+"
    else:
        options["sep"] = sep
    if columns:
        options["names"] = columns
        options["header"] = 0 if header else None
    elif not header:
        options["header"] = None
    try:
        frame = pd.read_csv(path, **options)
    except (pd.errors.ParserError, ValueError) as exc:
        raise click.ClickException(
            f"{path}: cannot be read as a {'whitespace' if sep is None else repr(sep)}-separated file ({exc});"
            " set --delimiter"
        ) from exc
    if not header and not columns:
        frame.columns = [str(i + 1) for i in range(frame.shape[1])]
    return frame


def _resolve(frame: Any, ref: str | None, option: str, path: Path) -> str | None:
    """A column by name, or by 1-based position when the name is a number that is not a column."""
    if ref is None:
        return None
    if ref in frame.columns:
        return ref
    if ref.isdigit() and 1 <= int(ref) <= frame.shape[1]:
        return str(frame.columns[int(ref) - 1])
    raise click.ClickException(
        f"{path}: {option} {ref!r} is neither a column ({', '.join(map(str, frame.columns))})"
        f" nor a position 1..{frame.shape[1]}; name the columns with --columns if the file has no header"
    )


def _first_bad(mask: Any, frame: Any, column: str, path: Path, header: bool, what: str) -> None:
    if mask.any():
        row = int(mask.to_numpy().nonzero()[0][0])
        line = row + 1 + (1 if header else 0)
        raise click.ClickException(
            f"{path}: line {line}, column {column!r}: {frame[column].iloc[row]!r} {what}"
        )


def _parse(
    frame: Any, path: Path, header: bool, date_col: str, amount_col: str | None, date_format: str | None
):
    import pandas as pd

    dates = pd.to_datetime(frame[date_col], format=date_format, errors="coerce")
    _first_bad(
        dates.isna(),
        frame,
        date_col,
        path,
        header,
        f"is not a date{' in format ' + date_format if date_format else ''}: fix it or pass --date-format",
    )
    frame = frame.assign(**{date_col: dates})
    if amount_col:
        amounts = pd.to_numeric(frame[amount_col].str.replace(",", "", regex=False), errors="coerce")
        _first_bad(amounts.isna(), frame, amount_col, path, header, "is not a number: fix or drop the row")
        frame = frame.assign(**{amount_col: amounts})
    return frame


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def fit_file(
    path: Path,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    calibration_end: str,
    holdout_end: str | None = None,
    period: str = "week",
    date_format: str | None = None,
    delimiter: str = "auto",
    header: bool = True,
    columns: list[str] | None = None,
    horizon: int = 52,
    discount_rate: float | None = None,
    output: Path | None = None,
) -> dict[str, Any]:
    """Fit the models on a transaction file and return the report printed by ``crmwh clv fit``."""
    import numpy as np
    import pandas as pd

    from mining import clv
    from warehouse.config import load_settings

    frame = read_transactions(path, delimiter, header, columns)
    customer_col = _resolve(frame, customer_col, "--customer-col", path)
    date_col = _resolve(frame, date_col, "--date-col", path)
    amount_col = _resolve(frame, amount_col, "--amount-col", path)
    frame = _parse(frame, path, header, date_col, amount_col, date_format)
    try:
        summary = clv.summarize(
            frame, customer_col, date_col, amount_col, calibration_end, holdout_end, period=period
        )
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    if summary.empty:
        raise click.ClickException(f"{path}: no customer purchased on or before {calibration_end}")
    x, t_x, T = summary["frequency"], summary["recency"], summary["T"]
    bg = clv.fit_bgnbd(x, t_x, T)
    pn = clv.fit_pareto_nbd(x, t_x, T)
    models: dict[str, Any] = {
        "bgnbd": {**bg.params(), "log_likelihood": bg.log_likelihood},
        "pareto_nbd": {**pn.params(), "log_likelihood": pn.log_likelihood},
    }
    report: dict[str, Any] = {
        "transactions": {
            "file": str(path),
            "rows": int(len(frame)),
            "customers": int(frame[customer_col].nunique()),
            "calibration_customers": int(len(summary)),
            "repeat_buyers": int((x > 0).sum()),
        },
        "calibration_end": summary.attrs["calibration_end"],
        "holdout_end": holdout_end,
        "period": period,
        "models": models,
    }
    per_customer = summary.drop(columns=["first_purchase"]).copy()
    for name, model in (("bgnbd", bg), ("pareto_nbd", pn)):
        per_customer[f"p_alive_{name}"] = model.p_alive(x, t_x, T)
    if holdout_end is not None:
        periods = summary.attrs["holdout_periods"]
        actual = summary["n_holdout"].to_numpy(dtype=float)
        holdout: dict[str, Any] = {"periods": periods, "actual_total": int(actual.sum())}
        buckets = np.minimum(x.to_numpy(), 7)
        by_freq = pd.DataFrame({"frequency": buckets, "actual": actual})
        for name, model in (("bgnbd", bg), ("pareto_nbd", pn)):
            predicted = model.expected_purchases(periods, x, t_x, T)
            per_customer[f"expected_holdout_{name}"] = predicted
            by_freq[name] = predicted
            holdout[name] = {
                "predicted_total": _finite(predicted.sum()),
                "correlation": _finite(np.corrcoef(predicted, actual)[0, 1]),
                "mean_absolute_error": _finite(np.abs(predicted - actual).mean()),
            }
        table = by_freq.groupby("frequency").agg(
            customers=("actual", "size"),
            actual=("actual", "mean"),
            bgnbd=("bgnbd", "mean"),
            pareto_nbd=("pareto_nbd", "mean"),
        )
        holdout["by_frequency"] = [
            {
                "frequency": ("7+" if f == 7 else int(f)),
                "customers": int(row["customers"]),
                **{k: _finite(row[k]) for k in ("actual", "bgnbd", "pareto_nbd")},
            }
            for f, row in table.iterrows()
        ]
        report["holdout"] = holdout
    if amount_col:
        gg = clv.fit_gamma_gamma(x, summary["monetary_value"])
        models["gamma_gamma"] = {
            **gg.params(),
            "log_likelihood": gg.log_likelihood,
            "customers": gg.n_customers,
        }
        if discount_rate is None:
            monthly = load_settings().clv_monthly_discount_rate
            discount_rate = (1 + monthly) ** (clv.PERIOD_DAYS[period] / clv.PERIOD_DAYS["month"]) - 1
        values = clv.clv(bg, gg, x, t_x, T, summary["monetary_value"], horizon, discount_rate)
        per_customer = per_customer.join(values[["expected_spend", "clv", "clv_p10", "clv_p90"]])
        report["clv"] = {
            "model": "bgnbd + gamma_gamma",
            "horizon_periods": horizon,
            "discount_rate_per_period": discount_rate,
            "total": _finite(values["clv"].sum()),
            "mean": _finite(values["clv"].mean()),
            "median": _finite(values["clv"].median()),
        }
    if output is not None:
        per_customer.to_csv(output)
        report["output"] = str(output)
    return report


def _print_text(report: dict[str, Any]) -> None:
    t = report["transactions"]
    click.echo(
        f"{t['file']}: {t['rows']} rows, {t['calibration_customers']} customers by {report['calibration_end']}"
        f" ({t['repeat_buyers']} repeat buyers), period {report['period']}"
    )
    for name, params in report["models"].items():
        shown = ", ".join(
            f"{k}={v:.4f}" for k, v in params.items() if k not in ("log_likelihood", "customers")
        )
        click.echo(f"  {name:11} {shown}  LL={params['log_likelihood']:.2f}")
    if "holdout" in report:
        h = report["holdout"]
        click.echo(
            f"holdout to {report['holdout_end']} ({h['periods']:.2f} periods): {h['actual_total']} purchases"
        )
        for name in ("bgnbd", "pareto_nbd"):
            click.echo(
                f"  {name:11} predicted {h[name]['predicted_total']:.1f}, correlation {h[name]['correlation']:.3f}"
            )
    if "clv" in report:
        c = report["clv"]
        click.echo(
            f"CLV over {c['horizon_periods']} periods at {c['discount_rate_per_period']:.5f}/period:"
            f" total {c['total']:.2f}, mean {c['mean']:.2f}"
        )


@click.group("clv")
def command() -> None:
    """Customer lifetime value: BG/NBD, Pareto/NBD and Gamma-Gamma models."""


@command.command("fit")
@click.option(
    "--transactions", "path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--customer-col", required=True, help="Customer column: a name, or a 1-based position.")
@click.option("--date-col", required=True, help="Purchase date column: a name, or a 1-based position.")
@click.option("--amount-col", default=None, help="Transaction value column (enables Gamma-Gamma and CLV).")
@click.option("--date-format", default=None, help="strftime format of the dates, e.g. %Y%m%d (default: ISO).")
@click.option(
    "--delimiter",
    default="auto",
    show_default=True,
    help="auto, whitespace, comma, tab, semicolon, pipe, or the character itself.",
)
@click.option("--no-header", is_flag=True, help="The file has no header line.")
@click.option("--columns", default=None, help="Comma-separated names for the columns, in file order.")
@click.option("--calibration-end", required=True, help="Last day of the calibration period (YYYY-MM-DD).")
@click.option("--holdout-end", default=None, help="Last day of the holdout period (YYYY-MM-DD).")
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="week", show_default=True)
@click.option("--horizon", default=52, show_default=True, help="CLV horizon, in periods.")
@click.option(
    "--discount-rate",
    type=float,
    default=None,
    help="CLV discount rate per period (default: the configured monthly rate, converted).",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Per-customer CSV."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def fit_command(
    path: Path,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    date_format: str | None,
    delimiter: str,
    no_header: bool,
    columns: str | None,
    calibration_end: str,
    holdout_end: str | None,
    period: str,
    horizon: int,
    discount_rate: float | None,
    output: Path | None,
    as_json: bool,
) -> None:
    """Fit the CLV models on a transaction file; with --holdout-end, test them on the holdout."""
    names = [c.strip() for c in columns.split(",")] if columns else None
    report = fit_file(
        path,
        customer_col,
        date_col,
        amount_col,
        calibration_end,
        holdout_end,
        period=period,
        date_format=date_format,
        delimiter=delimiter,
        header=not no_header,
        columns=names,
        horizon=horizon,
        discount_rate=discount_rate,
        output=output,
    )
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        _print_text(report)
