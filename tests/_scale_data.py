"""Data and comparisons shared by the dataset / Dask / SQL tests (issue 7).

A rate timeline with history (a price change mid-period, a model that only starts on day
2, a model without unit costs) and usage drawn from it plus calls no rate covers, so that
every path must get time-aware pricing and unsupported calls right.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

import numpy as np
import pandas as pd
from _billing_data import T0, mixed_rates

from hubkit.billing_settings import BillingSettings
from hubkit.replay import Behaviour, Kpis
from hubkit.replay.timeline import timeline_from_rates, validate_timeline
from hubkit.usage import generate_usage, validate_usage

D = Decimal
CHANGE = T0 + pd.Timedelta(days=2, hours=7)  # gpt-4o gets dearer here
VIDEO_FROM = T0 + pd.Timedelta(days=1)  # veo-2 has no rate before this
PRICE = D("0.001")
BILLING = BillingSettings(
    credit_based_billing_enabled=True,
    new_user_credit_grant_enabled=True,
    new_user_credit_grant_amount=D(3),
    credit_expiration_days=3,
)
KNOBS = Behaviour(buy_probability=0.5, pack_amount=D("0.5"), seed=4)
#: Amounts of a partitioned run vs the one-table run: only the order of additions differs.
AMOUNT_RTOL = 1e-9


def history_timeline() -> pd.DataFrame:
    frame = timeline_from_rates(mixed_rates())
    gpt = frame.index[frame["model"] == "gpt-4o"][0]
    later = frame.loc[gpt].copy()
    later["input_rate"] = D("0.003")
    later["valid_from"] = CHANGE
    frame.loc[gpt, "valid_to"] = CHANGE
    frame.loc[frame["model"] == "veo-2", "valid_from"] = VIDEO_FROM
    return validate_timeline(pd.concat([frame, later.to_frame().T], ignore_index=True))


def scale_usage(n_calls: int = 20_000, n_users: int = 300, seed: int = 7) -> pd.DataFrame:
    """Generated traffic over 6 days plus calls of a model nobody priced."""
    usage = generate_usage(mixed_rates(), n_calls=n_calls, n_users=n_users, days=6, seed=seed)
    stray = pd.DataFrame(
        {
            "time": T0 + pd.to_timedelta(np.arange(25) * 5, unit="h"),
            "user": [f"user-{i:06d}" for i in range(25)],
            "app": "app-00",
            "provider": "openai",
            "model": "gpt-unknown",
            "type": "chatCompletion",
            "input_tokens": 100,
            "output_tokens": 10,
            **{c: 0 for c in ("cache_read_tokens", "cache_write_tokens", "images")},
            "seconds": 0.0,
        }
    )
    text = {c: str for c in ("user", "app", "provider", "model", "type")}
    frame = pd.concat([usage.astype(text), stray], ignore_index=True)
    return validate_usage(frame.sort_values("time", kind="stable").reset_index(drop=True))


def close(a: float, b: float, rtol: float = AMOUNT_RTOL) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-12


def assert_kpis_match(got: Kpis, want: Kpis) -> None:
    """Counts equal; amounts within :data:`AMOUNT_RTOL` (the documented float bound)."""
    assert want.calls > 0
    for field in dataclasses.fields(Kpis):
        a, b = getattr(got, field.name), getattr(want, field.name)
        if isinstance(b, int):
            assert a == b, (field.name, a, b)
        else:
            assert close(a, b), (field.name, a, b)


def assert_frames_match(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    """Same rows by ``keys``; integer columns equal, float columns within the bound."""
    a = got.sort_values(keys).reset_index(drop=True)
    b = want.sort_values(keys).reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for column in b.columns:
        x, y = a[column], b[column]
        if y.dtype.kind == "f":
            assert np.allclose(x, y, rtol=AMOUNT_RTOL, atol=1e-12, equal_nan=True), column
        else:
            assert (x.astype(str).to_numpy() == y.astype(str).to_numpy()).all(), column
