"""The finance-month job: one month's finance pack, written to its run folder.

``notebooks/jobs/finance_month.ipynb`` calls :func:`run_finance_month`; the figures come from
:func:`hubkit.finance.finance_pack` (Decimal). The run folder gets a CSV per table, one
``finance-<month>.xlsx`` workbook (a sheet per table, money as numbers in the store's
currency format), the figures (``figures/*.html``, drawn by the folder's own plotly.js) and,
through the runner, the executed notebook rendered to HTML for people, offline. The job
reads the store and the usage; it writes no rate and no setting (status ``reported``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubkit.billing_settings import BillingSettings
from hubkit.charts import model_kpis_figure, rollforward_trend, rollforward_waterfall
from hubkit.decimals import plain
from hubkit.finance import FinancePack, finance_pack, read_credit_ledger, write_pack
from hubkit.finance.sources import load_usage_source
from hubkit.jobs import reports
from hubkit.jobs.context import FigureOutput, JobResult, JobRun, Outcome, execute_job
from hubkit.jobs.params import FinanceMonthParams
from hubkit.jobs.status import JobStatus
from hubkit.replay import Behaviour
from hubkit.store import Store

JOB = "finance-month"

#: What the report shows of each table (headings; the files hold every row).
TITLES = {
    "headline": "The month in figures",
    "rollforward": "Credit roll-forward by month",
    "rollforward_by_cohort": "Roll-forward of the month by user cohort (month of first call)",
    "kpis_by_provider": "KPIs by provider",
    "kpis_by_model": "KPIs by model",
    "reconciliation_summary": "Reconciliation: stored credits vs the rates in force",
    "reconciliation": "Reconciliation, call by call",
}
_SHOWN_ROLLFORWARD = [
    "month", "opening", "granted", "purchased", "consumed", "expired", "closing", "difference",
    "closing_overdraft", "cash_in", "recognised_revenue", "deferred_revenue", "provider_cost",
    "promotional_cost",
]  # fmt: skip


@dataclass(frozen=True, eq=False)
class FinanceMonthResult:
    """The finished run and its pack, with what the notebook (and its report) shows."""

    result: JobResult
    pack: FinancePack | None

    @property
    def status(self) -> JobStatus:
        return self.result.status

    def overview_table(self) -> Any:
        """Run id, status, reason, folder and counts (the figures follow in their tables)."""
        frame = self.result.overview()
        frame = frame[~frame["item"].str.startswith("total: ")]
        return _html(reports.table_html(frame))

    def table(self, name: str, *, rows: int | None = None) -> Any:
        """One table of the pack as HTML (every row unless ``rows``), or why there is none."""
        if self.pack is None:
            return _html(f"<p><i>no {name}: the run failed ({self.result.reason})</i></p>")
        frame = self.pack.tables.get(name)
        if frame is None:
            return _html(f"<h4>{TITLES.get(name, name)}</h4><p><i>not applicable</i></p>")
        if name.startswith("rollforward"):
            frame = frame[[c for c in frame.columns if c in _SHOWN_ROLLFORWARD or c == "cohort"]]
        note = ""
        if rows is not None and len(frame) > rows:
            note = f"<p><i>first {rows} of {len(frame)} rows; every row is in {name}.csv</i></p>"
            frame = frame.head(rows)
        return _html(f"<h4>{TITLES.get(name, name)}</h4>" + reports.table_html(frame) + note)

    def reconciliation(self) -> Any:
        """The reconciliation section: its summary table, or why it does not apply."""
        if self.pack is None:
            return _html("<p><i>no reconciliation: the run failed</i></p>")
        text = self.pack.reconciliation_note
        if self.pack.reconciliation is None:
            return _html(
                f"<h4>{TITLES['reconciliation_summary']}</h4><p>Reconciliation is {text}.</p>"
            )
        return _html(
            f"<h4>{TITLES['reconciliation_summary']}</h4><p>{text}</p>"
            + reports.table_html(self.pack.tables["reconciliation_summary"])
        )

    def figures(self) -> list[Any]:
        if self.pack is None:
            return []
        return [FigureOutput(f) for f in pack_figures(self.pack).values()]

    def raise_for_status(self) -> None:
        self.result.raise_for_status()


def pack_figures(pack: FinancePack) -> dict[str, Any]:
    """The pack's charts by file stem (credits waterfall, months, revenue vs cost)."""
    return {
        "rollforward": rollforward_waterfall(pack.month_row),
        "months": rollforward_trend(pack.tables["rollforward"]),
        "models": model_kpis_figure(pack.tables["kpis_by_model"]),
    }


def finance_month(*, store: Store | None = None, **parameters: Any) -> FinanceMonthResult:
    """Check ``parameters`` (as the notebook names them) and run the job."""
    return run_finance_month(FinanceMonthParams.create(**parameters), store=store)


def build_pack(store: Store, params: FinanceMonthParams) -> FinancePack:
    """The month's pack from the store's rates and settings and the chosen usage."""
    operator = store.get_operator_settings()
    price = params.credit_price or operator.credit_price
    timeline = store.rate_timeline()
    source = load_usage_source(
        params.usage_source, timeline, month=params.month, n_calls=params.synthetic_calls,
        seed=params.seed,
    )  # fmt: skip
    settings = (
        BillingSettings.from_env_file(params.billing_settings)
        if params.billing_settings
        else BillingSettings.from_env()
    )
    if params.credit_billing is not None:
        settings = settings.replace(credit_based_billing_enabled=params.credit_billing)
    ledger = (
        read_credit_ledger(params.grants_file, credit_price=price) if params.grants_file else None
    )
    behaviour = Behaviour(
        buy_probability=float(params.buy_probability), pack_amount=params.pack_amount,
        seed=params.seed,
    )  # fmt: skip
    return finance_pack(
        source.usage, timeline, settings, month=params.month, credit_price=price,
        currency=operator.currency, behaviour=behaviour, ledger=ledger,
        source=source.description,
    )  # fmt: skip


def run_finance_month(
    params: FinanceMonthParams, *, store: Store | None = None
) -> FinanceMonthResult:
    made: dict[str, FinancePack] = {}

    def body(run: JobRun, p: FinanceMonthParams) -> Outcome:
        pack = build_pack(run.store, p)
        made["pack"] = pack
        return _write(run.run_dir, pack)

    result = execute_job(JOB, params, body, store=store)
    return FinanceMonthResult(result, made.get("pack"))


def _write(run_dir: Path, pack: FinancePack) -> Outcome:
    written = write_pack(pack, run_dir)
    files = [str(p.relative_to(run_dir)) for p in written]
    for name, figure in pack_figures(pack).items():
        path = reports.write_figure(run_dir, name, figure)
        files.append(str(path.relative_to(run_dir)))
    row = pack.month_row
    kpis = pack.tables["kpis_by_model"]
    counts = {
        "calls": int(kpis["calls"].sum()) if len(kpis) else 0,
        "calls_served": int(kpis["calls_served"].sum()) if len(kpis) else 0,
        "models": len(kpis),
        "cohorts": len(pack.tables["rollforward_by_cohort"]),
    }
    reason = (
        f"finance pack for {pack.month}: opening {plain(row['opening'])} + granted "
        f"{plain(row['granted'])} + purchased {plain(row['purchased'])} − consumed "
        f"{plain(row['consumed'])} − expired {plain(row['expired'])} = closing "
        f"{plain(row['closing'])} credits; reconciliation "
        + ("not applicable" if pack.reconciliation is None else "included")
    )
    return Outcome(
        JobStatus.REPORTED, reason, counts=counts, totals=pack.summary(),
        details={"month": pack.month, "usage_source": pack.source,
                 "reconciliation": pack.reconciliation_note},
        files=tuple(files),
    )  # fmt: skip


def _html(text: str) -> Any:
    # deferred: IPython is the notebook's; a job imported outside one never loads it
    from IPython.display import HTML

    return HTML(text)
