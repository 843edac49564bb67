"""The monthly finance pack: roll-forward, reconciliation and KPIs of one month, as tables.

:func:`finance_pack` computes them (Decimal throughout); :func:`write_pack` writes a CSV
per table and one ``.xlsx`` workbook with a sheet per table (openpyxl; money as numbers
with a currency number format, credits as numbers, never text). The job
(``hubkit.jobs.finance_month``) and notebook 07 show the same :class:`FinancePack`.

Tables (file stem → contents):

- ``headline``: the month's figures, one per row (item, value, unit);
- ``rollforward``: every month up to the chosen one (opening balances need them);
- ``rollforward_by_cohort``: the chosen month, per user cohort (month of first call);
- ``kpis_by_model`` / ``kpis_by_provider``: calls, credits by funding, revenue, provider
  cost, promotional cost, gross margin;
- ``reconciliation`` / ``reconciliation_summary`` / ``reconciliation_by_user|model|day``: each
  call of the month re-priced at the rate in force and compared with the credits the gateway
  stored, with its cause, and the sums per user, model and day; only when the usage
  carries stored credits (the gateway's records): synthetic usage or a plain usage file
  has none, and the pack says reconciliation is *not applicable* rather than showing 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit import _files
from hubkit.billing_settings import BillingSettings
from hubkit.decimals import EXACT, ZERO, plain
from hubkit.finance._exact import exact
from hubkit.finance.ledger import file_events, replay_events, validate_credit_ledger
from hubkit.finance.rollforward import MONEY_COLUMNS, month_bounds, parse_month, roll_forward
from hubkit.pricing.rules import validate_credit_price
from hubkit.replay.inputs import Behaviour
from hubkit.replay.reconcile import reconcile, reconcile_breakdown

__all__ = ["FinancePack", "finance_pack", "has_stored_credits", "ledger_events", "write_pack"]

_KPI_MONEY = ("revenue", "provider_cost", "promotional_cost", "gross_margin", "list_value")
_RECON_CREDITS = ("stored_credits", "repriced_credits", "difference")
NOT_APPLICABLE = (
    "not applicable: the usage source carries no stored credits (synthetic usage or a plain "
    "usage file); import the gateway's records to reconcile"
)


@dataclass(frozen=True, eq=False)
class FinancePack:
    """One month's finance figures; ``tables`` in the order they are shown and written."""

    month: str
    currency: str
    credit_price: Decimal
    source: str
    settings: BillingSettings
    events: pd.DataFrame
    tables: Mapping[str, pd.DataFrame]
    #: per table: which columns are money (currency format) and which credits
    money: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reconciliation: Mapping[str, Any] | None = None  # the summary; None: not applicable

    @property
    def month_row(self) -> pd.Series:
        frame = self.tables["rollforward"]
        return frame[frame["month"] == self.month].iloc[0]

    @property
    def reconciliation_note(self) -> str:
        if self.reconciliation is None:
            return NOT_APPLICABLE
        s = self.reconciliation
        return (
            f"{s['rows']} calls: {s['match']} match, {s['mismatch']} differ, "
            f"{s['unsupported']} without a rate, {s['no_stored_credits']} without stored "
            f"credits; stored {plain(s['stored_total'])} vs re-priced "
            f"{plain(s['repriced_total'])} credits (difference {plain(s['difference_total'])})"
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready headline figures (Decimals as plain strings)."""
        out: dict[str, Any] = {
            "month": self.month,
            "currency": self.currency,
            "credit_price": plain(self.credit_price),
            "usage_source": self.source,
            "reconciliation": self.reconciliation_note,
        }
        for item, value, _unit in self.tables["headline"].itertuples(index=False):
            out[item] = plain(value) if isinstance(value, Decimal) else value
        return out


def has_stored_credits(usage: pd.DataFrame) -> bool:
    """True when the usage carries the credits the gateway stored (its own records)."""
    if "stored_credits" not in usage.columns:
        return False
    # notna: None / NaN in an object column, pd.NA in an Arrow decimal one (the importer's)
    return bool(usage["stored_credits"].notna().any())


def _dsum(values: Any) -> Decimal:
    total = ZERO
    for value in values:  # in the exact context: Python's sum rounds to 28 digits
        total = EXACT.add(total, Decimal(value))
    return total


def _kpis(events: pd.DataFrame, keys: list[str], price: Decimal) -> pd.DataFrame:
    calls = events[events["event"].isin(["use", "refused"])]
    rows = []
    for key, group in calls.groupby(keys, sort=True):
        use = group[group["event"] == "use"]
        credits = _dsum(use["credits"])
        promo = -_dsum(use["promotional"])
        paid = -_dsum(use["paid"])
        overdraft = _dsum(use["overdraft"])
        cost = _dsum(use["provider_cost"])
        revenue = EXACT.multiply(paid, price)
        names = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(keys, names, strict=True)),
                "calls": len(group),
                "calls_served": len(use),
                "calls_refused": len(group) - len(use),
                "calls_without_unit_costs": int((~use["has_cost"]).sum()),
                "credits": credits,
                "promotional_credits": promo,
                "paid_credits": paid,
                "overdraft_credits": overdraft,
                "list_value": EXACT.multiply(credits, price),
                "revenue": revenue,
                "provider_cost": cost,
                "promotional_cost": _dsum(use["promotional_cost"]),
                "gross_margin": EXACT.subtract(revenue, cost),
            }
        )
    columns = [
        *keys, "calls", "calls_served", "calls_refused", "calls_without_unit_costs", "credits",
        "promotional_credits", "paid_credits", "overdraft_credits", "list_value", "revenue",
        "provider_cost", "promotional_cost", "gross_margin",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _headline(row: pd.Series, model_kpis: pd.DataFrame, currency: str) -> pd.DataFrame:
    revenue = row["recognised_revenue"]
    cost = row["provider_cost"]
    margin = EXACT.subtract(revenue, cost)
    items: list[tuple[str, Any, str]] = [
        ("opening balance", row["opening"], "credits"),
        ("granted (promotional)", row["granted"], "credits"),
        ("purchased (paid)", row["purchased"], "credits"),
        ("consumed", row["consumed"], "credits"),
        ("expired (breakage)", row["expired"], "credits"),
        ("closing balance", row["closing"], "credits"),
        ("identity difference (must be 0)", row["difference"], "credits"),
        ("overdraft at close", row["closing_overdraft"], "credits"),
        ("cash in (packs bought)", row["cash_in"], currency),
        ("recognised revenue", revenue, currency),
        ("deferred revenue at close", row["deferred_revenue"], currency),
        ("provider cost", cost, currency),
        ("provider cost of promotional credits", row["promotional_cost"], currency),
        ("gross margin (revenue − provider cost)", margin, currency),
        ("calls served", int(model_kpis["calls_served"].sum()) if len(model_kpis) else 0, "calls"),
        ("calls refused (402)", int(model_kpis["calls_refused"].sum()) if len(model_kpis) else 0,
         "calls"),
    ]  # fmt: skip
    return pd.DataFrame(items, columns=["item", "value", "unit"])


@exact
def ledger_events(
    usage: pd.DataFrame,
    timeline: pd.DataFrame,
    settings: BillingSettings,
    *,
    until: Any,
    credit_price: Any = 1,
    behaviour: Behaviour | None = None,
    ledger: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The credit events of every call (and ledger entry) before ``until`` (exclusive).

    Without ``ledger`` the grants and purchases come from replaying the usage under the
    gateway's ``settings`` (and ``behaviour`` for who buys packs); with a grants/purchases
    ``ledger`` (:func:`hubkit.finance.read_credit_ledger`) they come from it, and every
    call counts as served. Expiries up to the instant before ``until`` count.
    """
    end = pd.Timestamp(until)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    price = validate_credit_price(credit_price)
    times = pd.to_datetime(usage["time"], utc=True)
    upto = usage[(times < end).to_numpy()].reset_index(drop=True)
    as_of = end - pd.Timedelta(1, "ns")
    if ledger is None:
        return replay_events(
            upto, timeline, settings, credit_price=price, behaviour=behaviour, as_of=as_of
        )
    checked = validate_credit_ledger(ledger, credit_price=price)
    return file_events(
        upto, timeline, checked[(checked["time"] < end).to_numpy()], credit_price=price,
        as_of=as_of,
    )  # fmt: skip


@exact
def finance_pack(
    usage: pd.DataFrame,
    timeline: pd.DataFrame,
    settings: BillingSettings,
    *,
    month: Any,
    credit_price: Any = 1,
    currency: str = "USD",
    behaviour: Behaviour | None = None,
    ledger: pd.DataFrame | None = None,
    source: str = "usage",
    events: pd.DataFrame | None = None,
) -> FinancePack:
    """The pack of ``month`` from ``usage`` (calls up to the month's end count).

    The credit events come from :func:`ledger_events` (see there for ``ledger`` and
    ``behaviour``), or are ``events`` already made by it with an ``until`` at or after the
    month's end (an app showing several months replays once).
    """
    period = parse_month(month)
    start, end = month_bounds(period)
    price = validate_credit_price(credit_price)
    if events is None:
        events = ledger_events(
            usage, timeline, settings, until=end, credit_price=price, behaviour=behaviour,
            ledger=ledger,
        )  # fmt: skip
    times = pd.to_datetime(usage["time"], utc=True)
    upto = usage[(times < end).to_numpy()].reset_index(drop=True)
    events = events[events["time"] < end]
    rolled = roll_forward(events, credit_price=price, months=_months_until(events, period))
    cohorts = roll_forward(events, credit_price=price, months=[period], by_cohort=True)
    in_month = events[(events["time"] >= start) & (events["time"] < end)]
    by_model = _kpis(in_month, ["provider", "model", "type"], price)
    by_provider = _kpis(in_month, ["provider"], price)
    tables: dict[str, pd.DataFrame] = {}
    money: dict[str, tuple[str, ...]] = {}
    month_frame = rolled[rolled["month"] == str(period)]
    tables["headline"] = _headline(month_frame.iloc[0], by_model, currency)
    tables["rollforward"] = rolled
    money["rollforward"] = MONEY_COLUMNS
    tables["rollforward_by_cohort"] = cohorts
    money["rollforward_by_cohort"] = MONEY_COLUMNS
    tables["kpis_by_model"] = by_model
    money["kpis_by_model"] = _KPI_MONEY
    tables["kpis_by_provider"] = by_provider
    money["kpis_by_provider"] = _KPI_MONEY
    summary = None
    month_usage = upto[(pd.to_datetime(upto["time"], utc=True) >= start).to_numpy()]
    if has_stored_credits(month_usage):
        recon, summary = reconcile(month_usage.reset_index(drop=True), timeline)
        tables["reconciliation_summary"] = _recon_summary(recon, summary)
        for by in ("user", "model", "day"):  # each adds up to the summary (every call once)
            tables[f"reconciliation_by_{by}"] = reconcile_breakdown(recon, by)
        tables["reconciliation"] = recon
    return FinancePack(
        month=str(period), currency=currency, credit_price=price, source=source,
        settings=settings, events=events, tables=tables, money=money, reconciliation=summary,
    )  # fmt: skip


def _months_until(events: pd.DataFrame, period: pd.Period) -> list[pd.Period]:
    if events.empty:
        return [period]
    first = events["time"].min().tz_convert("UTC").tz_localize(None).to_period("M")
    return list(pd.period_range(min(first, period), period, freq="M"))


def _recon_summary(frame: pd.DataFrame, summary: Mapping[str, Any]) -> pd.DataFrame:
    """Per status (and cause, when the reconciliation gives one): calls and credits."""
    keys = ["status", "cause"] if "cause" in frame.columns else ["status"]
    rows = []
    for key, group in frame.groupby(keys, sort=True, dropna=False):
        names = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(keys, names, strict=True)),
                "calls": len(group),
                "stored_credits": _dsum(v for v in group["stored_credits"] if pd.notna(v)),
                "repriced_credits": _dsum(v for v in group["repriced_credits"] if pd.notna(v)),
                "difference": _dsum(v for v in group["difference"] if pd.notna(v)),
            }
        )
    out = pd.DataFrame(rows, columns=[*keys, "calls", *_RECON_CREDITS])
    total = {k: "total" if k == "status" else "" for k in keys}
    total.update(
        calls=summary["rows"], stored_credits=summary["stored_total"],
        repriced_credits=summary["repriced_total"], difference=summary["difference_total"],
    )  # fmt: skip
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)


# ---- files -------------------------------------------------------------------------------
def _cell(value: Any) -> Any:
    """What openpyxl stores: numbers stay numbers (Decimal is written exactly), times naive
    UTC (Excel has no zones), missing values empty."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    if value is pd.NA:  # a missing Arrow value (the reconciliation's amounts)
        return None
    if isinstance(value, pd.Timestamp):
        return (
            value.tz_convert("UTC").tz_localize(None).to_pydatetime()
            if value.tzinfo
            else (value.to_pydatetime())
        )
    if hasattr(value, "item") and not isinstance(value, Decimal):  # numpy scalars
        return value.item()
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, Decimal | int | float) and not isinstance(value, bool)


def write_xlsx(pack: FinancePack, path: Path) -> Path:
    """One sheet per table; money columns in the currency's number format."""
    # deferred: openpyxl is needed only when a workbook is written
    from openpyxl import Workbook
    from openpyxl.styles import Font

    money_format = f'#,##0.00########" {pack.currency}"'
    credit_format = "#,##0.##########"
    book = Workbook()
    book.remove(book.active)
    for name, table in pack.tables.items():
        sheet = book.create_sheet(title=name[:31])
        sheet.append(list(table.columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        money_cols = set(pack.money.get(name, ()))
        if name == "headline":
            for item, value, unit in table.itertuples(index=False):
                sheet.append([item, _cell(value), unit])
                if unit == pack.currency:
                    sheet.cell(row=sheet.max_row, column=2).number_format = money_format
                elif unit == "credits":
                    sheet.cell(row=sheet.max_row, column=2).number_format = credit_format
        else:
            for record in table.itertuples(index=False):
                sheet.append([_cell(v) for v in record])
            for j, column in enumerate(table.columns, start=1):
                fmt = money_format if column in money_cols else credit_format
                for row in range(2, sheet.max_row + 1):
                    cell = sheet.cell(row=row, column=j)
                    if _is_number(cell.value) and not isinstance(cell.value, int):
                        cell.number_format = fmt
                    elif _is_number(cell.value) and column in money_cols:
                        cell.number_format = fmt
        sheet.freeze_panes = "A2"
        for j, column in enumerate(table.columns, start=1):
            letter = sheet.cell(row=1, column=j).column_letter
            sheet.column_dimensions[letter].width = max(12, min(40, len(str(column)) + 2))
    return _files.atomic_write_with(path, lambda tmp: book.save(str(tmp)))


def write_pack(
    pack: FinancePack,
    folder: Path,
    *,
    on_file: Callable[[Path], None] | None = None,
) -> list[Path]:
    """A CSV per table and ``finance-<month>.xlsx`` in ``folder``; the paths written."""
    written = []
    for name, table in pack.tables.items():
        path = _files.atomic_write_csv(folder / f"{name}.csv", table)
        written.append(path)
    written.append(write_xlsx(pack, folder / f"finance-{pack.month}.xlsx"))
    if on_file is not None:
        for path in written:
            on_file(path)
    return written
