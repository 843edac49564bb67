"""Rate editor, headless: filter/sort, inline validation, optimistic locking, batch, revert."""

from __future__ import annotations

from decimal import Decimal

import pytest
from _widget_helpers import live_widget_count, seed_sample

from hubkit import frames
from hubkit.domain import RateSpec
from hubkit.pricing import margin_rate
from hubkit.store import Store
from hubkit.widgets import RateEditorApp, RateEditorState
from hubkit.widgets import rates as rate_editor

pytestmark = pytest.mark.store(seed=seed_sample, close_widgets=True)


def _rate_id(store: Store, provider: str = "openai", model: str = "gpt-4o") -> int:
    return store.find_rate(provider, model, "chatCompletion").id


def _pick(app: RateEditorApp, rate_id: int) -> None:
    app._pick.value = rate_id


def test_the_table_labels_columns_the_rates_frame_has_in_its_order() -> None:
    # frame_html drops a labelled column the frame lacks: a misspelt one would vanish silently
    labelled = list(rate_editor.RATE_COLUMNS)
    assert labelled == [c for c in frames.RATE_COLUMNS if c in labelled]
    assert set(rate_editor.EDIT_FIELDS) >= set(rate_editor.NUMBER_FIELDS)


def test_filter_by_provider_type_and_glob(store: Store) -> None:
    app = RateEditorApp(store)
    app._f_providers.value = ("openai",)
    app._f_types.value = ("chatCompletion",)
    app._f_model.value = "gpt-4o*"
    table = app.state.table()
    assert len(table) > 0
    assert set(table["provider"]) == {"openai"} and set(table["type"]) == {"chatCompletion"}
    assert all(m.startswith("gpt-4o") for m in table["model"])
    assert f"<b>{len(table)} rates</b> shown" in app._count.value
    assert len(app._pick.options) == len(table) + 1


def test_sort_any_column_with_missing_values_last(store: Store) -> None:
    store.create_rate(RateSpec.create("openai", "no-costs", "chatCompletion", input_rate=1))
    state = RateEditorState(store)
    state.set_sort("input_rate", ascending=False)
    values = list(state.table()["input_rate"])
    assert values == sorted(values, reverse=True)
    state.set_sort("unit_cost_input", ascending=True)
    costs = list(state.table()["unit_cost_input"])
    present = [c for c in costs if c is not None]
    assert present == sorted(present) and costs[: len(present)] == present
    assert costs[-1] is None


def test_markup_is_labelled_markup_on_cost_never_margin(store: Store) -> None:
    app = RateEditorApp(store)
    shown = app._table.shown
    assert list(shown.columns[:6]) == ["model", "provider", "type", "input markup on cost %",
                                       "output markup on cost %", "below cost"]  # fmt: skip
    assert not any("margin" in c.lower() for c in shown.columns)
    assert len(shown) == len(store.list_rates())  # every rate, not the first 200
    # seeded at the default target margin of 2 %: the implied markup on cost is 2.00
    row = app.state.table().set_index("id").loc[_rate_id(store)]
    assert row["input_markup_pct"] == Decimal("2.00")


def test_below_cost_rate_is_flagged(store: Store) -> None:
    rid = _rate_id(store)
    rate = store.get_rate(rid)
    store.update_rate(rid, rate.version, input_rate=rate.unit_costs.input / 2)
    app = RateEditorApp(store)
    row = app.state.table().set_index("id").loc[rid]
    assert bool(row["below_cost"]) is True and row["input_markup_pct"] == Decimal("-50.00")
    assert "<b>1</b> below cost" in app._count.value


def test_edit_writes_the_rate_and_a_history_row(store: Store) -> None:
    rid = _rate_id(store)
    app = RateEditorApp(store)
    _pick(app, rid)
    assert app._edit.texts["input_rate"].value == "0.00000255"
    app._edit.texts["input_rate"].value = "0.000003"
    app._edit_reason.value = "round up"
    app._save.click()

    stored = store.get_rate(rid)
    assert stored.input_rate == Decimal("0.000003") and stored.version == 2
    entry = store.history(rate_id=rid)[0]
    assert (entry.change_type, entry.reason, entry.actor) == ("manual_update", "round up", "pytest")
    assert "saved openai/gpt-4o (version 2)" in app._message.value
    assert "manual_update" in app._history.value


def test_invalid_values_show_inline_and_write_nothing(store: Store) -> None:
    rid = _rate_id(store)
    before = store.get_rate(rid)
    app = RateEditorApp(store)
    _pick(app, rid)
    app._edit.texts["input_rate"].value = "abc"
    app._edit.texts["unit_cost_output"].value = "-1"
    app._save.click()

    assert "input rate must be a number" in app._edit.errors["input_rate"].value
    assert "unit cost output must be ≥ 0" in app._edit.errors["unit_cost_output"].value
    assert app._edit.errors["output_rate"].value == ""
    assert store.get_rate(rid) == before
    assert len(store.history(rate_id=rid)) == 1  # only the import

    app._edit.texts["input_rate"].value = "1" + "0" * 12  # passes parsing, fails the bound
    app._edit.texts["unit_cost_output"].value = ""
    app._save.click()
    assert "input rate must be below" in app._edit.errors["input_rate"].value  # its label
    assert store.get_rate(rid) == before


def test_concurrent_edit_is_reported_with_reload_and_not_overwritten(store: Store) -> None:
    rid = _rate_id(store)
    app = RateEditorApp(store)
    _pick(app, rid)
    assert app._reload.layout.display == "none"
    other = store.update_rate(rid, 1, output_rate="0.00002", reason="someone else")

    app._edit.texts["input_rate"].value = "0.000004"
    app._save.click()
    assert "was changed by someone else" in app._message.value
    assert app.state.stale and app._reload.layout.display == ""
    assert store.get_rate(rid) == other  # not overwritten

    app._reload.click()
    assert app._reload.layout.display == "none"
    assert app._edit.texts["output_rate"].value == "0.00002"
    assert app._edit.texts["input_rate"].value == "0.00000255"
    app._edit.texts["input_rate"].value = "0.000004"
    app._save.click()
    stored = store.get_rate(rid)
    assert (stored.input_rate, stored.output_rate, stored.version) == (
        Decimal("0.000004"),
        Decimal("0.00002"),
        3,
    )


def test_batch_create_across_providers(store: Store) -> None:
    app = RateEditorApp(store)
    app._b_providers.value = ("openai", "xai")
    app._b_model.value = "shared-model-1"
    app._b_type.value = "embedding"
    app._batch.texts["input_rate"].value = "0.0000001"
    app._batch.texts["output_rate"].value = "0"
    app._batch.texts["unit_cost_input"].value = "0.00000009"
    app._b_reason.value = "launch"
    app._create.click()

    for provider in ("openai", "xai"):
        rate = store.find_rate(provider, "shared-model-1", "embedding")
        assert rate.input_rate == Decimal("0.0000001")
        assert rate.unit_costs is not None and rate.unit_costs.output == 0
        assert store.history(rate_id=rate.id)[0].change_type == "bulk_create"
    assert "created shared-model-1 (embedding) for openai, xai" in app._message.value


def test_batch_create_is_all_or_nothing_and_lists_conflicts(store: Store) -> None:
    store.create_rate(RateSpec.create("xai", "dup-model", "chatCompletion", input_rate=1))
    app = RateEditorApp(store)
    app._b_providers.value = ("openai", "xai")
    app._b_model.value = "dup-model"
    app._batch.texts["input_rate"].value = "0.5"
    app._batch.texts["output_rate"].value = "0.5"
    app._create.click()
    assert "Rate already exists" in app._message.value and "xai" in app._message.value
    assert not [r for r in store.list_rates() if r.model == "dup-model" and r.provider == "openai"]


def test_batch_create_needs_providers_and_a_model(store: Store) -> None:
    app = RateEditorApp(store)
    app._batch.texts["input_rate"].value = "1"
    app._batch.texts["output_rate"].value = "1"
    app._create.click()
    assert "pick at least one provider" in app._b_errors["providers"].value
    app._b_providers.value = ("openai",)
    app._b_model.value = "  "
    app._create.click()
    assert "model must be 1–100 characters" in app._b_errors["model"].value


def test_history_revert_conflict_then_force(store: Store) -> None:
    rid = _rate_id(store)
    app = RateEditorApp(store)
    _pick(app, rid)
    app._edit.texts["input_rate"].value = "0.000005"
    app._save.click()
    change = store.history(rate_id=rid)[0]
    store.update_rate(rid, 2, input_rate="0.000006", reason="later change")
    app._on_refresh(app._refresh)
    _pick(app, rid)

    app._h_pick.value = change.id
    app._revert.click()
    assert "cannot revert" in app._message.value
    assert store.get_rate(rid).input_rate == Decimal("0.000006")

    app._h_pick.value = change.id
    app._h_force.value = True
    app._revert.click()
    assert store.get_rate(rid).input_rate == Decimal("0.00000255")
    assert store.history(rate_id=rid)[0].change_type == "revert"
    assert app._edit.texts["input_rate"].value == "0.00000255"


def test_revert_without_conflict(store: Store) -> None:
    rid = _rate_id(store)
    state = RateEditorState(store)
    state.select(rid)
    assert state.save(input_rate="0.00001", output_rate="0.00001")
    assert state.revert(state.history_entries()[0].id)
    assert store.get_rate(rid).input_rate == margin_rate(Decimal("0.0000025"), 2, 1)


def test_revert_is_disabled_until_a_change_is_picked_and_says_why(store: Store) -> None:
    rid = _rate_id(store)
    app = RateEditorApp(store)
    assert app._revert.disabled and "pick a rate" in app._revert_why.value
    _pick(app, rid)
    app._edit.texts["input_rate"].value = "0.000005"
    app._save.click()  # a save: the history gains a change, nothing is picked in it
    assert app._h_pick.value is None and len(app._h_pick.options) >= 2
    assert app._revert.disabled and "pick the change to revert" in app._revert_why.value
    app._revert.click()  # even a click that reaches it says why and changes nothing
    assert "nothing was reverted: pick the change to revert" in app._message.value
    assert store.get_rate(rid).input_rate == Decimal("0.000005")

    change = store.history(rate_id=rid)[0]
    app._h_pick.value = change.id
    assert not app._revert.disabled and app._revert_why.value == ""
    app._revert.click()
    assert store.get_rate(rid).input_rate == margin_rate(Decimal("0.0000025"), 2, 1)
    assert f"reverted change {change.id}" in app._message.value
    assert "revert" in app._history.value  # the history shows the revert
    assert app._h_pick.value is None and app._revert.disabled


def test_state_class_makes_no_widgets(store: Store) -> None:
    before = live_widget_count()
    state = RateEditorState(store)
    state.set_filter(providers="openai")
    state.select(_rate_id(store))
    state.save(input_rate="0.1", output_rate="0.1")
    assert live_widget_count() == before


def test_a_failed_save_keeps_what_was_typed(store: Store) -> None:
    rid = _rate_id(store)
    app = RateEditorApp(store)
    _pick(app, rid)
    app._edit.texts["input_rate"].value = "0.00000x"
    app._edit.texts["output_rate"].value = "0.000031"
    app._edit_reason.value = "typo test"
    app._save.click()
    assert "input rate" in app._edit.errors["input_rate"].value  # said beside the field
    # nothing written, and nothing the person typed is lost
    assert store.get_rate(rid).version == 1
    assert app._edit.texts["input_rate"].value == "0.00000x"
    assert app._edit.texts["output_rate"].value == "0.000031"
    assert app._edit_reason.value == "typo test"
    store.update_rate(rid, 1, input_rate="0.000004", reason="someone else")
    app._edit.texts["input_rate"].value = "0.000005"
    app._save.click()  # stale: refused, the form still holds the new numbers
    assert "reload" in app._message.value.lower()
    assert app._edit.texts["input_rate"].value == "0.000005"
    assert app._edit.texts["output_rate"].value == "0.000031"
