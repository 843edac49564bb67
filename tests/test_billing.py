"""The one rate-type table (:data:`hubkit.domain.BILLING`) and every twin that reads it.

An enum cannot grow at runtime, the table can: each test here adds a FAKE rate type (one
:class:`~hubkit.domain.Billing` row, nothing else) and checks that the Decimal rule, the
numpy twin, the SQL twin (SQLite and PostgreSQL), the gateway-record importer, the schema
check and the synthetic generator all bill it exactly like the real type billing the same
count, without any of them knowing its name. The fake billed per second (like ``video``)
is the case that matters; fakes billed per image and per token catch a twin that falls
back to a default ("anything else is seconds") instead of reading the table. The pins of
each twin to the Decimal rule on the real types stay with their modules (test_pricing,
test_replay, test_usage_sql, test_scenarios).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, delete

from hubkit import domain
from hubkit.decimals import quantize
from hubkit.domain import BILLING, Billing, RateType, billing_of
from hubkit.errors import ValidationError
from hubkit.pricing import call_credits
from hubkit.replay.timeline import RateBook, load_rate_timeline, price_exact, validate_timeline
from hubkit.store.schema import RateHistoryRow, RateRow, rate_periods_table, usage_table
from hubkit.usage.gateway import read_hub_export
from hubkit.usage.schema import inapplicable_counts, validate_usage
from hubkit.usage.sql import (
    SQLITE_RTOL,
    aggregate_usage,
    create_usage_tables,
    is_exact,
    load_usage,
)
from hubkit.usage.synthetic import generate_usage

D = Decimal
T0 = pd.Timestamp("2025-01-01T00:00:00Z")
PER_SECOND = Billing("fakeSpeech", "seconds")
# (the fake row, the real type that bills the same count)
FAKES = [
    pytest.param(PER_SECOND, RateType.VIDEO.value, id="per-second"),
    pytest.param(Billing("fakeSketch", "images"), RateType.IMAGE_GENERATION.value, id="per-image"),
    pytest.param(Billing("fakeChat", "output_tokens"), RateType.CHAT_COMPLETION.value, id="token"),
]


@contextmanager
def fake_type(fake: Billing) -> Iterator[None]:
    """BILLING with the fake row added; every twin looks the table up at call time."""
    table = MappingProxyType({**domain.BILLING, fake.type: fake})
    with patch.object(domain, "BILLING", table):
        yield


# -- the table itself --------------------------------------------------------------------------


def test_one_row_per_rate_type_billing_what_domain_md_says() -> None:
    assert list(BILLING) == [t.value for t in RateType]
    assert {t: billing_of(t).output for t in RateType} == {
        RateType.CHAT_COMPLETION: "output_tokens",
        RateType.EMBEDDING: "output_tokens",
        RateType.IMAGE_GENERATION: "images",
        RateType.VIDEO: "seconds",
    }
    assert billing_of(" video ") is BILLING["video"] and billing_of(RateType.VIDEO).type == "video"
    assert BILLING["video"].ignored == ("output_tokens", "images")
    # The store's type column holds every type: a new row needs no migration.
    limit = RateRow.__table__.c.type.type.length
    assert all(len(name) <= limit for name in BILLING)
    with pytest.raises(ValidationError, match="type must be one of chatCompletion, image"):
        billing_of("audio")
    with pytest.raises(ValueError, match="output must be one of"):
        Billing("speech", "characters")


def test_every_billed_type_name_fits_the_stores_type_columns() -> None:
    """A new rate type needs no migration only while its name fits every ``type`` column."""
    columns = [
        RateRow.__table__.c.type,
        RateHistoryRow.__table__.c.type,
        usage_table.c.type,
        rate_periods_table.c.type,
    ]
    for name in BILLING:
        for column in columns:
            assert len(name) <= column.type.length, (name, column)


def test_the_catalog_modes_come_from_the_table() -> None:
    modes = {m: b.type for b in BILLING.values() if b.catalog for m in b.catalog.modes}
    assert modes == {
        "chat": "chatCompletion",
        "completion": "chatCompletion",
        "responses": "chatCompletion",
        "embedding": "embedding",
        "image_generation": "imageGeneration",
        "video_generation": "video",
    }


def test_without_its_row_a_type_is_refused_everywhere() -> None:
    with pytest.raises(ValidationError, match="type must be one of"):
        call_credits(PER_SECOND.type, input_rate=1, output_rate=1, seconds=1)
    with pytest.raises(ValidationError, match="is not a rate type"):
        validate_usage(_usage([_row(PER_SECOND.type, 0, {"seconds": D(1)})]))
    with pytest.raises(ValidationError, match="type must be one of"):
        _timeline(PER_SECOND.type, RateType.VIDEO.value, dict.fromkeys(PRICE_COLUMNS, D(0)))
    with fake_type(PER_SECOND):
        assert call_credits(PER_SECOND.type, input_rate=1, output_rate=2, seconds=D("1.5")) == 3


# -- the fake per-second type through every twin -------------------------------------------

rates = st.decimals(min_value=0, max_value=D("0.05"), places=10)
costs = st.one_of(st.none(), st.decimals(min_value=0, max_value=D("0.01"), places=12))
COUNT_NAMES = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


PRICE_COLUMNS = (
    "input_rate",
    "output_rate",
    "cache_read_rate",
    "cache_write_rate",
    "unit_cost_input",
    "unit_cost_output",
)


@st.composite
def prices(draw: st.DrawFn) -> dict[str, Decimal | None]:
    return {
        "input_rate": draw(rates),
        "output_rate": draw(rates),
        "cache_read_rate": draw(st.one_of(st.none(), rates)),
        "cache_write_rate": draw(st.one_of(st.none(), rates)),
        "unit_cost_input": draw(costs),
        "unit_cost_output": draw(costs),
    }


@st.composite
def counts(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {name: draw(st.integers(0, 10**6)) for name in COUNT_NAMES}
    out["images"] = draw(st.integers(0, 20))
    out["seconds"] = draw(st.decimals(min_value=0, max_value=10**4, places=3))
    return out


def _row(kind: str, minute: int, call: dict[str, Any]) -> dict[str, Any]:
    return {
        "time": T0 + pd.Timedelta(minutes=minute),
        "user": "u1",
        "app": "app",
        "provider": "acme",
        "model": "speak",
        "type": kind,
        **{name: call.get(name, 0) for name in (*COUNT_NAMES, "images")},
        "seconds": float(call.get("seconds", 0)),
    }


def _usage(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def _timeline(fake: str, twin: str, price: dict[str, Decimal | None]) -> pd.DataFrame:
    rows = [{"provider": "acme", "model": "speak", "type": t, **price} for t in (fake, twin)]
    return validate_timeline(pd.DataFrame(rows))


def _by_hand(units: str, call: dict[str, Any], price: dict[str, Any]) -> Decimal:
    """domain.md's formula written out, ``units`` (the row's count) at outputRate."""
    rate_in = price["input_rate"]
    read = rate_in if price["cache_read_rate"] is None else price["cache_read_rate"]
    write = rate_in if price["cache_write_rate"] is None else price["cache_write_rate"]
    return quantize(
        call["input_tokens"] * rate_in
        + call[units] * price["output_rate"]
        + call["cache_read_tokens"] * read
        + call["cache_write_tokens"] * write
    )


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


# One database per test (a fixture), emptied by each example before it loads its calls.
@pytest.mark.parametrize(("fake", "twin"), FAKES)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(price=prices(), calls=st.lists(counts(), min_size=1, max_size=6))
def test_a_fake_type_bills_like_its_real_twin_in_every_twin_of_the_rule(
    engine: Engine, fake: Billing, twin: str, price: dict[str, Any], calls: list[dict[str, Any]]
) -> None:
    with fake_type(fake):
        # each call twice: as the fake type and as its twin, same counts and rates
        rows = [_row(kind, i, call) for i, call in enumerate(calls) for kind in (fake.type, twin)]
        usage = validate_usage(_usage(rows))
        timeline = _timeline(fake.type, twin, price)
        is_fake = (usage["type"] == fake.type).to_numpy()

        # the Decimal rule: the formula by hand, and the twin's credits
        exact = price_exact(usage, timeline)
        credits = exact["credits"].tolist()
        assert credits[0::2] == [_by_hand(fake.output, c, price) for c in calls]
        assert credits[0::2] == credits[1::2]
        assert exact["cost"].tolist()[0::2] == exact["cost"].tolist()[1::2]

        # the numpy twin, within its documented bound of the Decimal rule
        fast = RateBook(timeline).price(usage)
        want = np.array([float(c) for c in credits])
        assert np.all(np.abs(fast.credits - want) <= 5e-11 + 1e-14 * want)
        assert np.array_equal(fast.credits[is_fake], fast.credits[~is_fake])

        # the schema check: the same counts are ignored for both
        flagged = inapplicable_counts(usage).to_numpy()
        assert np.array_equal(flagged[is_fake], flagged[~is_fake])
        ignored = [any(c[name] > 0 for name in fake.ignored) for c in calls]
        assert flagged[is_fake].tolist() == ignored

        # the SQL twin: exact NUMERIC on PostgreSQL, float within SQLITE_RTOL on SQLite
        create_usage_tables(engine)
        with engine.begin() as conn:
            conn.execute(delete(usage_table))
        load_usage(engine, usage)
        load_rate_timeline(engine, timeline)
        by_type = aggregate_usage(engine, ["type"]).set_index("type")["credits"]
        total = sum(credits[0::2], D(0))
        for kind in (fake.type, twin):
            if is_exact(engine):
                assert by_type[kind] == total
            else:
                assert by_type[kind] == pytest.approx(float(total), rel=SQLITE_RTOL, abs=1e-12)


def _model_calls(
    kind: str, units: str, calls: list[dict[str, Any]], in_total: list[bool]
) -> pd.DataFrame:
    """ModelCalls rows as the gateway writes them: counts in usageMetrics; images or
    seconds, when billed (``units``) and ``in_total``, only in totalUsage."""
    records = []
    for i, (call, total) in enumerate(zip(calls, in_total, strict=True)):
        metrics = {
            "inputTokens": call["input_tokens"],
            "outputTokens": call["output_tokens"],
            "cacheReadInputTokens": call["cache_read_tokens"],
            "cacheCreationInputTokens": call["cache_write_tokens"],
            "numberOfImageGeneration": call["images"],
            "mediaDuration": str(call["seconds"]),
        }
        in_total_usage = total and units in ("images", "seconds")
        if in_total_usage:
            del metrics["numberOfImageGeneration" if units == "images" else "mediaDuration"]
        records.append(
            {
                "id": f"{kind}-{i}",
                "providerId": "p1",
                "model": "speak",
                "type": kind,
                "totalUsage": str(call[units]) if in_total_usage else "0",
                "usageMetrics": json.dumps(metrics),
                "credits": "0",
                "status": "success",
                "appDid": "app",
                "userDid": "u1",
                "callTime": int(T0.timestamp()) + i,
            }
        )
    return pd.DataFrame(records)


def _import(frame: pd.DataFrame) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model-calls.csv"
        frame.to_csv(path, index=False)
        return read_hub_export(path, providers={"p1": "acme"})


@pytest.mark.parametrize(("fake", "twin"), FAKES)
@settings(max_examples=25)
@given(
    price=prices(),
    calls=st.lists(counts(), min_size=1, max_size=5),
    data=st.data(),
)
def test_the_importer_keeps_and_prices_a_fake_type_like_its_twin(
    fake: Billing, twin: str, price: dict[str, Any], calls: list[dict[str, Any]], data: Any
) -> None:
    in_total = data.draw(st.lists(st.booleans(), min_size=len(calls), max_size=len(calls)))
    raw = pd.concat(
        [_model_calls(kind, fake.output, calls, in_total) for kind in (fake.type, twin)]
    )
    unknown = _import(raw).report  # without its row the gateway's type is skipped
    assert unknown.skipped_types == {fake.type: len(calls)}
    with fake_type(fake):
        imported = _import(raw)
        assert imported.report.skipped_types == {}
        usage = imported.usage
        mine = usage[usage["type"] == fake.type]
        theirs = usage[usage["type"] == twin]
        units = [float(c[fake.output]) for c in calls]
        assert mine[fake.output].astype(float).tolist() == units
        for name in (*COUNT_NAMES, "images", "seconds"):
            assert mine[name].tolist() == theirs[name].tolist()
        repriced = price_exact(usage, _timeline(fake.type, twin, price))["credits"]
        n = len(calls)
        assert repriced.tolist()[:n] == [_by_hand(fake.output, c, price) for c in calls]
        assert repriced.tolist()[:n] == repriced.tolist()[n:]


@pytest.mark.parametrize(("fake", "twin"), FAKES)
@settings(max_examples=10)
@given(seed=st.integers(0, 2**16), price=prices())
def test_the_generator_draws_the_count_a_fake_type_bills(
    fake: Billing, twin: str, seed: int, price: dict[str, Any]
) -> None:
    keys = [("acme", "speak", fake.type), ("acme", "speak", twin)]
    mix = {fake.type: 0.5, twin: 0.5}
    with fake_type(fake):
        usage = generate_usage(keys, n_calls=400, n_users=7, days=3, seed=seed, type_mix=mix)
        for kind in (fake.type, twin):  # the traffic of the billed count, nothing it ignores
            frame = usage[usage["type"] == kind]
            assert len(frame) and (frame[fake.output] > 0).all()
            assert (frame[list(fake.ignored)].to_numpy() == 0).all()
        assert not inapplicable_counts(usage).any()
        timeline = _timeline(fake.type, twin, price)
        exact = price_exact(usage, timeline)
        want = np.array([float(c) for c in exact["credits"]])
        assert np.all(
            np.abs(RateBook(timeline).price(usage).credits - want) <= 5e-11 + 1e-14 * want
        )
        for row, credits in zip(usage.itertuples(index=False), exact["credits"], strict=True):
            call = {name: getattr(row, name) for name in COUNT_NAMES}
            call |= {"images": row.images, "seconds": D(str(row.seconds))}
            assert credits == _by_hand(fake.output, call, price)
