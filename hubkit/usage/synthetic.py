"""A seeded synthetic usage generator that looks like real gateway traffic.

Shape of the traffic (all drawn with one ``numpy.random.Generator`` from ``seed``, so a
seed always gives the same table):

- users with heavy-tailed activity (Pareto weights: a few users make most calls);
- users arrive over time: ``initial_users`` share exist at ``start``, the rest sign in at
  uniformly spread moments, and call only after arriving;
- a diurnal pattern: the hour of each call follows ``1 + a·cos(2π(h − peak)/24)``;
- a model mix drawn from the given rates (Zipf popularity within each type, a type mix
  favouring chat) and counts per type: chat prompts / completions log-normal, a share
  of prompts served from cache (cache reads) and a few cache writes; embeddings have input
  only; image calls make 1–4 images; video calls make 4–10 seconds. Which of these a type
  gets follows what it bills (:data:`hubkit.domain.BILLING`): a type billing images draws
  images, one billing seconds draws seconds, one billing output tokens draws a chat call.

Everything is vectorised numpy: a million rows take about a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from hubkit.domain import OUTPUT_COUNTS, Rate, RateType, billing_of, billing_rows
from hubkit.errors import ValidationError
from hubkit.usage.schema import USAGE_COLUMNS, validate_usage

#: Default share of calls per type (renormalised over the types the rates offer).
DEFAULT_TYPE_MIX: Mapping[str, float] = {
    RateType.CHAT_COMPLETION.value: 0.85,
    RateType.EMBEDDING.value: 0.10,
    RateType.IMAGE_GENERATION.value: 0.04,
    RateType.VIDEO.value: 0.01,
}
_US_PER_DAY = 86_400 * 10**6


def _rate_keys(rates: Any) -> list[tuple[str, str, str]]:
    if isinstance(rates, pd.DataFrame):
        frame = rates[["provider", "model", "type"]].astype(str).drop_duplicates()
        keys = list(frame.itertuples(index=False, name=None))
    else:
        keys = []
        for item in rates:
            if isinstance(item, Rate):
                keys.append((item.provider, item.model, billing_of(item.type).type))
            else:
                provider, model, kind = item
                keys.append((str(provider), str(model), billing_of(kind).type))
        keys = list(dict.fromkeys(keys))
    if not keys:
        raise ValidationError("generate_usage needs at least one rate to draw models from")
    return sorted(keys)


def _model_weights(
    keys: list[tuple[str, str, str]], rng: np.random.Generator, type_mix: Mapping[str, float]
) -> np.ndarray:
    kinds = np.array([k[2] for k in keys])
    weights = np.zeros(len(keys))
    present = [t for t in type_mix if (kinds == t).any() and type_mix[t] > 0]
    if not present:
        raise ValidationError(
            f"type_mix gives no weight to any type the rates offer ({sorted(set(kinds))})",
            field="type_mix",
        )
    total_share = sum(type_mix[t] for t in present)
    for kind in present:
        idx = np.flatnonzero(kinds == kind)
        # Zipf popularity in a seeded order: a few models take most of a type's traffic.
        ranks = rng.permutation(len(idx)) + 1
        zipf = 1.0 / ranks**1.1
        weights[idx] = type_mix[kind] / total_share * zipf / zipf.sum()
    normalised: np.ndarray = weights / weights.sum()  # numpy types .sum() as Any
    return normalised


def _diurnal_offsets(
    rng: np.random.Generator, n: int, amplitude: float, peak_hour: float
) -> np.ndarray:
    """Time of day in fractions of a day, with density ∝ 1 + a·cos(2π(h − peak)/24)."""
    grid = np.linspace(0.0, 1.0, 24 * 60 + 1)
    density = 1.0 + amplitude * np.cos(2 * np.pi * (grid * 24 - peak_hour) / 24)
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, grid)


def generate_usage(
    rates: Iterable[Rate] | pd.DataFrame | Iterable[tuple[str, str, Any]],
    *,
    n_calls: int = 100_000,
    n_users: int = 1_000,
    start: Any = "2025-01-01",
    days: float = 30,
    seed: int = 0,
    n_apps: int = 5,
    user_tail: float = 1.2,
    initial_users: float = 0.3,
    diurnal_amplitude: float = 0.6,
    peak_hour: float = 15.0,
    type_mix: Mapping[str, float] | None = None,
    cache_share: float = 0.25,
    cache_write_share: float = 0.05,
) -> pd.DataFrame:
    """A usage table of ``n_calls`` calls by ``n_users`` users over ``days`` from ``start``.

    ``rates`` are the models to draw from: Rate objects, a rate timeline, or
    (provider, model, type) triples. The result is sorted by time; text columns are
    categorical. Deterministic for a given seed and arguments.
    """
    if n_calls < 0 or n_users < 1 or days <= 0 or n_apps < 1:
        raise ValidationError(
            "generate_usage needs n_calls ≥ 0, n_users ≥ 1, days > 0 and n_apps ≥ 1",
            field="n_calls",
        )
    if user_tail <= 0:
        raise ValidationError("user_tail must be > 0 (smaller = heavier tail)", field="user_tail")
    rng = np.random.default_rng(seed)
    keys = _rate_keys(rates)
    weights = _model_weights(keys, rng, type_mix or DEFAULT_TYPE_MIX)
    start_ts = pd.Timestamp(start)
    start_ts = (
        start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts.tz_convert("UTC")
    )

    # Users: heavy-tailed activity, arrival times, an app each.
    activity = rng.pareto(user_tail, n_users) + 1.0
    arrival = rng.random(n_users) * days
    arrival[rng.random(n_users) < initial_users] = 0.0
    # Late arrivals have less time to call: scale activity by the time they are present.
    activity *= (days - arrival) / days
    calls_per_user = rng.multinomial(n_calls, activity / activity.sum())
    app_of_user = rng.choice(n_apps, n_users, p=_zipf(n_apps)).astype(np.int8)
    user = np.repeat(np.arange(n_users, dtype=np.int32), calls_per_user)

    type_names = [b.type for b in billing_rows()]
    kind_of_key = np.array([type_names.index(k[2]) for k in keys], dtype=np.int8)
    # per type code: which output count it bills, and whether it is an embedding
    billed = np.array([billing_of(t).output_index for t in type_names], dtype=np.int8)
    embedding = np.array([t == RateType.EMBEDDING for t in type_names])
    time_ns = np.empty(n_calls, dtype=np.int64)
    model = np.empty(n_calls, dtype=np.int32)
    counts = {c: np.empty(n_calls, dtype=np.int32) for c in _INT_COUNTS}
    counts["seconds"] = np.empty(n_calls, dtype=np.float64)
    origin = start_ts.as_unit("ns").value
    # In chunks, so that the temporaries of ten million rows never exist at once.
    for lo in range(0, n_calls, _CHUNK):
        hi = min(n_calls, lo + _CHUNK)
        t_arrival = arrival[user[lo:hi]]
        t = t_arrival + rng.random(hi - lo) * (days - t_arrival)
        t = np.floor(t) + _diurnal_offsets(rng, hi - lo, diurnal_amplitude, peak_hour)
        t = np.clip(t, t_arrival, np.nextafter(days, 0))
        # Microsecond resolution, like the gateway's own timestamps (and a CSV round trip).
        time_ns[lo:hi] = origin + np.round(t * _US_PER_DAY).astype(np.int64) * 1000
        model[lo:hi] = rng.choice(len(keys), hi - lo, p=weights)
        kind = kind_of_key[model[lo:hi]]
        part = _token_counts(rng, billed[kind], embedding[kind], cache_share, cache_write_share)
        for name, values in part.items():
            counts[name][lo:hi] = values

    order = np.argsort(time_ns, kind="stable")
    columns: tuple[np.ndarray, ...] = (time_ns, user, model, *counts.values())  # mixed dtypes
    for values in columns:
        values[:] = values[order]
    del order
    providers = sorted({k[0] for k in keys})
    models = sorted({k[1] for k in keys})
    key_provider = np.array([providers.index(k[0]) for k in keys], dtype=np.int16)
    key_model = np.array([models.index(k[1]) for k in keys], dtype=np.int32)
    key_type = kind_of_key
    # Only users who made a call become categories (no unused ones to drop later).
    active = np.flatnonzero(calls_per_user)
    compact = np.zeros(n_users, dtype=np.int32)
    compact[active] = np.arange(active.size, dtype=np.int32)
    app_of_user = app_of_user[active]
    user[:] = compact[user]
    user_names = [f"user-{i:06d}" for i in active]
    app_names = [f"app-{i:02d}" for i in range(n_apps)]
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(time_ns.view("datetime64[ns]"), utc=True),  # ints: 100× slower
            "user": pd.Categorical.from_codes(user, categories=pd.Index(user_names)),
            "app": pd.Categorical.from_codes(app_of_user[user], categories=pd.Index(app_names)),
            "provider": pd.Categorical.from_codes(
                key_provider[model], categories=pd.Index(providers)
            ),
            "model": pd.Categorical.from_codes(key_model[model], categories=pd.Index(models)),
            "type": pd.Categorical.from_codes(key_type[model], categories=pd.Index(type_names)),
            **{c: counts[c] for c in USAGE_COLUMNS[6:]},
        },
        copy=False,
    )
    # Validation also drops categories nobody used (models nobody drew, apps).
    return validate_usage(frame)


_CHUNK = 1_000_000
_INT_COUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "images")


def _zipf(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1)
    normalised: np.ndarray = w / w.sum()
    return normalised


def _lognormal_int(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return np.maximum(1, rng.lognormal(np.log(median), sigma, n)).astype(np.int32)


def _token_counts(
    rng: np.random.Generator,
    billed: np.ndarray,
    embed: np.ndarray,
    cache_share: float,
    cache_write_share: float,
) -> dict[str, np.ndarray]:
    """Counts per call; ``billed`` is the index into OUTPUT_COUNTS of what its type bills.

    The traffic shape follows the billed count; embeddings (billed per output token like
    chat) are the one type shaped by name: an embedding call sends input and gets vectors.
    """
    n = billed.size

    def bills(count: str) -> np.ndarray:
        mask: np.ndarray = billed == OUTPUT_COUNTS.index(count)
        return mask

    chat = bills("output_tokens") & ~embed
    image, video = bills("images"), bills("seconds")
    # Draw every distribution for all rows (keeps the stream independent of the mix) and
    # keep what applies to each row's type.
    prompt = _lognormal_int(rng, 900, 1.0, n)
    completion = _lognormal_int(rng, 250, 0.9, n)
    embed_input = _lognormal_int(rng, 300, 1.0, n)
    cached_frac = rng.uniform(0.3, 0.9, n) * (rng.random(n) < cache_share)
    cache_write = _lognormal_int(rng, 1500, 0.8, n) * (rng.random(n) < cache_write_share)
    images = 1 + np.minimum(rng.geometric(0.6, n) - 1, 3)
    seconds = rng.choice(np.array([4.0, 5.0, 8.0, 10.0]), n)

    # int32 counts: a 10-million-row table stays small (the schema takes any integer dtype).
    zero = np.int32(0)
    cache_read = np.where(chat, (prompt * cached_frac).astype(np.int32), zero)
    input_tokens = np.where(chat, prompt - cache_read, np.where(embed, embed_input, zero))
    return {
        "input_tokens": input_tokens.astype(np.int32, copy=False),
        "output_tokens": np.where(chat, completion, zero),
        "cache_read_tokens": cache_read,
        "cache_write_tokens": np.where(chat, cache_write, zero).astype(np.int32, copy=False),
        "images": np.where(image, images, 0).astype(np.int32),
        "seconds": np.where(video, seconds, 0.0),
    }
