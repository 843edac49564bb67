"""Store: model rates (CRUD, batch, optimistic locking) and the bulk update, on both databases."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from _stores import (
    add_provider,
    chat_spec,
    count_rows,
    seed_rates,
    snapshot,
    table_rows,
    two_providers,
)

from hubkit.decimals import plain
from hubkit.domain import ChangeType, Rate, RateSpec, RateType, UnitCosts
from hubkit.errors import (
    ConflictError,
    NotFoundError,
    StaleVersionError,
    StorageError,
    ValidationError,
)
from hubkit.pricing import RateFilter, bulk_preview, margin_rate
from hubkit.store import Store

pytestmark = pytest.mark.store("sqlite", "postgres", seed=two_providers)

D = Decimal


# --- create / read ---------------------------------------------------------------------------


def test_create_rate_and_read_it_back(store: Store) -> None:
    spec = RateSpec.create(
        "openai",
        "gpt-4o-mini",
        "chatCompletion",
        input_rate="0.00000015",
        output_rate="0.0000006",
        unit_costs={"input": "0.00000015", "output": "0.0000006"},
        caching={"readRate": "0.000000075", "writeRate": 0},
        model_metadata={"maxTokens": 128000, "features": ["tools", "vision"]},
        description="small",
    )
    rate = store.create_rate(spec)
    assert rate.version == 1
    assert rate.model_display == "Gpt 4o Mini"  # blank → derived (domain.md)
    for read in (
        store.get_rate(rate.id),
        store.find_rate("OpenAI", "gpt-4o-mini", "chatCompletion"),
    ):
        assert read.id == rate.id
        assert (read.provider, read.model, read.type) == (
            "openai",
            "gpt-4o-mini",
            RateType.CHAT_COMPLETION,
        )
        assert (read.input_rate, read.output_rate) == (D("0.00000015"), D("0.0000006"))
        assert read.unit_costs == UnitCosts(D("0.00000015"), D("0.0000006"))
        assert read.caching is not None
        assert (read.caching.read_rate, read.caching.write_rate) == (D("0.000000075"), D(0))
        assert read.model_metadata == {"maxTokens": 128000, "features": ["tools", "vision"]}
        assert read.description == "small" and read.deprecated is False
    (entry,) = store.history(rate_id=rate.id)
    assert entry.change_type == ChangeType.CREATE
    assert entry.previous_input_rate is None
    assert (entry.current_input_rate, entry.current_output_rate) == (
        D("0.00000015"),
        D("0.0000006"),
    )
    assert entry.actor == "pytest"


def test_explicit_model_display_is_kept(store: Store) -> None:
    rate = store.create_rate(chat_spec(model="gpt-4o", model_display="GPT-4o"))
    assert store.get_rate(rate.id).model_display == "GPT-4o"


def test_missing_rates_are_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="rates list"):
        store.get_rate(999)
    with pytest.raises(NotFoundError):
        store.find_rate("openai", "nope", "chatCompletion")
    with pytest.raises(NotFoundError, match="Providers not found: xai"):
        store.create_rate(chat_spec("xai"))


def test_unique_per_provider_model_type(store: Store) -> None:
    store.create_rate(chat_spec())
    with pytest.raises(ConflictError, match='Rate already exists for model "gpt-4o"'):
        store.create_rate(chat_spec(input_rate="1"))
    # another type or provider is another rate
    store.create_rate(chat_spec(type="embedding"))
    store.create_rate(chat_spec("anthropic"))
    assert len(store.list_rates()) == 3
    assert store.find_rate("openai", "gpt-4o", "chatCompletion").input_rate == D("0.0000025")


def test_list_rates_filters(store: Store) -> None:
    store.create_rate(chat_spec(model="gpt-4o"))
    store.create_rate(chat_spec(model="dall-e-3", type="imageGeneration"))
    store.create_rate(chat_spec("anthropic", model="claude-3-haiku"))
    assert [r.model for r in store.list_rates()] == ["claude-3-haiku", "dall-e-3", "gpt-4o"]
    assert [r.model for r in store.list_rates(RateFilter.create(providers="openai"))] == [
        "dall-e-3",
        "gpt-4o",
    ]
    images = store.list_rates(RateFilter.create(types=["imageGeneration"]))
    assert [r.model for r in images] == ["dall-e-3"]


def test_decimal_exactness_round_trip(store: Store, db_url: str) -> None:
    rate = store.create_rate(
        chat_spec(
            input_rate=D("0.0000000001"),
            output_rate="123456789.0123456789",
            unit_costs={"input": D("1.0003E-7"), "output": "0.000000000000000001"},
        )
    )
    read = store.get_rate(rate.id)
    assert read.input_rate == D("0.0000000001")
    assert read.output_rate == D("123456789.0123456789")
    assert read.unit_costs == UnitCosts(D("1.0003E-7"), D("1E-18"))
    assert plain(read.input_rate) == "0.0000000001"
    assert plain(read.unit_costs.input) == "0.00000010003"
    (row,) = table_rows(db_url, "model_rates")
    if db_url.startswith("sqlite"):
        # exact decimal text, never floats or exponent notation
        assert row["input_rate"] == "0.0000000001"
        assert row["unit_cost_input"] == "0.00000010003"
        assert row["unit_cost_output"] == "0.000000000000000001"
    else:
        assert row["input_rate"] == D("0.0000000001")
        assert row["unit_cost_input"] == D("1.0003E-7")
        assert row["unit_cost_output"] == D("1E-18")
    (entry,) = store.history(rate_id=rate.id)
    assert entry.current_input_rate == D("0.0000000001")
    assert entry.current_unit_costs == UnitCosts(D("1.0003E-7"), D("1E-18"))


# --- batch create ----------------------------------------------------------------------------


def test_batch_create_for_several_providers(store: Store) -> None:
    add_provider(store, "deepseek")
    rates = store.create_rates_batch(chat_spec(model="shared"), ["openai", "Anthropic", "deepseek"])
    assert [r.provider for r in rates] == ["openai", "anthropic", "deepseek"]
    assert {r.model for r in rates} == {"shared"}
    history = store.history(model="shared")
    assert sorted(h.provider for h in history) == ["anthropic", "deepseek", "openai"]
    assert {h.change_type for h in history} == {ChangeType.BULK_CREATE}


def test_batch_create_unknown_providers_listed_nothing_written(store: Store, db_url: str) -> None:
    with pytest.raises(NotFoundError) as info:
        store.create_rates_batch(chat_spec(model="m"), ["openai", "xai", "poe", "anthropic"])
    assert "xai" in str(info.value) and "poe" in str(info.value)
    assert "openai" not in str(info.value)
    assert store.list_rates() == []
    assert count_rows(db_url, "rate_history") == 0


def test_batch_create_existing_is_a_conflict_listing_providers(store: Store, db_url: str) -> None:
    add_provider(store, "deepseek")
    store.create_rate(chat_spec("openai", model="m"))
    store.create_rate(chat_spec("deepseek", model="m"))
    with pytest.raises(ConflictError) as info:
        store.create_rates_batch(chat_spec(model="m"), ["openai", "anthropic", "deepseek"])
    assert "in providers: deepseek, openai" in str(info.value)
    assert sorted(r.provider for r in store.list_rates()) == ["deepseek", "openai"]
    assert count_rows(db_url, "rate_history") == 2
    with pytest.raises(ValidationError):
        store.create_rates_batch(chat_spec(model="m"), [" ", ""])


# --- update, optimistic locking --------------------------------------------------------------


def test_update_rate_bumps_version_and_writes_history(store: Store) -> None:
    rate = store.create_rate(chat_spec(unit_costs={"input": "0.000002", "output": "0.000008"}))
    updated = store.update_rate(
        rate.id, rate.version, input_rate="0.000003", reason="price change", source="ticket-1"
    )
    assert updated.version == rate.version + 1
    assert updated.input_rate == D("0.000003") and updated.output_rate == D("0.00001")
    assert store.get_rate(rate.id) == updated
    entry = store.history(rate_id=rate.id)[0]
    assert entry.change_type == ChangeType.MANUAL_UPDATE
    assert (entry.previous_input_rate, entry.current_input_rate) == (D("0.0000025"), D("0.000003"))
    assert (
        entry.previous_unit_costs
        == entry.current_unit_costs
        == UnitCosts(D("0.000002"), D("0.000008"))
    )
    assert (entry.reason, entry.source, entry.rate_version) == ("price change", "ticket-1", 2)
    # costs changes are history-worthy too; display changes are not
    store.update_rate(rate.id, 2, unit_costs={"input": "0.000001", "output": "0.000008"})
    store.update_rate(rate.id, 3, model_display="GPT 4o", description="flagship")
    kinds = [h.change_type for h in store.history(rate_id=rate.id)]
    assert kinds == ["manual_update", "manual_update", "create"]
    final = store.get_rate(rate.id)
    assert (final.model_display, final.description, final.version) == ("GPT 4o", "flagship", 4)


def test_update_with_same_values_changes_nothing(store: Store) -> None:
    rate = store.create_rate(chat_spec())
    same = store.update_rate(rate.id, 1, input_rate="0.0000025")
    assert same.version == 1
    assert len(store.history(rate_id=rate.id)) == 1


@pytest.mark.soak
def test_stale_version_conflict(store: Store) -> None:
    rate = store.create_rate(chat_spec())
    store.update_rate(rate.id, 1, input_rate="0.000004")
    with pytest.raises(StaleVersionError) as info:
        store.update_rate(rate.id, 1, input_rate="0.000009")
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert "reload" in str(info.value)
    assert isinstance(info.value, ConflictError)
    assert store.get_rate(rate.id).input_rate == D("0.000004")
    assert len(store.history(rate_id=rate.id)) == 2


def test_invalid_update_writes_nothing(store: Store) -> None:
    rate = store.create_rate(chat_spec())
    for kwargs, field in (
        ({"input_rate": "-1"}, "inputRate"),
        ({"output_rate": "NaN"}, "outputRate"),
        ({"unit_costs": {"input": "abc"}}, "unitCosts.input"),
        ({"model_display": "x" * 101}, "modelDisplay"),
    ):
        with pytest.raises(ValidationError) as info:
            store.update_rate(rate.id, 1, **kwargs)
        assert info.value.field == field
    assert store.get_rate(rate.id) == rate
    with pytest.raises(NotFoundError):
        store.update_rate(12345, 1, input_rate=1)


@pytest.mark.soak
def test_two_stores_interleaved_edit_is_refused(db_url: str, store: Store) -> None:
    rate = store.create_rate(chat_spec())
    with Store.open(db_url) as other:
        seen_by_other = other.get_rate(rate.id)
        store.update_rate(rate.id, rate.version, input_rate="0.000005")
        with pytest.raises(StaleVersionError):
            other.update_rate(seen_by_other.id, seen_by_other.version, input_rate="0.000007")
    assert store.get_rate(rate.id).input_rate == D("0.000005")


@pytest.mark.soak
def test_two_stores_racing_on_one_row(db_url: str, store: Store) -> None:
    rate = store.create_rate(chat_spec())
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[str, Any] = {}

    def edit(name: str, value: str) -> None:
        with Store.open(db_url) as own:
            barrier.wait()
            try:
                outcomes[name] = own.update_rate(rate.id, rate.version, input_rate=value)
            except Exception as exc:  # recorded and asserted below
                outcomes[name] = exc

    threads = [
        threading.Thread(target=edit, args=("a", "0.000011")),
        threading.Thread(target=edit, args=("b", "0.000022")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [v for v in outcomes.values() if isinstance(v, Rate)]
    losers = [v for v in outcomes.values() if not isinstance(v, Rate)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert isinstance(losers[0], StaleVersionError), repr(losers[0])
    final = store.get_rate(rate.id)
    assert final.version == 2 and final.input_rate == winners[0].input_rate
    assert [h.change_type for h in store.history(rate_id=rate.id)] == ["manual_update", "create"]


# --- delete, deprecate -----------------------------------------------------------------------


def test_delete_rate(store: Store) -> None:
    rate = store.create_rate(chat_spec())
    with pytest.raises(StaleVersionError):
        store.delete_rate(rate.id, expected_version=7)
    store.delete_rate(rate.id, 1, reason="retired")
    assert store.list_rates() == []
    entry = store.history(rate_id=rate.id)[0]
    assert entry.change_type == ChangeType.DELETE and entry.reason == "retired"
    assert entry.previous_input_rate == D("0.0000025") and entry.current_input_rate is None
    with pytest.raises(NotFoundError):
        store.delete_rate(rate.id)


def test_rate_ids_are_never_reused_after_a_delete(store: Store) -> None:
    # history(rate_id=…) must never mix a deleted rate's rows with a newer rate's
    first = store.create_rate(chat_spec(model="old-model"))
    store.delete_rate(first.id)
    second = store.create_rate(chat_spec(model="new-model"))
    assert second.id != first.id
    assert {e.model for e in store.history(rate_id=first.id)} == {"old-model"}


def test_deprecate_and_undo(store: Store) -> None:
    rate = store.create_rate(chat_spec())
    other = store.create_rate(chat_spec(model="gpt-4"))
    deprecated = store.deprecate_rate(rate.id, 1, reason="superseded by gpt-4.1")
    assert deprecated.deprecated and deprecated.deprecated_reason == "superseded by gpt-4.1"
    assert deprecated.version == 2
    assert [r.id for r in store.list_rates(include_deprecated=False)] == [other.id]
    with pytest.raises(StaleVersionError):
        store.deprecate_rate(rate.id, 1, undo=True)
    back = store.deprecate_rate(rate.id, 2, undo=True)
    assert not back.deprecated and back.deprecated_reason is None
    assert len(store.list_rates(include_deprecated=False)) == 2


# --- bulk update -----------------------------------------------------------------------------


def _costed(store: Store) -> list[Rate]:
    return [
        store.create_rate(
            chat_spec(model="a", unit_costs={"input": "0.000002", "output": "0.000008"})
        ),
        store.create_rate(chat_spec(model="b", unit_costs={"input": "1.0003E-7", "output": "0"})),
        store.create_rate(chat_spec(model="c")),  # no unit costs: skipped
        store.create_rate(chat_spec(model="d", unit_costs={"input": 0, "output": 0})),
        store.create_rate(
            chat_spec(
                "anthropic",
                model="claude",
                unit_costs={"input": "0.000003", "output": "0.000015"},
            )
        ),
    ]


def test_bulk_preview_numbers_are_the_applied_numbers(store: Store) -> None:
    _costed(store)
    preview = store.preview_bulk_update(profit_margin="12.5", credit_price="0.003")
    assert {c.model for c in preview.changes} == {"a", "b", "claude"}
    for change in preview.changes:
        assert change.new_input_rate == margin_rate(change.unit_costs.input, "12.5", "0.003")
        assert change.new_output_rate == margin_rate(change.unit_costs.output, "12.5", "0.003")
    assert {(s.model, s.reason) for s in preview.skipped} == {
        ("c", "no unitCosts"),
        ("d", "unitCosts are both 0"),
    }
    # the model "b" had outputRate 0.00001 and output cost 0: flagged
    b_change = next(c for c in preview.changes if c.model == "b")
    assert b_change.drops_to_zero == ("output",)
    result = store.apply_bulk_update(preview, reason="Q3 prices", job_run_id="run-1")
    assert (result.updated, result.unchanged, result.skipped) == (3, 0, 2)
    assert len(result.history_ids) == 3
    for change in preview.changes:
        applied = store.get_rate(change.rate_id)
        assert applied.input_rate == change.new_input_rate
        assert applied.output_rate == change.new_output_rate
        assert plain(applied.input_rate) == plain(change.new_input_rate)
        assert applied.version == change.version + 1
    history = store.history(job_run_id="run-1")
    assert len(history) == 3
    by_rate = {h.rate_id: h for h in history}
    for change in preview.changes:
        entry = by_rate[change.rate_id]
        assert entry.change_type == ChangeType.BULK_UPDATE
        assert (entry.previous_input_rate, entry.current_input_rate) == (
            change.old_input_rate,
            change.new_input_rate,
        )
        assert (entry.previous_output_rate, entry.current_output_rate) == (
            change.old_output_rate,
            change.new_output_rate,
        )
        assert entry.metadata == {"profitMargin": "12.5", "creditPrice": "0.003"}
        assert entry.reason == "Q3 prices"
    skipped = {s.model for s in preview.skipped}
    assert all(r.version == 1 for r in store.list_rates() if r.model in skipped)


def test_preview_defaults_to_the_stored_settings(store: Store) -> None:
    _costed(store)
    default = store.preview_bulk_update()
    assert (default.profit_margin, default.credit_price) == (D(2), D(1))
    store.set_operator_settings(target_margin="30", credit_price="0.5")
    preview = store.preview_bulk_update()
    assert (preview.profit_margin, preview.credit_price) == (D(30), D("0.5"))
    change = next(c for c in preview.changes if c.model == "a")
    assert change.new_input_rate == D("0.0000052")


def test_preview_with_one_setting_given_takes_the_other_from_the_store(store: Store) -> None:
    _costed(store)
    store.set_operator_settings(target_margin="30", credit_price="0.5")
    assert store.preview_bulk_update(profit_margin=10).credit_price == D("0.5")
    assert store.preview_bulk_update(credit_price=2).profit_margin == D(30)


def test_store_preview_is_the_rate_preview(store: Store) -> None:
    """The store prices columns, not Rate values: it must be the same diff, in the same order."""
    _costed(store)
    store.create_rate(
        chat_spec(
            "anthropic",
            model="haiku",
            unit_costs={"input": "0.00000025", "output": "0.00000125"},
            caching={"readRate": "0.00000003", "writeRate": None},
            model_metadata={"maxTokens": 200000},
            description="cached",
        )
    )
    image = store.create_rate(
        chat_spec(
            model="dall-e-3", type="imageGeneration", unit_costs={"input": 0, "output": "0.04"}
        )
    )
    store.deprecate_rate(image.id, 1, reason="old")
    for flt in (
        None,
        RateFilter.create(providers="anthropic"),
        RateFilter.create(types="imageGeneration"),
        RateFilter.create(model_pattern="C*"),
    ):
        preview = store.preview_bulk_update("7.5", "0.002", flt)
        assert preview == bulk_preview(store.list_rates(), "7.5", "0.002", flt)
    every = store.preview_bulk_update("7.5", "0.002")
    assert len(every.changes) == 5 and len(every.skipped) == 2
    assert all(isinstance(c.type, RateType) for c in every.changes + every.skipped)


def test_bulk_apply_history_ids_are_the_rows_it_wrote(store: Store) -> None:
    _costed(store)  # five creates: history ids already taken
    earlier = {h.id for h in store.history()}
    store.apply_bulk_update(store.preview_bulk_update(5, 1), job_run_id="first")
    result = store.apply_bulk_update(store.preview_bulk_update(6, 1), job_run_id="second")
    written = sorted(h.id for h in store.history(job_run_id="second"))
    assert list(result.history_ids) == written and len(written) == 3
    assert min(written) > max(earlier | {h.id for h in store.history(job_run_id="first")})


def test_bulk_apply_respects_the_filter(store: Store) -> None:
    _costed(store)
    preview = store.preview_bulk_update(10, 1, RateFilter.create(providers="anthropic"))
    assert [c.model for c in preview.changes] == ["claude"]
    store.apply_bulk_update(preview)
    versions = {r.model: r.version for r in store.list_rates()}
    assert versions == {"a": 1, "b": 1, "c": 1, "d": 1, "claude": 2}


def test_bulk_apply_can_record_its_margin_and_price_as_the_settings(store: Store) -> None:
    _costed(store)
    before = store.get_operator_settings()
    store.apply_bulk_update(store.preview_bulk_update(7, 1))  # not asked: settings kept
    assert store.get_operator_settings() == before

    stale = store.preview_bulk_update("12.5", "0.002")
    moved = next(r for r in store.list_rates() if r.id == stale.changed[0].rate_id)
    store.update_rate(moved.id, moved.version, input_rate="0.5", reason="someone else")
    with pytest.raises(StaleVersionError):
        store.apply_bulk_update(stale, record_settings=True)
    assert store.get_operator_settings() == before  # one transaction: nothing recorded

    store.apply_bulk_update(store.preview_bulk_update("12.5", "0.002"), record_settings=True)
    after = store.get_operator_settings()
    assert (after.target_margin, after.credit_price) == (Decimal("12.5"), Decimal("0.002"))
    assert after.currency == before.currency


def test_reapplying_is_idempotent(store: Store, db_url: str) -> None:
    _costed(store)
    store.apply_bulk_update(store.preview_bulk_update(5, 1))
    before, n_history = snapshot(store), count_rows(db_url, "rate_history")
    again = store.preview_bulk_update(5, 1)
    assert again.changed == () and len(again.unchanged) == 3
    result = store.apply_bulk_update(again)
    assert (result.updated, result.unchanged, result.history_ids) == (0, 3, ())
    assert snapshot(store) == before
    assert count_rows(db_url, "rate_history") == n_history


@pytest.mark.soak
def test_apply_after_a_concurrent_edit_is_refused(store: Store, db_url: str) -> None:
    rates = _costed(store)
    preview = store.preview_bulk_update(20, 1)
    with Store.open(db_url) as other:
        other.update_rate(rates[0].id, 1, description="edited meanwhile")
    before, n_history = snapshot(store), count_rows(db_url, "rate_history")
    with pytest.raises(StaleVersionError, match="nothing was applied") as info:
        store.apply_bulk_update(preview)
    assert "a (v1→v2)" in str(info.value)
    assert snapshot(store) == before
    assert count_rows(db_url, "rate_history") == n_history
    # a deleted rate is as stale as an edited one
    preview = store.preview_bulk_update(20, 1)
    store.delete_rate(rates[4].id)
    with pytest.raises(StaleVersionError, match="deleted"):
        store.apply_bulk_update(preview)


def test_injected_failure_half_way_leaves_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(db_url) as store:
        # 60 models × 10 providers = 600 rates: more than one 500-row chunk
        providers = ["openai", "anthropic", "deepseek", "google", "xai"]
        providers += [f"custom-{i}" for i in range(5)]
        seed_rates(store, 60, providers)
        preview = store.preview_bulk_update(15, 1)
        assert len(preview.changed) == 600
        before, n_history = snapshot(store), count_rows(db_url, "rate_history")
        monkeypatch.setenv("HUBKIT_TEST_FAIL_AFTER_ROWS", "500")
        with pytest.raises(StorageError, match="injected failure after 500 rows"):
            store.apply_bulk_update(preview, job_run_id="doomed")
        assert snapshot(store) == before
        assert count_rows(db_url, "rate_history") == n_history
        assert store.history(job_run_id="doomed") == []
        # the same preview applies cleanly once the fault is gone
        monkeypatch.delenv("HUBKIT_TEST_FAIL_AFTER_ROWS")
        result = store.apply_bulk_update(preview, job_run_id="ok")
        assert result.updated == 600 and len(store.history(job_run_id="ok")) == 600
        assert all(r.version == 2 for r in store.list_rates())
