"""The vectorised reconciliation equals the row-by-row Decimal reference, row for row.

Hypothesis draws rate timelines (periods, cache rates set / 0 / missing, rates with more
places than 10, huge rates) and calls (unknown models, fractional seconds, counts past
int64's reach once priced, stored amounts missing, exact, one unit off, anything) so that
both the fixed-point path and the Decimal fallback are exercised.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from _billing_data import mixed_rates
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubkit.decimals import EXACT
from hubkit.replay.reconcile import (
    BREAKDOWNS,
    reconcile,
    reconcile_breakdown,
    reconcile_reference,
)
from hubkit.replay.reconcile_rules import exact_sum
from hubkit.replay.timeline import price_exact, timeline_from_rates
from hubkit.usage import generate_usage
from hubkit.usage.gateway import STORED_CREDITS_TYPE

T0 = pd.Timestamp("2025-01-01T00:00:00Z")
_KEYS = [
    ("openai", "chat", "chatCompletion"),
    ("openai", "img", "imageGeneration"),
    ("google", "veo", "video"),
    ("openai", "emb", "embedding"),
]


def _amount(places: int, top: int) -> st.SearchStrategy[Decimal]:
    return st.integers(0, top).map(lambda n: Decimal(n).scaleb(-places))


_RATE = st.one_of(
    _amount(10, 10**7),  # the gateway's 10 places
    _amount(6, 10**3),
    _amount(12, 10**9),  # more places than the rule keeps: the Decimal path
    st.sampled_from([Decimal("1E+9"), Decimal(0)]),  # huge (int64 overflow) and free
)
_CACHE = st.one_of(st.none(), st.just(Decimal(0)), _amount(10, 10**6))


@st.composite
def _timeline(draw: st.DrawFn) -> pd.DataFrame:
    rows = []
    for key in _KEYS[: draw(st.integers(1, len(_KEYS)))]:
        cuts = sorted(set(draw(st.lists(st.integers(1, 9), max_size=2))))
        bounds = [None, *(T0 + pd.Timedelta(days=c) for c in cuts), None]
        for start, end in zip(bounds, bounds[1:], strict=False):
            rows.append(
                {
                    "provider": key[0], "model": key[1], "type": key[2],
                    "input_rate": draw(_RATE), "output_rate": draw(_RATE),
                    "cache_read_rate": draw(_CACHE), "cache_write_rate": draw(_CACHE),
                    "valid_from": start, "valid_to": end,
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


_COUNT = st.one_of(st.integers(0, 3000), st.just(0), st.integers(0, 2**40))


@st.composite
def _calls(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 30))
    keys = [*_KEYS, ("openai", "unknown-model", "chatCompletion")]
    records = []
    for i in range(n):
        provider, model, kind = draw(st.sampled_from(keys))
        records.append(
            {
                "time": T0 + pd.Timedelta(hours=draw(st.integers(-24, 24 * 11))),
                "user": draw(st.sampled_from(["u1", "u2"])), "provider": provider,
                "model": model, "type": kind, "input_tokens": draw(_COUNT),
                "output_tokens": draw(_COUNT), "cache_read_tokens": draw(_COUNT),
                "cache_write_tokens": draw(_COUNT), "images": draw(st.integers(0, 4)),
                "seconds": draw(st.sampled_from([0.0, 4.0, 2.5, 0.1])),
                "source_id": f"c{i}",
            }
        )  # fmt: skip
    return pd.DataFrame(records)


def _stored(draw: st.DrawFn, priced: Decimal | None) -> Decimal | None:
    mode = draw(st.sampled_from(["none", "exact", "up", "down", "any", "zero"]))
    if mode == "none":
        return None
    if mode == "zero":
        return Decimal(0)
    if mode == "any" or priced is None:
        return draw(_amount(8, 10**12))
    exact = priced.quantize(Decimal("1E-8"), ROUND_HALF_UP, context=EXACT)
    step = Decimal("1E-8")
    return {"exact": exact, "up": EXACT.add(exact, step), "down": EXACT.subtract(exact, step)}[mode]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), timeline=_timeline(), calls=_calls(), arrow=st.booleans())
def test_vectorised_equals_the_row_by_row_reference(
    data: st.DataObject, timeline: pd.DataFrame, calls: pd.DataFrame, arrow: bool
) -> None:
    from hubkit.usage import validate_usage

    usage = validate_usage(calls)
    priced = price_exact(usage, timeline)["credits"].tolist()
    values = [_stored(data.draw, p) for p in priced]
    # as the importer writes them (Arrow decimals) or as plain Decimal objects
    usage["stored_credits"] = (
        pd.Series(
            pa.array(values, type=STORED_CREDITS_TYPE), dtype=pd.ArrowDtype(STORED_CREDITS_TYPE)
        )
        if arrow
        else pd.Series(values, dtype=object)
    )
    places = data.draw(st.sampled_from([8, 8, 10, 0, 12]))
    fast, fast_summary = reconcile(usage, timeline, places=places)
    slow, slow_summary = reconcile_reference(usage, timeline, places=places)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast_summary == slow_summary
    for by in BREAKDOWNS:
        table = reconcile_breakdown(fast, by)
        for key in ("stored_total", "repriced_total", "difference_total"):
            assert exact_sum(table[key]) == fast_summary[key]
        assert table["mismatch"].sum() == fast_summary["mismatch"]


@pytest.fixture(scope="module")
def generated() -> tuple[pd.DataFrame, pd.DataFrame]:
    rates = mixed_rates()
    usage = generate_usage(rates, n_calls=20_000, n_users=200, days=14, seed=11)
    timeline = timeline_from_rates(rates)
    credits = price_exact(usage, timeline)["credits"]
    rng = np.random.default_rng(5)
    shift = rng.choice([0, 0, 0, 1, -1, 10**6], size=len(usage))
    step = Decimal("1E-8")
    stored = [
        None if c is None or s == 10**6 and i % 7 == 0
        else c.quantize(step, ROUND_HALF_UP) + s * step
        for i, (c, s) in enumerate(zip(credits, shift, strict=True))
    ]  # fmt: skip
    usage["stored_credits"] = pd.Series(
        pa.array(stored, type=STORED_CREDITS_TYPE), dtype=pd.ArrowDtype(STORED_CREDITS_TYPE)
    )
    usage["source_id"] = [f"c{i}" for i in range(len(usage))]
    return usage, timeline


def test_vectorised_equals_reference_on_generated_traffic(
    generated: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    usage, timeline = generated
    fast, fast_summary = reconcile(usage, timeline)
    slow, slow_summary = reconcile_reference(usage, timeline)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast_summary == slow_summary
    assert fast_summary["mismatch"] > 1000 and fast_summary["causes"]["unexplained"] > 0
    assert fast_summary["causes"]["rounding at the stored precision"] > 1000


def test_an_index_that_is_not_a_range_is_kept(
    generated: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    usage, timeline = generated
    part = usage.iloc[::3]
    fast, _ = reconcile(part, timeline)
    slow, _ = reconcile_reference(part, timeline)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast.index.equals(part.index)


def test_no_calls_reconcile_to_zeros(generated: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    usage, timeline = generated
    frame, summary = reconcile(usage.iloc[:0], timeline)
    assert frame.empty and list(frame.columns)[-2:] == ["status", "cause"]
    assert summary["rows"] == 0 and summary["difference_total"] == 0
    assert summary == reconcile_reference(usage.iloc[:0], timeline)[1]
