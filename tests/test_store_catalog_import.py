"""Store.import_catalog, set-based, against the per-row import it replaced, on both databases.

Two identical stores are seeded the same way; one imports with the reference (the per-row
ORM import kept in tests/_catalog_reference.py), the other with ``Store.import_catalog``.
Both must end with the same rates, unit costs and history rows (timestamps aside), return
the same result (counts, drift flags, history ids) and refuse the same way.
"""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import _postgres
import pytest
import sqlalchemy as sa
from _catalog_reference import reference_import
from _stores import add_provider, snapshot, table_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit._gc import gc_paused
from hubkit.catalog import Catalog, load_catalog, shipped_catalog_path
from hubkit.decimals import plain
from hubkit.domain import RateSpec, RateType, UnitCosts, checked_rate, validate_model_metadata
from hubkit.errors import StaleVersionError, StorageError, ValidationError
from hubkit.pricing import margin_rate
from hubkit.store import Store
from hubkit.store.imports import Pricer, metadata_json

D = Decimal
PROVIDERS = ("openai", "anthropic", "google", "xai", "bedrock")  # not deepseek: not in store
TIMES = {"model_rates": ("created_at", "updated_at"), "rate_history": ("changed_at",)}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def twin_urls(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[str, str]]:
    """Two fresh databases of one back end: (reference, set-based)."""
    if request.param == "sqlite":
        yield (f"sqlite:///{tmp_path / 'reference.db'}", f"sqlite:///{tmp_path / 'hubkit.db'}")
        return
    server = request.getfixturevalue("postgres_server")
    names = [_postgres.database_name(f"catalog_{side}") for side in ("ref", "new")]
    for name in names:
        _postgres.create_database(server, name)
    try:
        yield (server.url(names[0]), server.url(names[1]))
    finally:
        for name in names:
            _postgres.drop_database(server, name)


def _catalog() -> Catalog:
    """The shipped sample (320 entries: every rate type, cache costs, metadata) plus edges."""
    sample = load_catalog(shipped_catalog_path())
    gpt = sample.find("openai", "gpt-4o", "chatCompletion")
    assert gpt is not None
    extras = (
        # an empty metadata object is stored as none; a cache write cost without a read one
        dataclasses.replace(
            gpt, model="edge-empty-metadata", model_metadata={}, cache_read_cost=None,
            cache_write_cost=D("0.00000375"), source_key="edge-1",
        ),
        # free on both sides; a cost with more than 10 places (rates round half up)
        dataclasses.replace(
            gpt, model="edge-free", unit_costs=UnitCosts(D(0), D(0)), source_key="edge-2"
        ),
        dataclasses.replace(
            gpt, model="edge-rounding", unit_costs=UnitCosts(D("1.00000000005E-7"), D("5E-11")),
            cache_read_cost=D("0.00000000015"), source_key="edge-3",
        ),
        # an id with spaces around it: created stripped, as RateSpec strips it
        dataclasses.replace(gpt, model="  edge-padded  ", source_key="edge-4"),
        # $100,000 a call: fine at a credit price of 1, beyond DECIMAL(20,10) at 1e-6
        dataclasses.replace(
            gpt, model="edge-pricey", unit_costs=UnitCosts(D(0), D(100000)), source_key="edge-5"
        ),
    )  # fmt: skip
    entries = tuple(
        sorted(sample.entries + extras, key=lambda e: (e.provider, e.model, e.type.value))
    )
    return Catalog(entries, sample.unmapped, sample.source, sample.currency)


def _seed(url: str, catalog: Catalog) -> Store:
    """Providers and existing rates of every kind an import meets, the same for any url."""
    store = Store.open(url)
    for name in PROVIDERS:
        add_provider(store, name)
    in_store = [
        e
        for e in catalog.entries
        if e.provider in PROVIDERS and not e.source_key.startswith("edge")
    ]
    null_output: list[int] = []
    for i, entry in enumerate(in_store[:150]):
        kind = i % 8
        costs = entry.unit_costs
        stored: dict[str, Any] | None = {"input": costs.input, "output": costs.output}
        if kind == 1:  # a small move: catalog_import
            stored = {"input": costs.input * D("1.05"), "output": costs.output}
        elif kind == 2:  # more than 10 %: source_drift
            stored = {"input": costs.input, "output": costs.output * 2}
        elif kind == 3:  # from 0: infinite drift (when the catalog side is not 0 too)
            stored = {"input": D(0), "output": costs.output}
        elif kind == 4:  # no stored costs: nothing to drift from
            stored = None
        elif kind == 6:  # not in the store: created
            continue
        elif kind == 7:  # drift just over the threshold, judged on the exact percentage
            stored = {"input": costs.input, "output": costs.output / D("1.1000001")}
        rate = store.create_rate(
            RateSpec.create(
                entry.provider, entry.model, entry.type, input_rate="0.003",
                output_rate="0.004", unit_costs=stored,
            )
        )  # fmt: skip
        if kind == 5 and costs.output:  # one cost side NULL in the database (older rows)
            null_output.append(rate.id)
        if i % 5 == 0:  # an operator edit: versions differ from rate to rate
            store.update_rate(rate.id, rate.version, input_rate="0.0031")
    rates = sa.Table("model_rates", sa.MetaData(), autoload_with=store.engine)
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(rates).where(rates.c.id.in_(null_output)).values(unit_cost_output=None)
        )
    return store


def _tables(url: str) -> dict[str, list[dict[str, Any]]]:
    """Rates and history as the database holds them, minus the times of the run."""
    out = {}
    for table, times in TIMES.items():
        rows = table_rows(url, table)
        out[table] = sorted(
            ({k: v for k, v in row.items() if k not in times} for row in rows),
            key=lambda r: r["id"],
        )
    return out


SCENARIOS = {
    "create-missing": {"create_missing": True},
    "update-only": {},
    "rederive": {
        "create_missing": True, "rederive_rates": True, "profit_margin": "25",
        "credit_price": "0.002",
    },
    "filtered-with-run-id": {
        "create_missing": True, "providers": ["openai", "Google"], "drift_threshold_pct": "50",
        "reason": "catalog refresh", "job_run_id": "run-7",
    },
}  # fmt: skip


@pytest.mark.parametrize("options", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_set_based_import_writes_what_the_per_row_import_wrote(
    twin_urls: tuple[str, str], options: dict[str, Any]
) -> None:
    catalog = _catalog()
    ref_url, new_url = twin_urls
    with _seed(ref_url, catalog) as ref, _seed(new_url, catalog) as new:
        assert snapshot(ref) == snapshot(new)
        expected = reference_import(ref, catalog, **options)
        result = new.import_catalog(catalog, **options)
        assert result == expected
        assert _tables(new_url) == _tables(ref_url)
        # every kind showed up (the scenario is not vacuous)
        assert result.updated and len(result.history_ids)
        assert result.unchanged or options.get("rederive_rates")
        if options.get("create_missing"):
            assert result.created
            assert result.not_in_store or options.get("providers")  # deepseek: not in store
        if not options.get("drift_threshold_pct"):
            assert any(pct is None for *_, pct in result.drifted)  # from 0
        # one transaction, one time: each rate written carries its history row's time
        history = {h.id: h for h in new.history()}
        for hid in result.history_ids:
            row = history[hid]
            assert row.rate_id is not None
            assert new.get_rate(row.rate_id).version == row.rate_version
        times = {history[hid].changed_at for hid in result.history_ids}
        assert len(times) == 1


def test_a_null_cost_side_equal_to_a_zero_in_the_catalog_is_left_alone(sqlite_url: str) -> None:
    # A NULL side means 0 (unit_costs_of): the import counts the rate as unchanged. The
    # per-row import then still wrote the 0 with the next flush, bumping the version
    # without a history row; the set-based one writes nothing it does not report.
    catalog = _catalog()
    with Store.open(sqlite_url) as store:
        add_provider(store, "openai")
        rate = store.create_rate(
            RateSpec.create("openai", "edge-free", "chatCompletion", unit_costs={"input": 0})
        )
        rates = sa.Table("model_rates", sa.MetaData(), autoload_with=store.engine)
        with store.engine.begin() as conn:
            conn.execute(sa.update(rates).values(unit_cost_output=None))
        before = _tables(sqlite_url)
        result = store.import_catalog(catalog)
        assert (result.updated, result.unchanged, result.history_ids) == (0, 1, ())
        assert _tables(sqlite_url) == before
        assert store.get_rate(rate.id).version == rate.version


def test_created_rates_have_the_exact_rule_values(sqlite_url: str) -> None:
    catalog = _catalog()
    with _seed(sqlite_url, catalog) as store:
        store.import_catalog(catalog, create_missing=True, profit_margin="2", credit_price="1")
        rounding = store.find_rate("openai", "edge-rounding", "chatCompletion")
        # 1.00000000005e-7 × 1.02 = 1.0200000000051e-7 → 0.0000001020 (10 places, half up)
        assert rounding.input_rate == D("0.000000102")
        assert rounding.output_rate == D("0.0000000001")  # 5.1e-11 rounds up to 1e-10
        assert rounding.unit_costs == UnitCosts(D("1.00000000005E-7"), D("5E-11"))
        assert rounding.caching is not None and rounding.caching.read_rate == D("2E-10")
        assert rounding.caching.write_rate is None  # gpt-4o lists no cache write cost
        padded = store.find_rate("openai", "edge-padded", "chatCompletion")
        assert padded.model_display == "Edge Padded"
        empty = store.find_rate("openai", "edge-empty-metadata", "chatCompletion")
        assert empty.model_metadata is None and empty.caching is not None
        assert empty.caching.read_rate is None


def test_stale_plan_is_refused_like_the_per_row_import(twin_urls: tuple[str, str]) -> None:
    catalog = _catalog()
    ref_url, new_url = twin_urls
    with _seed(ref_url, catalog) as ref, _seed(new_url, catalog) as new:
        errors = []
        for store, run in ((ref, reference_import), (new, Store.import_catalog)):
            planned = {r.id: r.version for r in store.list_rates()}
            moved = store.list_rates()[3]
            store.update_rate(moved.id, moved.version, output_rate="0.5", reason="operator")
            before = snapshot(store), _tables(new_url if store is new else ref_url)
            with pytest.raises(StaleVersionError) as caught:
                run(store, catalog, create_missing=True, expected_versions=planned)
            assert (snapshot(store), _tables(new_url if store is new else ref_url)) == before
            errors.append(str(caught.value))
        assert errors[0] == errors[1]
        assert "nothing was written" in errors[1]


def test_a_rate_the_gateway_cannot_hold_is_refused_like_the_per_row_import(
    twin_urls: tuple[str, str],
) -> None:
    catalog = _catalog()
    ref_url, new_url = twin_urls
    with _seed(ref_url, catalog) as ref, _seed(new_url, catalog) as new:
        errors = []
        for store, url, run in (
            (ref, ref_url, reference_import),
            (new, new_url, Store.import_catalog),
        ):
            before = _tables(url)
            with pytest.raises(ValidationError) as caught:
                # 1 credit = 1e-6 USD (the lowest plausible price): edge-pricey's $100,000
                # is 1.02e11 credits
                run(store, catalog, create_missing=True, credit_price="0.000001")
            assert _tables(url) == before
            errors.append(str(caught.value))
        assert errors[0] == errors[1]


def test_a_failure_half_way_leaves_nothing_written(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = _catalog()
    with _seed(db_url, catalog) as store:
        before = _tables(db_url)
        monkeypatch.setenv("HUBKIT_TEST_FAIL_AFTER_ROWS", "100")
        with pytest.raises(StorageError, match="injected failure after 100 rows"):
            store.import_catalog(catalog, create_missing=True)
        assert _tables(db_url) == before
        monkeypatch.delenv("HUBKIT_TEST_FAIL_AFTER_ROWS")
        assert store.import_catalog(catalog, create_missing=True).created


def test_import_is_set_based_statements_do_not_grow_with_the_catalog(db_url: str) -> None:
    catalog = _catalog()
    with _seed(db_url, catalog) as store:
        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        sa.event.listen(store.engine, "before_cursor_execute", count)
        result = store.import_catalog(catalog, create_missing=True)
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert result.created + result.updated > 250
    # settings, providers, rates, staging (one per 1,000 rows), update, insert, ids,
    # history, temp table create/drop, transaction: a constant, not one per rate
    assert len(statements) < 25, statements


def test_entry_types_keep_their_rate_type(sqlite_url: str) -> None:
    catalog = _catalog()
    with _seed(sqlite_url, catalog) as store:
        store.import_catalog(catalog, create_missing=True)
        kinds = {r.type for r in store.list_rates()}
    assert kinds == set(RateType)


# ---- the per-entry shortcuts give what the long way gives ------------------------------------

_COSTS = st.one_of(
    st.decimals(min_value=0, max_value=10**12, allow_nan=False, allow_infinity=False, places=20),
    st.sampled_from([D("-0"), D("0E-30"), D("1.0E-7"), D("1E-7"), D("-1E-7"), D("NaN")]),
)


@settings(max_examples=200)
@given(costs=st.lists(_COSTS, min_size=1, max_size=6), margin=st.sampled_from(["0", "2", "25"]),
       price=st.sampled_from(["1", "0.002", "0.0000001"]))  # fmt: skip
def test_pricer_gives_the_rule_and_its_errors(
    costs: list[Decimal], margin: str, price: str
) -> None:
    pricer = Pricer(D(margin), D(price))
    for cost in costs + costs:  # the second pass answers from the memo
        try:
            expected: Any = checked_rate(margin_rate(cost, margin, price), "inputRate")
        except ValidationError as exc:
            expected = str(exc)
        try:
            got: Any = pricer.rate(cost, "inputRate")
        except ValidationError as exc:
            got = str(exc)
        assert str(got) == str(expected)  # str: the exponent (and the sign of 0) too
        if isinstance(got, Decimal):
            assert pricer.texts.of(got) == plain(got)


_FEATURE = st.sampled_from(["tools", "vision", "thinking", "audio"])
_METADATA = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["maxTokens", "features", "imageGeneration"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-1, 3),
            st.lists(_FEATURE, max_size=3),
            st.tuples(_FEATURE),
            st.text(max_size=2),
        ),  # fmt: skip
        max_size=3,
    ),
)


@settings(max_examples=300)
@given(shapes=st.lists(_METADATA, min_size=1, max_size=5))
def test_metadata_json_is_the_validated_metadata_as_stored(shapes: list[Any]) -> None:
    known: dict[tuple[Any, ...], str] = {}
    for metadata in shapes + shapes:  # the second pass answers from the memo
        try:
            expected = json.dumps(validate_model_metadata(metadata) or None)
        except ValidationError as exc:
            expected = f"error: {exc}"
        try:
            got = metadata_json(metadata, known)
        except ValidationError as exc:
            got = f"error: {exc}"
        assert got == expected


def test_gc_paused_restores_the_collector_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()
