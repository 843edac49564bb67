"""The impact of a proposal: a usage window replayed under the rates in force and under the
proposed rates, with the same billing settings, and the difference.

The window (:func:`usage_window`): the last 30 days of gateway usage imported into the
store (``usage`` table, up to its newest call); else a usage file; else synthetic usage,
labelled so. Its fingerprint (SHA-256 of the calls) is stored with the impact.

Both replays share the preparation (validation, rate lookup, the per-user sort: most of a
replay's time): the calls are prepared once against the rates in force, and the proposed
prices are the same rate rows with the changed values patched in. A proposal that creates
or deletes rates changes which calls have a rate at all, so it is prepared twice instead
(``engine``: ``"two preparations"``).

Figures (float64, as the replay computes them; see :mod:`hubkit.replay`) per model and in
total, before / after / change:

- ``revenue``: recognised revenue (purchased credits consumed × credit price; 0 with the
  gateway's credit billing off), ``list_revenue``: credits of served calls × credit price
  (what the usage is worth at the prices, billing or not);
- ``provider_cost``, ``gross_margin`` (= revenue − cost) and ``gross_margin_pct`` (share of
  revenue), ``list_margin`` / ``list_margin_pct`` (the same on list revenue);
- ``credits_used`` (credits of served calls), ``calls_served``, ``calls_refused`` (402s);
- users newly blocked by a 402 and users unblocked; every proposed rate below cost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hubkit._columns import TIMELINE_COLUMNS
from hubkit.billing_settings import BillingSettings
from hubkit.decimals import plain
from hubkit.domain import Caching, Rate, UnitCosts
from hubkit.pricing.rules import below_cost_check, margin_rate, validate_credit_price
from hubkit.pricing.vector import RateArrays
from hubkit.replay import Behaviour, ReplayResult, prepare, replay_partition, timeline_from_rates
from hubkit.replay.timeline import RateBook
from hubkit.store import Store
from hubkit.store.proposals import ProposalAction, ProposedChange
from hubkit.store.usage import last_usage_time, read_usage_rows
from hubkit.usage import read_usage
from hubkit.usage.schema import empty_usage
from hubkit.usage.synthetic import generate_usage

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "METRICS",
    "Impact",
    "UsageWindow",
    "compute_impact",
    "proposed_rates",
    "proposed_timeline",
    "usage_fingerprint",
    "usage_window",
]

DEFAULT_WINDOW_DAYS = 30
SYNTHETIC_CALLS = 20_000
#: The per-model and total figures, before / after / change.
METRICS = (
    "calls", "calls_served", "calls_refused", "credits_used", "revenue", "list_revenue",
    "provider_cost", "gross_margin", "gross_margin_pct", "list_margin", "list_margin_pct",
)  # fmt: skip
#: Users named in an impact (the counts are always complete).
MAX_USERS_LISTED = 200


@dataclass(frozen=True, eq=False)
class UsageWindow:
    """The calls an impact replays, where they came from, and their fingerprint."""

    usage: pd.DataFrame
    kind: str  # "store" | "file" | "given" | "synthetic"
    label: str
    since: datetime | None = None
    until: datetime | None = None
    fingerprint: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "calls": len(self.usage),
            "users": int(self.usage["user"].nunique()) if len(self.usage) else 0,
            "fingerprint": self.fingerprint,
            "synthetic": self.kind == "synthetic",
        }


def usage_fingerprint(usage: pd.DataFrame) -> str:
    """SHA-256 over every call (its columns' values, in order)."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, usage.columns)).encode())
    if len(usage):
        hashed = pd.util.hash_pandas_object(usage.reset_index(drop=True), index=False)
        digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


def usage_window(
    store: Store,
    *,
    usage: pd.DataFrame | None = None,
    usage_file: str | Path | None = None,
    days: int = DEFAULT_WINDOW_DAYS,
    synthetic_calls: int = SYNTHETIC_CALLS,
    synthetic_rates: Sequence[Rate] | None = None,
) -> UsageWindow:
    """The window to replay: ``usage`` if given; else the last ``days`` of the store's
    imported usage; else ``usage_file``; else synthetic usage over ``synthetic_rates``
    (default: the current rates)."""
    if usage is not None:
        return _window(usage, "given", f"the usage given ({len(usage):,} calls)")
    last = last_usage_time(store.engine)
    if last is not None:
        since = last - timedelta(days=days)
        until = last + timedelta(microseconds=1)
        frame = read_usage_rows(store.engine, since=since, until=until)
        label = (
            f"last {days} days of imported gateway usage ({since:%Y-%m-%d %H:%M} → "
            f"{last:%Y-%m-%d %H:%M} UTC, {len(frame):,} calls)"
        )
        return _window(frame, "store", label, since, last)
    if usage_file is not None:
        frame = read_usage(usage_file)
        return _window(frame, "file", f"usage file {Path(usage_file).name} ({len(frame):,} calls)")
    rates = list(synthetic_rates) if synthetic_rates is not None else store.list_rates()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    if not rates:
        return _window(empty_usage(), "synthetic", "no usage, and no rates to draw any from")
    start = end - timedelta(days=days)
    frame = generate_usage(rates, n_calls=synthetic_calls, start=start, days=days, seed=0)
    label = (
        f"SYNTHETIC usage ({synthetic_calls:,} generated calls over {days} days): no usage "
        "was imported into the store and no usage file was given"
    )
    return _window(frame, "synthetic", label, start, end)


def _window(
    frame: pd.DataFrame,
    kind: str,
    label: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> UsageWindow:
    return UsageWindow(frame, kind, label, since, until, usage_fingerprint(frame))


# -- proposed rates -----------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _rate_of(change: ProposedChange, old: Rate | None) -> Rate:
    """The rate ``change`` leaves (its ``after`` snapshot was validated when it was made)."""
    assert change.after is not None
    after = change.after
    if old is None:
        from hubkit.store.rates import spec_from_snapshot

        spec = spec_from_snapshot({"provider": change.provider, **after})
        return Rate(
            id=-1, provider=spec.provider, model=spec.model, type=spec.type,
            input_rate=spec.input_rate, output_rate=spec.output_rate,
            model_display=spec.model_display, version=0, unit_costs=spec.unit_costs,
            caching=spec.caching, model_metadata=spec.model_metadata,
            description=spec.description,
        )  # fmt: skip
    cost_in, cost_out = (
        _decimal(after.get("unit_cost_input")),
        _decimal(after.get("unit_cost_output")),
    )
    read, write = _decimal(after.get("cache_read_rate")), _decimal(after.get("cache_write_rate"))
    return dataclasses.replace(
        old,
        input_rate=Decimal(after["input_rate"]),
        output_rate=Decimal(after["output_rate"]),
        unit_costs=unit_costs_of(cost_in, cost_out),
        caching=None if read is None and write is None else Caching(read, write),
    )


def unit_costs_of(cost_in: Decimal | None, cost_out: Decimal | None) -> UnitCosts | None:
    if cost_in is None and cost_out is None:
        return None
    return UnitCosts(cost_in or Decimal(0), cost_out or Decimal(0))


def proposed_rates(rates: Sequence[Rate], changes: Sequence[ProposedChange]) -> list[Rate]:
    """``rates`` as they would be with ``changes`` applied."""
    by_key = {(r.provider, r.model, r.type.value): r for r in rates}
    for change in changes:
        if change.action is ProposalAction.DELETE:
            by_key.pop(change.key, None)
        else:
            old = by_key.get(change.key)
            by_key[change.key] = _rate_of(change, old)
    return list(by_key.values())


def proposed_timeline(rates: Sequence[Rate], changes: Sequence[ProposedChange]) -> pd.DataFrame:
    """The rates with the changes applied, as a timeline in force forever."""
    return timeline_from_rates(proposed_rates(rates, changes))


# -- the impact ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Impact:
    """An impact as stored with a proposal (``data`` is its JSON document)."""

    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.data)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Impact | None:
        return None if data is None else cls(dict(data))

    @property
    def window(self) -> Mapping[str, Any]:
        window: Mapping[str, Any] = self.data["window"]
        return window

    @property
    def synthetic(self) -> bool:
        return bool(self.window.get("synthetic"))

    @property
    def fingerprint(self) -> str:
        return str(self.window.get("fingerprint", ""))

    def total(self, metric: str, side: str = "change") -> float:
        """A total: ``side`` before, after or change."""
        value: float = self.data["totals"][side][metric]
        return value

    def totals_frame(self) -> pd.DataFrame:
        """One row per metric: before, after, change."""
        totals = self.data["totals"]
        return pd.DataFrame(
            {
                "metric": list(METRICS),
                "before": [totals["before"][m] for m in METRICS],
                "after": [totals["after"][m] for m in METRICS],
                "change": [totals["change"][m] for m in METRICS],
            }
        )

    def models_frame(self) -> pd.DataFrame:
        """One row per (provider, model, type) with calls on either side: every metric's
        before, after and change (``<metric>_before`` …), by the size of the list revenue
        change. (Stored as ``{"columns": [...], "rows": [[...], ...]}``.)"""
        models = self.data["models"]
        return pd.DataFrame(models["rows"], columns=models["columns"])

    def below_cost_frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(
            self.data["below_cost"],
            columns=[
                "provider",
                "model",
                "type",
                "side",
                "rate",
                "unit_cost",
                "break_even",
                "changed",
            ],  # fmt: skip
        )

    @property
    def users_newly_blocked(self) -> int:
        return int(self.data["users"]["newly_blocked"])

    @property
    def users_unblocked(self) -> int:
        return int(self.data["users"]["unblocked"])


def _pct(margin: float, revenue: float) -> float | None:
    return margin / revenue * 100 if revenue else None


def _totals(result: ReplayResult, price: float) -> dict[str, Any]:
    k = result.kpis
    list_revenue = k.credits_used * price
    return {
        "calls": k.calls,
        "calls_served": k.calls_served,
        "calls_refused": k.calls_refused,
        "credits_used": k.credits_used,
        "revenue": k.revenue,
        "list_revenue": list_revenue,
        "provider_cost": k.provider_cost,
        "gross_margin": k.gross_margin,
        "gross_margin_pct": _pct(k.gross_margin, k.revenue),
        "list_margin": list_revenue - k.provider_cost,
        "list_margin_pct": _pct(list_revenue - k.provider_cost, list_revenue),
        "users_blocked": k.users_blocked,
    }


def _change(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, b in before.items():
        a = after[key]
        out[key] = None if a is None or b is None else a - b
    return out


def _model_rows(base: ReplayResult, new: ReplayResult, price: float) -> dict[str, Any]:
    """Per (provider, model, type) with calls on either side: every metric's before, after
    and change, vectorised (a 10,000-rate proposal has as many rows)."""
    keys = ["provider", "model", "type"]
    columns = ["calls", "calls_served", "calls_refused", "credits", "revenue", "provider_cost"]

    def table(result: ReplayResult) -> pd.DataFrame:
        frame = result.models
        if not len(frame):
            return pd.DataFrame(columns=keys + columns)
        return frame[keys + columns].groupby(keys, as_index=False, sort=False).sum()

    merged = table(base).merge(table(new), on=keys, how="outer", suffixes=("_b", "_a"))
    out = pd.DataFrame({k: merged[k].astype(str) for k in keys})
    sides: dict[str, dict[str, np.ndarray]] = {}

    def column(name: str, side: str) -> np.ndarray:
        values: np.ndarray = merged[f"{name}_{side}"].fillna(0).to_numpy(dtype=np.float64)
        return values

    for side in ("b", "a"):

        def get(name: str, side: str = side) -> np.ndarray:
            return column(name, side)

        credits, revenue, cost = get("credits"), get("revenue"), get("provider_cost")
        lrev = credits * price
        with np.errstate(divide="ignore", invalid="ignore"):
            sides[side] = {
                "calls": get("calls"),
                "calls_served": get("calls_served"),
                "calls_refused": get("calls_refused"),
                "credits_used": credits,
                "revenue": revenue,
                "list_revenue": lrev,
                "provider_cost": cost,
                "gross_margin": revenue - cost,
                "gross_margin_pct": np.where(
                    revenue != 0, (revenue - cost) / revenue * 100, np.nan
                ),
                "list_margin": lrev - cost,
                "list_margin_pct": np.where(lrev != 0, (lrev - cost) / lrev * 100, np.nan),
            }
    for metric in METRICS:
        before, after = sides["b"][metric], sides["a"][metric]
        out[f"{metric}_before"] = before
        out[f"{metric}_after"] = after
        out[f"{metric}_change"] = after - before
    for metric in ("calls", "calls_served", "calls_refused"):
        for suffix in ("before", "after", "change"):
            out[f"{metric}_{suffix}"] = out[f"{metric}_{suffix}"].astype(np.int64)
    order = np.argsort(-np.abs(out["list_revenue_change"].to_numpy()), kind="stable")
    out = out.iloc[order]
    rows: list[list[Any]] = out.astype(object).where(out.notna(), None).to_numpy().tolist()
    return {"columns": list(out.columns), "rows": rows}


def _blocked(result: ReplayResult) -> set[str]:
    users = result.users
    return set(users.loc[users["calls_refused"] > 0, "user"].astype(str))


def _below_cost(
    rates: Sequence[Rate], price: Decimal, changed: set[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    """Every side of ``rates`` sold below cost (``changed``: by this proposal)."""
    below = below_cost_check(price)
    out = []
    for rate in rates:
        costs = rate.unit_costs
        if costs is None:
            continue
        for side, value, cost in (
            ("input", rate.input_rate, costs.input),
            ("output", rate.output_rate, costs.output),
        ):
            if below(value, cost):
                out.append(
                    {
                        "provider": rate.provider,
                        "model": rate.model,
                        "type": rate.type.value,
                        "side": side,
                        "rate": plain(value),
                        "unit_cost": plain(cost),
                        "break_even": plain(margin_rate(cost, 0, price)),
                        "changed": (rate.provider, rate.model, rate.type.value) in changed,
                    }
                )
    return out


def _flag(rate: Rate, below: Any) -> bool:
    costs = rate.unit_costs
    return bool(
        costs is not None
        and (below(rate.input_rate, costs.input) or below(rate.output_rate, costs.output))
    )


def _patched_arrays(book: RateBook, new_rates: Sequence[Rate]) -> RateArrays:
    """The book's rate arrays with each key's proposed values (same keys, one row each)."""
    frame = book.timeline
    index = {key: i for i, key in enumerate(book.keys)}
    cols = {
        name: np.array(
            [np.nan if v is None else float(v) for v in frame[name]], dtype=np.float64
        )
        for name in (
            "input_rate", "output_rate", "cache_read_rate", "cache_write_rate",
            "unit_cost_input", "unit_cost_output",
        )
    }  # fmt: skip
    for rate in new_rates:
        row = index[(rate.provider, rate.model, rate.type.value)]
        cols["input_rate"][row] = float(rate.input_rate)
        cols["output_rate"][row] = float(rate.output_rate)
        caching = rate.caching
        read = caching.read_rate if caching else None
        write = caching.write_rate if caching else None
        cols["cache_read_rate"][row] = np.nan if read is None else float(read)
        cols["cache_write_rate"][row] = np.nan if write is None else float(write)
        costs = rate.unit_costs
        cols["unit_cost_input"][row] = np.nan if costs is None else float(costs.input)
        cols["unit_cost_output"][row] = np.nan if costs is None else float(costs.output)
    has_cost = ~(np.isnan(cols["unit_cost_input"]) & np.isnan(cols["unit_cost_output"]))
    return RateArrays.build(
        billed=book.billed,
        input_rate=cols["input_rate"],
        output_rate=cols["output_rate"],
        cache_read_rate=cols["cache_read_rate"],
        cache_write_rate=cols["cache_write_rate"],
        unit_cost_input=np.nan_to_num(cols["unit_cost_input"]),
        unit_cost_output=np.nan_to_num(cols["unit_cost_output"]),
        has_cost=has_cost,
    )


def _raw_timeline(rates: Sequence[Rate]) -> pd.DataFrame:
    """:func:`timeline_from_rates` without its validation: the RateBook built from it
    validates it (once, not twice: a third of the impact's own time at 10,000 rates)."""
    records = []
    for rate in rates:
        caching, costs = rate.caching, rate.unit_costs
        records.append(
            (rate.provider, rate.model, rate.type.value, rate.input_rate, rate.output_rate,
             caching.read_rate if caching else None, caching.write_rate if caching else None,
             costs.input if costs else None, costs.output if costs else None, pd.NaT, pd.NaT)
        )  # fmt: skip
    return pd.DataFrame.from_records(records, columns=list(TIMELINE_COLUMNS))


@dataclasses.dataclass(frozen=True, eq=False)
class ReplayPair:
    """The window replayed under the rates in force and under the proposed rates."""

    base: ReplayResult
    new: ReplayResult
    engine: str
    new_rates: list[Rate]
    #: the proposed rates sold below cost (either side)
    below_cost: list[Rate]


def replay_pair(
    usage: pd.DataFrame,
    rates: Sequence[Rate],
    changes: Sequence[ProposedChange],
    *,
    settings: BillingSettings,
    credit_price: Any,
    behaviour: Behaviour | None = None,
) -> ReplayPair:
    """The window replayed under ``rates`` and under ``rates`` with ``changes`` (sharing
    the preparation when the proposal only updates rates)."""
    price = validate_credit_price(credit_price)
    knobs = behaviour or Behaviour()
    below = below_cost_check(price)
    base_timeline = _raw_timeline(rates)
    new_rates = proposed_rates(rates, changes)
    touched = {c.key for c in changes}
    if all(c.action is ProposalAction.UPDATE for c in changes):
        book = RateBook(base_timeline)
        index = {key: i for i, key in enumerate(book.keys)}
        by_key = {(r.provider, r.model, r.type.value): r for r in rates}
        # Each key has one row in force forever: the row of a call is its key's row.
        base_flags = np.zeros(len(book.keys) + 1, dtype=bool)
        for key, row in index.items():
            base_flags[row] = _flag(by_key[key], below)
        prepared = prepare(usage, book)
        base = replay_partition(
            prepared, settings, credit_price=price, behaviour=knobs, below_cost=base_flags
        )
        changed_rates = [r for r in new_rates if (r.provider, r.model, r.type.value) in touched]
        flags = base_flags.copy()
        for r in changed_rates:
            flags[index[(r.provider, r.model, r.type.value)]] = _flag(r, below)
        new = replay_partition(
            prepared,
            settings,
            credit_price=price,
            behaviour=knobs,
            rates=_patched_arrays(book, changed_rates),
            rate_index=prepared.row,
            below_cost=flags,
        )
        now = {**by_key, **{(r.provider, r.model, r.type.value): r for r in changed_rates}}
        below_rates = [now[k] for k, row in index.items() if flags[row]]
        return ReplayPair(base, new, "shared preparation", new_rates, below_rates)
    base_prepared = prepare(usage, base_timeline)
    base = replay_partition(base_prepared, settings, credit_price=price, behaviour=knobs)
    new_prepared = prepare(usage, _raw_timeline(new_rates))
    new = replay_partition(new_prepared, settings, credit_price=price, behaviour=knobs)
    below_rates = [r for r in new_rates if _flag(r, below)]
    return ReplayPair(base, new, "two preparations", new_rates, below_rates)


def compute_impact(
    rates: Sequence[Rate],
    changes: Sequence[ProposedChange],
    window: UsageWindow,
    *,
    settings: BillingSettings | None = None,
    credit_price: Any = 1,
    behaviour: Behaviour | None = None,
) -> Impact:
    """The impact of ``changes`` on ``rates`` over ``window`` (see the module docstring)."""
    billing = settings if settings is not None else BillingSettings.from_env()
    price = validate_credit_price(credit_price)
    knobs = behaviour or Behaviour()
    pair = replay_pair(
        window.usage, rates, changes, settings=billing, credit_price=price, behaviour=knobs
    )
    base, new = pair.base, pair.new
    fprice = float(price)
    before, after = _totals(base, fprice), _totals(new, fprice)
    was, now = _blocked(base), _blocked(new)
    newly, unblocked = sorted(now - was), sorted(was - now)
    data = {
        "window": window.describe(),
        "settings": {
            "credit_price": plain(price),
            "billing": billing.to_env(),
            "behaviour": {
                "buy_probability": knobs.buy_probability,
                "pack_amount": plain(knobs.pack_amount),
                "seed": knobs.seed,
            },
        },
        "engine": pair.engine,
        "totals": {"before": before, "after": after, "change": _change(before, after)},
        "models": [],
        "users": {
            "newly_blocked": len(newly),
            "unblocked": len(unblocked),
            "newly_blocked_users": newly[:MAX_USERS_LISTED],
            "unblocked_users": unblocked[:MAX_USERS_LISTED],
        },
        "below_cost": _below_cost(pair.below_cost, price, {c.key for c in changes}),
        "changes": len(changes),
        "computed_at": datetime.now(UTC).isoformat(),
    }
    clean = _clean(data)
    clean["models"] = _model_rows(base, new, fprice)  # already JSON-safe, and large
    return Impact(clean)


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
