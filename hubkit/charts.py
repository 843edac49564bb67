"""Plotly figures of replays and scenario grids; each function returns a ``go.Figure``.

>>> fig = ledger_waterfall({"credits_granted": 100, "credits_purchased": 50,
...     "promo_consumed": 70, "purchased_consumed": 40, "credits_expired": 10})
>>> [round(v) for v in fig.data[0].y]
[100, 50, -110, -10, 30]

:func:`write_figure` saves a figure as HTML (self-contained: no network needed to view
it) and, when ``kaleido`` happens to be installed, as PNG too. Reports go to
``reports/figures/`` (:func:`figures_dir`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from pandas.tseries.frequencies import to_offset

from hubkit.config import get_settings
from hubkit.errors import ValidationError
from hubkit.replay import Kpis, ReplayResult

_MARKUP = "profit margin (markup on cost, %)"
_PRICE = "credit price (currency per credit)"
_KPI_LABELS = {
    "gross_margin_pct": "gross margin (% of revenue)",
    "gross_margin": "gross margin (revenue − provider cost)",
    "revenue": "recognised revenue",
    "provider_cost": "provider cost",
    "cash_in": "cash in",
    "users_blocked": "users blocked (402)",
    "n_402": "402 responses",
}


def figures_dir() -> Path:
    """``<reports dir>/figures`` (HUBKIT_REPORTS_DIR, default ``reports/``)."""
    return get_settings().reports_dir / "figures"


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(f"{what} needs column(s) {missing}", field=missing[0])


def margin_heatmap(
    grid: pd.DataFrame, *, value: str = "gross_margin_pct", title: str | None = None
) -> go.Figure:
    """A KPI over the margin × credit-price grid (rows: markup %, columns: credit price).

    With several grants / expiries / packs in the grid, the first of each is shown; filter
    the grid first to pick another slice.
    """
    _require(grid, ["profit_margin", "credit_price", value], "margin_heatmap")
    frame = grid.copy()
    for column in ("grant", "expiry_days", "pack_amount"):
        if column in frame.columns and frame[column].nunique() > 1:
            frame = frame[frame[column] == frame[column].iloc[0]]
    frame["markup"] = frame["profit_margin"].map(lambda m: "current rates" if pd.isna(m) else m)
    table = frame.pivot_table(
        index="markup",
        columns="credit_price",
        values=value,
        aggfunc="first",
        sort=False,
        dropna=False,
    )
    label = _KPI_LABELS.get(value, value.replace("_", " "))
    fig = go.Figure(
        go.Heatmap(
            z=table.to_numpy(dtype=float),
            x=[f"{p:g}" for p in table.columns],
            y=[str(m) for m in table.index],
            colorscale="RdYlGn",
            zmid=0 if value.startswith("gross_margin") else None,
            colorbar={"title": {"text": label}},
            hovertemplate=f"markup %{{y}}<br>credit price %{{x}}<br>{label} %{{z:,.2f}}"
            "<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or f"{label} by markup and credit price",
        xaxis_title=_PRICE,
        yaxis_title=_MARKUP,
    )
    return fig


@dataclass(frozen=True)
class ChartData:
    """What a chart plots, apart from its styling: each trace's data keys (x, y, text, …)
    and the layout keys that follow the data (e.g. an annotation).

    Each figure function below is ``<chart>_figure(<chart>_data(...))``: a live chart
    (:class:`hubkit.widgets` 04) patches exactly these keys on every knob step instead of
    building and validating a whole plotly figure, and is tested to show the same numbers.
    """

    traces: tuple[dict[str, Any], ...]
    layout: dict[str, Any] = field(default_factory=dict)

    def keys(self) -> tuple[str, ...]:
        """The data keys every trace carries (a patch sends each key for all traces)."""
        return tuple(self.traces[0]) if self.traces else ()


def _utc_times(times: pd.Series | pd.Index) -> np.ndarray:
    """Times as ``datetime64[ns]`` in UTC (a tz-aware column's ``to_numpy`` is objects)."""
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        index = index.tz_convert(None)
    return np.asarray(index.to_numpy(), dtype="datetime64[ns]")


def revenue_vs_cost_data(models: pd.DataFrame | ReplayResult, *, top: int | None = 20) -> ChartData:
    """Revenue, provider cost and margin per model, the most costly first (⚠ = below cost)."""
    frame = models.models if isinstance(models, ReplayResult) else models
    _require(frame, ["provider", "model", "revenue", "provider_cost"], "revenue_vs_cost_by_model")
    frame = frame.sort_values("provider_cost", ascending=False)
    if top:
        frame = frame.head(top)
    below = (
        frame["below_cost"].to_numpy(dtype=bool)
        if "below_cost" in frame
        else np.zeros(len(frame), bool)
    )
    full = (frame["provider"] + "/" + frame["model"]).tolist()
    names = [f"⚠ {n}" if b else n for n, b in zip(full, below, strict=True)]
    revenue = frame["revenue"].to_numpy(dtype=float)
    cost = frame["provider_cost"].to_numpy(dtype=float)
    return ChartData(
        ({"x": names, "y": revenue}, {"x": names, "y": cost}, {"x": names, "y": revenue - cost})
    )


def revenue_vs_cost_figure(data: ChartData) -> go.Figure:
    revenue, cost, margin = data.traces
    fig = go.Figure(
        [
            go.Bar(name="recognised revenue", **revenue),
            go.Bar(name="provider cost", **cost),
            go.Scatter(
                name="gross margin", mode="markers", marker={"symbol": "diamond", "size": 10},
                **margin,
            ),
        ]
    )  # fmt: skip
    fig.update_layout(
        barmode="group",
        title="Revenue vs provider cost by model (⚠ = sold below cost)",
        yaxis_title="operator currency",
    )
    return fig


def revenue_vs_cost_by_model(
    models: pd.DataFrame | ReplayResult, *, top: int | None = 20
) -> go.Figure:
    """Recognised revenue and provider cost per model; models sold below cost are marked."""
    return revenue_vs_cost_figure(revenue_vs_cost_data(models, top=top))


def _kpi_values(kpis: Kpis | Mapping[str, Any]) -> dict[str, float]:
    data = kpis.to_dict() if isinstance(kpis, Kpis) else dict(kpis)
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float | np.number)}


def ledger_waterfall_data(kpis: Kpis | Mapping[str, Any] | ReplayResult) -> ChartData:
    """Granted → purchased → consumed → expired → outstanding credits (conservation).

    Outstanding = granted + purchased − consumed − expired; an overdraft (balances below
    zero after a last call) is consumed from nothing and shown beside it, not hidden.
    """
    source = kpis.kpis if isinstance(kpis, ReplayResult) else kpis
    v = _kpi_values(source)
    consumed = v.get("promo_consumed", 0.0) + v.get("purchased_consumed", 0.0)
    steps = [
        ("granted", v.get("credits_granted", 0.0), "relative"),
        ("purchased", v.get("credits_purchased", 0.0), "relative"),
        ("consumed", -consumed, "relative"),
        ("expired", -v.get("credits_expired", 0.0), "relative"),
    ]
    outstanding = sum(s[1] for s in steps)
    steps.append(("outstanding", outstanding, "total"))
    overdraft = v.get("overdraft", 0.0)
    notes = (
        [
            {
                "x": "outstanding",
                "y": outstanding,
                "text": f"overdraft (used beyond balance): {overdraft:,.2f}",
                "showarrow": True,
                "yshift": 10,
            }
        ]
        if overdraft
        else []
    )
    trace = {
        "x": [s[0] for s in steps],
        "y": [s[1] for s in steps],
        "measure": [s[2] for s in steps],
    }
    return ChartData((trace,), {"annotations": notes})


def ledger_waterfall_figure(data: ChartData) -> go.Figure:
    fig = go.Figure(
        go.Waterfall(
            texttemplate="%{y:,.0f}", connector={"line": {"dash": "dot"}}, **data.traces[0]
        )
    )
    fig.update_layout(title="Credit ledger", yaxis_title="credits", showlegend=False, **data.layout)
    return fig


def ledger_waterfall(kpis: Kpis | Mapping[str, Any] | ReplayResult) -> go.Figure:
    """The credit ledger's waterfall (:func:`ledger_waterfall_data`)."""
    return ledger_waterfall_figure(ledger_waterfall_data(kpis))


def balance_data(
    result: ReplayResult | pd.DataFrame,
    users: Sequence[str] | None = None,
    *,
    n_users: int = 5,
) -> ChartData:
    """Balance of a few users through their ledger events (grant, purchases, usage, expiry).

    ``result`` is a replay result or its :meth:`ReplayResult.ledger` frame. Without
    ``users``, the ``n_users`` users with the most events are shown.
    """
    ledger = result.ledger() if isinstance(result, ReplayResult) else result
    _require(ledger, ["user", "time", "balance"], "balance_over_time")
    if users is None:
        users = ledger["user"].value_counts().head(n_users).index.tolist()
    # one pass over the ledger, not one boolean mask per user
    groups = ledger.groupby("user", sort=False, observed=True).indices
    events = ledger["event"].to_numpy() if "event" in ledger else None
    time, balance = _utc_times(ledger["time"]), ledger["balance"].to_numpy(dtype=float)
    traces = []
    for name in users:
        rows = groups.get(name, np.zeros(0, np.intp))
        traces.append(
            {
                "name": str(name),
                "x": time[rows],
                "y": balance[rows],
                "text": None if events is None else events[rows].tolist(),
            }
        )
    return ChartData(tuple(traces))


def balance_figure(data: ChartData) -> go.Figure:
    fig = go.Figure(
        [
            go.Scatter(
                # a step per event, and every event in the hover; no markers: hundreds of
                # them on 600 px only overlap, and drawing them (even thinned to 60 a line)
                # was a third of the browser's work on each step of the scenario explorer
                mode="lines",
                line={"shape": "hv"},
                hovertemplate="%{x}<br>%{text}: balance %{y:,.2f}<extra>%{fullData.name}</extra>",
                **trace,
            )
            for trace in data.traces
        ]
    )
    fig.add_hline(y=0, line_dash="dot", annotation_text="402 at or below 0")
    fig.update_layout(title="Balance over time", xaxis_title="time (UTC)", yaxis_title="credits")
    return fig


def balance_over_time(
    result: ReplayResult | pd.DataFrame,
    users: Sequence[str] | None = None,
    *,
    n_users: int = 5,
) -> go.Figure:
    """The sample users' balances over time (:func:`balance_data`)."""
    return balance_figure(balance_data(result, users, n_users=n_users))


def refusals_data(result: ReplayResult | pd.DataFrame, *, freq: str = "D") -> ChartData:
    """402 responses per period: refused calls and 402s answered by buying a pack."""
    calls = result.calls() if isinstance(result, ReplayResult) else result
    _require(calls, ["time", "status", "packs_bought"], "refusals_over_time")
    refused = (calls["status"] != "served").to_numpy(dtype=bool)
    bought = (calls["packs_bought"] > 0).to_numpy(dtype=bool)
    step = _fixed_period_ns(freq)
    if step is None:
        raise ValidationError(
            f"refusals over time count per fixed period ('D', 'h', '15min'), not {freq!r}",
            field="freq",
        )
    # A fixed period: floor the UTC nanoseconds as dt.floor does and count with bincount
    # (a pandas groupby per series was most of this chart's time on 04's every knob step)
    period = pd.DatetimeIndex(calls["time"]).tz_convert("UTC").asi8 // step
    first = int(period.min()) if period.size else 0
    index = period - first
    seen = np.flatnonzero(np.bincount(index))  # the periods with calls, as groupby lists
    x = ((seen + first) * step).view("datetime64[ns]")
    return ChartData(
        tuple(
            {"x": x, "y": np.bincount(index, weights=flags)[seen].astype(np.int64)}
            for flags in (refused, bought)
        )
    )


def _fixed_period_ns(freq: str) -> int | None:
    """The length of ``freq`` in ns when it is fixed ("D", "h", "15min"), else None."""
    try:
        # Timedelta takes a fixed offset (Tick, Day) and refuses a calendar one (week, month)
        return int(pd.Timedelta(cast(Any, to_offset(freq))).value)
    except ValueError:
        return None


def refusals_figure(data: ChartData) -> go.Figure:
    refused, bought = data.traces
    fig = go.Figure(
        [
            go.Bar(name="refused (402, no purchase)", **refused),
            go.Bar(name="402 then bought a pack", **bought),
        ]
    )
    fig.update_layout(
        barmode="stack",
        title="402 responses over time",
        xaxis_title="time (UTC)",
        yaxis_title="calls",
    )
    return fig


def refusals_over_time(result: ReplayResult | pd.DataFrame, *, freq: str = "D") -> go.Figure:
    """402 responses per period (:func:`refusals_data`)."""
    return refusals_figure(refusals_data(result, freq=freq))


def _model_labels(frame: pd.DataFrame) -> list[str]:
    """``provider/model``, with the type added where a provider/model has several types."""
    names = (frame["provider"].astype(str) + "/" + frame["model"].astype(str)).tolist()
    if "type" not in frame.columns:
        return names
    repeated = {n for n in names if names.count(n) > 1}
    return [
        f"{n} ({t})" if n in repeated else n
        for n, t in zip(names, frame["type"].astype(str), strict=True)
    ]


def _by_change(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows whose ``column`` moved, the largest move first (ties: as given)."""
    size = frame[column].astype(float).abs()
    return frame.assign(_size=size)[size > 0].sort_values("_size", ascending=False, kind="stable")


_IMPACT_LABELS = {
    "list_revenue": "list revenue (credits used × credit price)",
    "revenue": "recognised revenue",
    "provider_cost": "provider cost",
    "gross_margin": "gross margin (revenue − provider cost)",
    "list_margin": "list margin (list revenue − provider cost)",
    "credits_used": "credits used",
}


def revenue_change_waterfall(
    models: pd.DataFrame,
    *,
    metric: str = "list_revenue",
    top: int = 12,
    title: str | None = None,
    horizontal: bool = False,
) -> go.Figure:
    """A proposal's revenue change: in force → one step per model → proposed.

    ``models`` has ``provider``, ``model`` (and ``type``) and ``<metric>_before`` /
    ``_after`` / ``_change`` per row (a proposal impact's per-model table). The ``top``
    largest moves get a step each, the other moves one step together, so the bars always
    add up: in force + every step = proposed. ``horizontal``: steps top to bottom, the
    model names beside their bars (they are long).
    """
    cols = [f"{metric}_before", f"{metric}_after", f"{metric}_change"]
    _require(models, ["provider", "model", *cols], "revenue_change_waterfall")
    before = float(models[cols[0]].astype(float).sum())
    after = float(models[cols[1]].astype(float).sum())
    moved = _by_change(models, cols[2])
    shown, rest = moved.head(top), moved.iloc[top:]
    steps: list[tuple[str, float, str]] = [("in force", before, "absolute")]
    steps += [
        (name, float(v), "relative")
        for name, v in zip(_model_labels(shown), shown[cols[2]], strict=True)
    ]
    if len(rest):
        steps.append((f"{len(rest):,} other models", float(rest[cols[2]].astype(float).sum()),
                      "relative"))  # fmt: skip
    steps.append(("proposed", after, "total"))
    label = _IMPACT_LABELS.get(metric, metric.replace("_", " "))
    names, values = [s[0] for s in steps], [s[1] for s in steps]
    value_axis = "x" if horizontal else "y"
    fig = go.Figure(
        go.Waterfall(
            orientation="h" if horizontal else "v",
            x=values if horizontal else names,
            y=names if horizontal else values,
            measure=[s[2] for s in steps],
            texttemplate=f"%{{{value_axis}:+,.2f}}",
            connector={"line": {"dash": "dot"}},
            increasing={"marker": {"color": "#1e8e3e"}},
            decreasing={"marker": {"color": "#d93025"}},
            totals={"marker": {"color": "#5f6368"}},
            hovertemplate=f"%{{{'y' if horizontal else 'x'}}}<br>%{{{value_axis}:,.4f}}"
            "<extra></extra>",
        )
    )
    unit = "operator currency" if metric != "credits_used" else "credits"
    fig.update_layout(title=title or f"{label}: in force → proposed, by model", showlegend=False)
    if horizontal:
        fig.update_layout(xaxis_title=unit)
        fig.update_yaxes(autorange="reversed", automargin=True, tickfont={"size": 10})
    else:
        fig.update_layout(yaxis_title=unit, xaxis={"tickangle": -30, "automargin": True})
    # zoomed on the levels the steps walk through: the changes are usually small beside
    # the totals, and an axis from 0 would flatten them (the total bars run off the edge)
    levels = np.cumsum(values[:-1])
    low, high = float(min(levels.min(), after)), float(max(levels.max(), after))
    span = high - low
    if span > 0 and low > span:
        zoom = [low - span * 0.3, high + span * 0.3]
        (fig.update_xaxes if horizontal else fig.update_yaxes)(range=zoom)
    return fig


def impact_by_model(
    models: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("list_revenue", "provider_cost", "list_margin"),
    top: int = 20,
    title: str | None = None,
    horizontal: bool = False,
) -> go.Figure:
    """Per-model bars of a proposal's impact: the change of each metric (proposed − in force),
    for the ``top`` models whose first metric moves most."""
    cols = [f"{m}_change" for m in metrics]
    _require(models, ["provider", "model", *cols], "impact_by_model")
    moved = _by_change(models, cols[0]).head(top)
    names = _model_labels(moved)
    name_axis, value_axis = ("y", "x") if horizontal else ("x", "y")
    fig = go.Figure(
        [
            go.Bar(
                name=_IMPACT_LABELS.get(m, m.replace("_", " ")),
                orientation="h" if horizontal else "v",
                **{name_axis: names, value_axis: moved[c].astype(float).to_numpy()},
                hovertemplate=f"%{{{name_axis}}}<br>%{{{value_axis}:+,.4f}}"
                "<extra>%{fullData.name}</extra>",
            )
            for m, c in zip(metrics, cols, strict=True)
        ]
    )
    fig.update_layout(
        barmode="group",
        title=title or "Change by model (proposed − in force)",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    )
    if horizontal:
        fig.update_layout(xaxis_title="operator currency")
        fig.update_yaxes(autorange="reversed", automargin=True, tickfont={"size": 10})
    else:
        fig.update_layout(yaxis_title="operator currency",
                          xaxis={"tickangle": -30, "automargin": True})  # fmt: skip
    return fig


def write_figure(fig: go.Figure, path_without_suffix: str | Path) -> list[Path]:
    """Write ``<path>.html`` (self-contained) and ``<path>.png`` if kaleido is installed."""
    base = Path(path_without_suffix)
    if base.suffix in (".html", ".png"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    html = base.with_name(base.name + ".html")
    fig.write_html(html, include_plotlyjs=True, full_html=True)
    written = [html]
    if importlib.util.find_spec("kaleido") is not None:
        png = base.with_name(base.name + ".png")
        fig.write_image(png)
        written.append(png)
    return written


# ---- the monthly finance pack (hubkit.finance) ----------------------------------------------
def _floats(values: Any) -> list[float]:
    return [float(v) for v in values]


def rollforward_waterfall(row: Mapping[str, Any] | pd.Series, *, title: str = "") -> go.Figure:
    """One month's roll-forward: opening + granted + purchased − consumed − expired = closing."""
    get = row.get
    steps = [
        ("opening", float(get("opening", 0)), "absolute"),
        ("granted (promotional)", float(get("granted", 0)), "relative"),
        ("purchased (paid)", float(get("purchased", 0)), "relative"),
        ("consumed", -float(get("consumed", 0)), "relative"),
        ("expired", -float(get("expired", 0)), "relative"),
        ("closing", float(get("closing", 0)), "total"),
    ]
    fig = go.Figure(
        go.Waterfall(
            x=[s[0] for s in steps],
            y=[s[1] for s in steps],
            measure=[s[2] for s in steps],
            texttemplate="%{y:,.2f}",
            connector={"line": {"dash": "dot"}},
        )
    )
    month = get("month", "")
    fig.update_layout(
        title=title or f"Credit roll-forward {month}".strip(),
        yaxis_title="credits",
        showlegend=False,
        height=380,
    )
    return fig


def rollforward_trend(frame: pd.DataFrame) -> go.Figure:
    """Credits granted, purchased, consumed and expired per month, with the closing balance."""
    _require(frame, ["month", "granted", "purchased", "consumed", "expired", "closing"],
             "rollforward_trend")  # fmt: skip
    months = frame["month"].astype(str).tolist()
    fig = go.Figure(
        [
            go.Bar(name="granted (promotional)", x=months, y=_floats(frame["granted"])),
            go.Bar(name="purchased (paid)", x=months, y=_floats(frame["purchased"])),
            go.Bar(name="consumed", x=months, y=[-v for v in _floats(frame["consumed"])]),
            go.Bar(name="expired", x=months, y=[-v for v in _floats(frame["expired"])]),
            go.Scatter(name="closing balance", x=months, y=_floats(frame["closing"]),
                       mode="lines+markers"),
        ]
    )  # fmt: skip
    fig.update_layout(
        barmode="relative", title="Credits per month", yaxis_title="credits", height=380
    )
    return fig


def model_kpis_figure(kpis: pd.DataFrame, *, top: int | None = 20) -> go.Figure:
    """Recognised revenue, provider cost and gross margin of a month's KPIs by model."""
    _require(kpis, ["provider", "model", "revenue", "provider_cost"], "model_kpis_figure")
    frame = kpis.assign(
        revenue=_floats(kpis["revenue"]), provider_cost=_floats(kpis["provider_cost"])
    )
    return revenue_vs_cost_by_model(frame, top=top)
