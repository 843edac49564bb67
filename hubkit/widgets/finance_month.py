"""Notebook 07's app state: the monthly finance pack, interactively (no widgets here).

:class:`FinanceMonthState` reads the store read-only (rates in force over time, currency,
credit price) and one usage source (:func:`hubkit.finance.sources.load_usage_source`: the
gateway's records, a usage file, or a synthetic month), replays the credit ledger **once**
up to the end of the last month the usage covers, and then shows any month of it: the
roll-forward, the cohorts, the reconciliation (only when the usage carries the credits the
gateway stored), KPIs by model and provider, and the charts — the same
:class:`~hubkit.finance.FinancePack` the ``finance-month`` job writes. **Export** writes that
pack's CSVs, workbook and figures to a new report folder, as the job does; nothing else is
written, the store least of all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit import _files
from hubkit.billing_settings import BillingSettings
from hubkit.config import get_settings
from hubkit.decimals import plain
from hubkit.errors import ValidationError
from hubkit.finance import FinancePack, finance_pack, ledger_events, month_bounds, write_pack
from hubkit.finance.sources import UsageSource, load_usage_source
from hubkit.jobs import reports
from hubkit.jobs.finance_month import TITLES, pack_figures
from hubkit.replay import Behaviour
from hubkit.store import Store
from hubkit.widgets._common import AppState, Message, counted

JOB = "finance-month-app"


class FinanceMonthState(AppState):
    """Months of one usage source; :meth:`select_month` shows one, :meth:`export` saves it."""

    def __init__(
        self,
        store: Store,
        *,
        usage_source: str = "",
        month: str = "",
        settings: BillingSettings | None = None,
        credit_billing: bool | None = None,
        buy_probability: float = 0.3,
        pack_amount: Any = 10,
        synthetic_calls: int = 20_000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.store = store
        operator = store.get_operator_settings()
        self.currency = operator.currency
        self.credit_price = operator.credit_price
        self.timeline = store.rate_timeline()
        base = settings if settings is not None else BillingSettings.from_env()
        if credit_billing is not None:
            base = base.replace(credit_based_billing_enabled=credit_billing)
        self.settings = base
        self.behaviour = Behaviour(
            buy_probability=buy_probability, pack_amount=pack_amount, seed=seed
        )
        self.synthetic_calls = int(synthetic_calls)
        self.seed = int(seed)
        self.source: UsageSource | None = None
        self.events: pd.DataFrame | None = None
        self.months: list[str] = []
        self.month = ""
        self.pack: FinancePack | None = None
        self.exported: Path | None = None
        self.load(usage_source, month=month)

    # ---- actions --------------------------------------------------------------------------
    def load(self, usage_source: str, *, month: str = "") -> bool:
        """Read a usage source and replay its credit ledger; then show ``month`` (or the last
        complete one it covers)."""

        def run() -> tuple[UsageSource, pd.DataFrame, list[str]]:
            anchor = month or _last_full_month()
            source = load_usage_source(
                usage_source, self.timeline, month=anchor, n_calls=self.synthetic_calls,
                seed=self.seed,
            )  # fmt: skip
            times = pd.to_datetime(source.usage["time"], utc=True)
            if times.empty:
                raise ValidationError("the usage source holds no calls", field="usage_source")
            first = times.min().tz_localize(None).to_period("M")
            last = times.max().tz_localize(None).to_period("M")
            months = [str(p) for p in pd.period_range(first, last, freq="M")]
            events = ledger_events(
                source.usage, self.timeline, self.settings, until=month_bounds(last)[1],
                credit_price=self.credit_price, behaviour=self.behaviour,
            )  # fmt: skip
            return source, events, months

        ok, loaded = self._attempt(run)
        if not ok or loaded is None:
            return False
        self.source, self.events, self.months = loaded
        wanted = month if month in self.months else self.months[-1]
        return self.select_month(wanted)

    def select_month(self, month: str) -> bool:
        if self.source is None or self.events is None:
            self._fail(ValidationError("no usage loaded", field="usage_source"))
            return False
        if month not in self.months:
            self._fail(
                ValidationError(
                    f"{month!r} is not a month of this usage ({self.months[0]} to "
                    f"{self.months[-1]})",
                    field="month",
                )
            )
            return False
        source, events = self.source, self.events

        def run() -> FinancePack:
            return finance_pack(
                source.usage, self.timeline, self.settings, month=month,
                credit_price=self.credit_price, currency=self.currency,
                behaviour=self.behaviour, source=source.description, events=events,
            )  # fmt: skip

        ok, pack = self._attempt(run)
        if not ok or pack is None:
            return False
        self.pack, self.month, self.exported = pack, month, None
        row = pack.month_row
        self._say(
            Message.success(
                f"{month}: closing balance {plain(row['closing'])} credits "
                f"({counted(int(row['calls']), 'call')} used credit)"
            )
        )
        return True

    def export(self) -> Path | None:
        """The pack's CSVs, workbook and figures in a new report folder (read-only store)."""
        pack = self.pack
        if pack is None:
            self._fail(ValidationError("nothing to export yet", field="month"))
            return None

        def run() -> Path:
            folder = _files.new_run_folder(get_settings().reports_dir, JOB, datetime.now(UTC))
            write_pack(pack, folder)
            for name, figure in pack_figures(pack).items():
                reports.write_figure(folder, name, figure)
            _files.write_summary(
                folder,
                {"job": JOB, "run_id": folder.name, "status": "reported", "exit_code": 0,
                 "reason": f"finance pack for {pack.month} exported from notebook 07",
                 "totals": pack.summary(), "store": {"read_only": self.store.read_only}},
            )  # fmt: skip
            return folder

        ok, folder = self._attempt(run)
        if not ok or folder is None:
            return None
        self.exported = folder
        self._say(Message.success(f"exported the {pack.month} finance pack to {folder.name}"))
        return folder

    # ---- what the view shows ----------------------------------------------------------------
    def source_text(self) -> str:
        if self.source is None:
            return "no usage loaded"
        months = f"{self.months[0]} to {self.months[-1]}" if self.months else ""
        return f"{self.source.description}; months {months}; read-only"

    def table(self, name: str) -> pd.DataFrame | None:
        return None if self.pack is None else self.pack.tables.get(name)

    def reconciliation_text(self) -> str:
        if self.pack is None:
            return ""
        note = self.pack.reconciliation_note
        return f"Reconciliation is {note}." if self.pack.reconciliation is None else note

    def figures(self) -> dict[str, Any]:
        return {} if self.pack is None else pack_figures(self.pack)

    @staticmethod
    def title(name: str) -> str:
        return TITLES.get(name, name)


def _last_full_month() -> str:
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    return str(now.to_period("M") - 1)
