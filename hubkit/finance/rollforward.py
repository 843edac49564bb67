"""The credit roll-forward: per month (and per user cohort), what was owed, added, used, lost.

From the event table of :mod:`hubkit.finance.ledger`, in Decimal, for each month::

    opening + granted + purchased − consumed − expired = closing        (to the last decimal)

- *opening* / *closing*: credits users hold (promotional + paid − overdraft) at the
  first instant of the month / just before the first instant of the next;
- *granted*: promotional credit (the new-user grant); *purchased*: paid credit;
- *consumed*: credit used by calls, whatever funded it (promotional, paid, or nothing yet:
  the overdraft of a last call); *expired*: unused credit that expired (breakage).

Each is split by kind (``*_promotional``, ``*_paid``, ``*_overdraft``; a ``settled``
column moves overdraft onto the credit that repaid it and changes no total) and valued in
money at the credit price in force. Deferred revenue is the paid credit not yet used at
the close; recognised revenue the paid credit used in the month (including overdraft it
settled); ``promotional_cost`` the provider cost of calls paid with promotional credit.
Credits are exact; money is rounded once, to 10 places (ROUND_HALF_UP), per figure.

Months are calendar months in UTC. A user's cohort is the month of their first event (first
call or grant).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

from hubkit.decimals import EXACT, ZERO, quantize
from hubkit.errors import ValidationError
from hubkit.finance._exact import exact
from hubkit.pricing.rules import validate_credit_price

__all__ = [
    "FLOW_COLUMNS",
    "MONEY_COLUMNS",
    "ROLLFORWARD_COLUMNS",
    "month_bounds",
    "parse_month",
    "roll_forward",
]

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])(-\d{2})?$")
#: The identity's columns, in its order.
FLOW_COLUMNS = ("opening", "granted", "purchased", "consumed", "expired", "closing")
_SPLIT_COLUMNS = (
    "opening_promotional", "opening_paid", "opening_overdraft",
    "consumed_promotional", "consumed_paid", "consumed_overdraft", "settled",
    "expired_promotional", "expired_paid",
    "closing_promotional", "closing_paid", "closing_overdraft",
)  # fmt: skip
#: Money at the credit price in force (currency).
MONEY_COLUMNS = (
    "opening_money", "granted_money", "purchased_money", "consumed_money", "expired_money",
    "closing_money", "cash_in", "recognised_revenue", "deferred_revenue", "provider_cost",
    "promotional_cost",
)  # fmt: skip
ROLLFORWARD_COLUMNS = (*FLOW_COLUMNS, "difference", *_SPLIT_COLUMNS, "calls", *MONEY_COLUMNS)


def parse_month(value: Any) -> pd.Period:
    """``2026-11`` (or a date in it) → the calendar month; a clear error otherwise."""
    if isinstance(value, pd.Period):
        return value.asfreq("M")
    text = str(value).strip() if value is not None else ""
    try:
        if not _MONTH.match(text):
            raise ValueError
        return pd.Period(text[:7], freq="M")
    except (ValueError, TypeError):
        raise ValidationError(
            f"month must look like 2026-11 (year-month), got {value!r}", field="month", value=value
        ) from None


def month_bounds(month: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[first instant, first instant of the next month) in UTC."""
    period = parse_month(month)
    start = period.start_time.tz_localize("UTC")
    end = (period + 1).start_time.tz_localize("UTC")
    return start, end


def _dsum(values: Any) -> Decimal:
    return sum((Decimal(v) for v in values), ZERO)


def _months_of(times: pd.Series) -> pd.Series:
    """``YYYY-MM`` of each UTC time (text sorts as months do)."""
    out: pd.Series = times.dt.tz_convert("UTC").dt.strftime("%Y-%m")
    return out


def _cohorts(events: pd.DataFrame) -> pd.Series:
    first = events.groupby("user", sort=False)["time"].min()
    return _months_of(first)


_SUMMED = ("promotional", "paid", "overdraft", "money", "provider_cost", "promotional_cost")
_KINDS = ("promotional", "paid", "overdraft")
#: event → column → Decimal sum (and "count"): the events of one month (and cohort)
Cell = dict[str, dict[str, Decimal]]


def _cells(frame: pd.DataFrame, month_of: pd.Series, cohort_of: pd.Series) -> dict[
    tuple[str, str], Cell
]:  # fmt: skip
    """One pass over the events: Decimal sums per (month, cohort) and event."""
    keyed = frame[["event", *_SUMMED]].assign(_m=month_of.to_numpy(), _c=cohort_of.to_numpy())
    out: dict[tuple[str, str], Cell] = {}
    for (month, cohort, event), group in keyed.groupby(["_m", "_c", "event"], sort=False):
        sums = {column: _dsum(group[column]) for column in _SUMMED}
        sums["count"] = Decimal(len(group))
        out.setdefault((str(month), str(cohort)), {})[str(event)] = sums
    return out


def _merge(cells: list[Cell]) -> Cell:
    out: Cell = {}
    for cell in cells:
        for event, sums in cell.items():
            into = out.setdefault(event, {})
            for column, value in sums.items():
                into[column] = EXACT.add(into.get(column, ZERO), value)
    return out


def _flows(cell: Cell) -> dict[str, Decimal]:
    """One month's movements (of one cohort, or all)."""

    def of(event: str, column: str) -> Decimal:
        return cell.get(event, {}).get(column, ZERO)

    out = {
        "granted": of("grant", "promotional"),
        "purchased": of("purchase", "paid"),
        "consumed_promotional": -of("use", "promotional"),
        "consumed_paid": -of("use", "paid"),
        "consumed_overdraft": of("use", "overdraft"),
        "settled": -of("settle", "overdraft"),
        "settled_promotional": -of("settle", "promotional"),
        "settled_paid": -of("settle", "paid"),
        "expired_promotional": -of("expire", "promotional"),
        "expired_paid": -of("expire", "paid"),
        "cash_in": of("purchase", "money"),
        "provider_cost": of("use", "provider_cost"),
        "promotional_cost": of("use", "promotional_cost"),
    }
    out["consumed"] = EXACT.add(
        EXACT.add(out["consumed_promotional"], out["consumed_paid"]), out["consumed_overdraft"]
    )
    out["expired"] = EXACT.add(out["expired_promotional"], out["expired_paid"])
    out["calls"] = of("use", "count")
    return out


def _moves(cell: Cell) -> dict[str, Decimal]:
    """How the month's events change each balance (promotional, paid, overdraft)."""
    return {kind: sum((sums.get(kind, ZERO) for sums in cell.values()), ZERO) for kind in _KINDS}


@exact
def roll_forward(
    events: pd.DataFrame,
    *,
    credit_price: Any = 1,
    months: Sequence[Any] | None = None,
    by_cohort: bool = False,
) -> pd.DataFrame:
    """The roll-forward of ``events`` per month (and per cohort with ``by_cohort``).

    ``months`` (default: every month from the first event to the last) picks the rows;
    opening balances always count every earlier event. ``difference`` is opening + granted
    + purchased − consumed − expired − closing: zero on every row, or the ledger is wrong.
    The events are summed once per (month, cohort, event); balances carry month to month.
    """
    price = validate_credit_price(credit_price)
    frame = events
    columns = ["month", *(["cohort"] if by_cohort else []), *ROLLFORWARD_COLUMNS]
    if months is None:
        if frame.empty:
            return pd.DataFrame(columns=columns)
        seen = _months_of(frame["time"])
        span = pd.period_range(parse_month(seen.min()), parse_month(seen.max()), freq="M")
        wanted = [str(p) for p in span]
    else:
        wanted = sorted({str(parse_month(m)) for m in months})
    month_of = _months_of(frame["time"]) if len(frame) else pd.Series([], dtype=str)
    cohort_of = frame["user"].map(_cohorts(frame)) if len(frame) else month_of
    cells = _cells(frame, month_of, cohort_of) if len(frame) else {}
    cohorts = sorted({c for _m, c in cells})
    groups: list[str | None] = list(cohorts) if by_cohort else [None]
    timeline = sorted({m for m, _c in cells} | set(wanted))
    rows = []
    for group in groups:
        balance = dict.fromkeys(_KINDS, ZERO)
        for month in timeline:
            if month > wanted[-1]:
                break
            members = cohorts if group is None else [group]
            cell = _merge([cells[(month, c)] for c in members if (month, c) in cells])
            moves = _moves(cell)
            closing = {k: EXACT.add(balance[k], moves[k]) for k in _KINDS}
            if month in wanted and (group is None or group <= month):
                rows.append(_row(month, group, balance, closing, _flows(cell), price))
            balance = closing
    rows.sort(key=lambda r: (r["month"], r.get("cohort", "")))
    out = pd.DataFrame(rows, columns=columns)
    for column in ROLLFORWARD_COLUMNS:
        out[column] = out[column].astype(object)
    out["calls"] = out["calls"].astype("int64")
    return out


def _row(
    month: str,
    cohort: str | None,
    opening: dict[str, Decimal],
    closing: dict[str, Decimal],
    flows: dict[str, Decimal],
    price: Decimal,
) -> dict[str, Any]:
    row: dict[str, Any] = {"month": month}
    if cohort is not None:
        row["cohort"] = cohort

    def total(b: dict[str, Decimal]) -> Decimal:
        return EXACT.subtract(EXACT.add(b["promotional"], b["paid"]), b["overdraft"])

    row["opening"] = total(opening)
    for name in ("granted", "purchased", "consumed", "expired"):
        row[name] = flows[name]
    row["closing"] = total(closing)
    expected = row["opening"] + row["granted"] + row["purchased"] - row["consumed"]
    difference = EXACT.subtract(EXACT.subtract(expected, row["expired"]), row["closing"])
    row["difference"] = difference if difference != 0 else ZERO
    for kind in ("promotional", "paid", "overdraft"):
        row[f"opening_{kind}"] = opening[kind]
        row[f"closing_{kind}"] = closing[kind]
    for name in ("consumed_promotional", "consumed_paid", "consumed_overdraft", "settled",
                 "expired_promotional", "expired_paid"):  # fmt: skip
        row[name] = flows[name]
    row["calls"] = int(flows["calls"])

    def money(value: Decimal) -> Decimal:
        return quantize(EXACT.multiply(value, price))

    for name in FLOW_COLUMNS:
        row[f"{name}_money"] = money(row[name])
    row["cash_in"] = quantize(flows["cash_in"])
    # paid credit used in the month: by calls, and by settling an earlier overdraft
    row["recognised_revenue"] = money(EXACT.add(flows["consumed_paid"], flows["settled_paid"]))
    row["deferred_revenue"] = money(closing["paid"])
    row["provider_cost"] = quantize(flows["provider_cost"])
    row["promotional_cost"] = quantize(flows["promotional_cost"])
    return row
