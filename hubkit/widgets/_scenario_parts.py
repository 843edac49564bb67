"""The scenario explorer's small parts: input parsing, number formats, chart data helpers.

Pure functions, no widgets; :mod:`hubkit.widgets.scenarios` is their one user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hubkit.errors import ValidationError
from hubkit.replay import ReplayResult
from hubkit.replay.frames import ledger_frame
from hubkit.replay.ledger import UserCalls, settle
from hubkit.widgets._common import decimal_or_none

#: What each KPI card shows: (name, label, unit). ``unit`` "money" is the operator currency.
KPI_CARDS: tuple[tuple[str, str, str], ...] = (
    ("revenue", "recognised revenue", "money"),
    ("provider_cost", "provider cost", "money"),
    ("gross_margin", "gross margin (revenue − provider cost)", "money"),
    ("gross_margin_pct", "gross margin (share of revenue)", "pct"),
    ("markup", "markup on cost (the margin you set)", "pct"),
    ("cash_in", "cash in (packs sold)", "money"),
    ("credits_purchased", "credits sold", "credits"),
    ("credits_granted", "credits granted", "credits"),
    ("credits_consumed", "credits consumed", "credits"),
    ("credits_expired", "credits expired", "credits"),
    ("credits_outstanding", "credits outstanding", "credits"),
    ("promotional_cost", "promotional cost (provider cost of granted credits)", "money"),
    ("users_blocked", "users blocked (402s)", "count"),
    ("models_below_cost", "models below cost", "count"),
)


#: Where the balance chart's users sit in the ranking by calls (busy, …, median): the
#: busiest ones have thousands of events, too many to read (and to draw on every move).
SAMPLE_RANKS = (0.02, 0.05, 0.1, 0.25, 0.5)


def sample_user_index(calls_per_user: np.ndarray, n: int) -> np.ndarray:
    """``n`` users across the activity range (busy to median), for the balance chart."""
    active = np.flatnonzero(calls_per_user > 0)
    if not active.size or n <= 0:
        return np.zeros(0, dtype=np.int64)
    ranked = active[np.argsort(-calls_per_user[active], kind="stable")]
    quantiles = np.array(SAMPLE_RANKS[:n] if n <= len(SAMPLE_RANKS) else np.linspace(0, 0.5, n))
    picks = np.minimum((quantiles * ranked.size).astype(np.int64), ranked.size - 1)
    return np.unique(ranked[picks])


def sample_ledger(result: ReplayResult, users: np.ndarray) -> pd.DataFrame:
    """The ledger events of a few users: their calls settled alone (a ledger is per user)."""
    prepared, calls = result.prepared, result.user_calls
    assert prepared is not None and calls is not None and result.policy is not None
    if not users.size:
        return pd.DataFrame(columns=["user", "time", "event", "credits", "money", "balance"])
    starts = prepared.starts
    idx = np.concatenate([np.arange(starts[u], starts[u + 1]) for u in users])
    sizes = starts[users + 1] - starts[users]
    sub_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    sub_calls = UserCalls(
        starts=sub_starts,
        first_seen=calls.first_seen[users],
        buyer=calls.buyer[users],
        time=calls.time[idx],
        credits=calls.credits[idx],
        cost=calls.cost[idx],
    )
    sub_prepared = dataclasses.replace(
        prepared,
        users=prepared.users[users],
        first_seen=prepared.first_seen[users],
        starts=sub_starts,
        time=prepared.time[idx],
        row=prepared.row[idx],
        key=prepared.key[idx],
        counts={k: v[idx] for k, v in prepared.counts.items()},
        source_index=prepared.source_index[idx],
        unsupported_user=prepared.unsupported_user[users],
    )
    detail = settle(sub_calls, result.policy)
    return ledger_frame(
        sub_prepared, sub_calls.credits, detail, result.behaviour, result.credit_price
    )


def horizontal_bars(fig: Any) -> Any:
    """Bars along y: model names are long, and read better beside a bar than under it."""
    for trace in fig.data:
        trace.update(x=trace.y, y=trace.x, **({"orientation": "h"} if trace.type == "bar" else {}))
    fig.update_layout(xaxis_title=fig.layout.yaxis.title.text, yaxis_title=None)
    fig.update_yaxes(autorange="reversed", automargin=True, tickfont={"size": 10})
    return fig


def horizontal_data(data: Any) -> Any:
    """:func:`horizontal_bars` for a chart's data (:class:`hubkit.charts.ChartData`): x and
    y swapped in every trace. Its own inverse."""
    swapped = tuple({**t, "x": t["y"], "y": t["x"]} for t in data.traces)
    return dataclasses.replace(data, traces=swapped)


def text_of(value: Any) -> str:
    return str(value).strip()


def _number(value: Any, fits: Callable[[Decimal], bool], wanted: str, field: str) -> Decimal:
    """``value`` as an exact number that ``fits``, else a ValidationError: "<wanted>, got …"."""
    number = decimal_or_none(text_of(value))
    if number is None or not fits(number):
        raise ValidationError(f"{wanted}, got {value!r}", field=field)
    return number


def parse_grant(value: Any) -> Decimal:
    return _number(
        value, lambda n: n >= 0, "the grant must be a number of credits ≥ 0 (0 = no grant)", "grant"
    )


def parse_pack_amount(value: Any) -> Decimal:
    return _number(
        value,
        lambda n: n > 0,
        "the pack amount must be money > 0 (what one pack costs)",
        "pack_amount",
    )


def parse_days(value: Any) -> int:
    number = _number(
        value,
        lambda n: n >= 0 and n == n.to_integral_value(),
        "expiry must be whole days ≥ 0 (0 = never expires)",
        "expiry_days",
    )
    return int(number)


def parse_probability(value: Any) -> float:
    number = _number(
        value, lambda n: 0 <= n <= 1, "the buy probability must be within 0..1", "buy_probability"
    )
    return float(number)


def axis_steps(lo: Decimal, hi: Decimal, n: int) -> list[Decimal]:
    """``n`` evenly spaced exact values from ``lo`` to ``hi`` (both included, deduplicated)."""
    if hi == lo:
        return [lo]
    values = [lo + (hi - lo) * Decimal(i) / Decimal(n - 1) for i in range(n)]
    # 12 significant digits are plenty for a grid axis and keep the labels short.
    rounded = [Decimal(f"{v:.12g}") for v in values]
    return list(dict.fromkeys(rounded))


def money_text(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:,.2f}"


def pct_text(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:,.1f} %"


def kpi_text(value: float, unit: str, currency: str) -> str:
    if not np.isfinite(value):
        return "—"
    if unit == "money":
        return f"{value:,.2f} {currency}"
    if unit == "pct":
        return pct_text(value)
    if unit == "count":
        return f"{int(value):,}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"
