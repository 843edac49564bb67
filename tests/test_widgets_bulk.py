"""Bulk update app, headless: exact text inputs, live preview, apply, stale detection."""

from __future__ import annotations

import io
from decimal import Decimal

import pandas as pd
import pytest
from _widget_helpers import (
    FakeLoop,
    close_all_widgets,
    live_widget_count,
    seed_sample,
    seeded_store,
)

from hubkit.domain import RateSpec
from hubkit.pricing import margin_rate
from hubkit.pricing.bulk_counts import BulkCounts
from hubkit.store import Store
from hubkit.widgets import BulkUpdateApp, BulkUpdateState
from hubkit.widgets._common import slider_text
from hubkit.widgets._review_table import Rows
from hubkit.widgets.bulk import PAUSE_S, PENDING

pytestmark = pytest.mark.store(seed=seed_sample, close_widgets=True)


def _gpt4o(store: Store):
    return store.find_rate("openai", "gpt-4o", "chatCompletion")


def test_starts_from_the_stored_settings_with_nothing_to_change(store: Store) -> None:
    app = BulkUpdateApp(store)
    assert (app._margin_text.value, app._price_text.value) == ("2", "1")
    assert app._margin_slider.value == 2.0
    assert app.state.preview is not None and not app.state.preview.changed
    assert app._apply.disabled
    assert "0 rates would change" in app._summary.value


def test_exact_text_is_the_value_used_not_the_slider_float(store: Store) -> None:
    app = BulkUpdateApp(store)
    app._margin_text.value = "12.345"  # finer than the slider's 0.5 step
    app._price_text.value = "0.001"
    preview = app.state.preview
    assert preview is not None
    assert (preview.profit_margin, preview.credit_price) == (Decimal("12.345"), Decimal("0.001"))
    assert app._margin_text.value == "12.345"  # the slider moving did not write back
    assert app._margin_slider.value == pytest.approx(12.345)
    change = next(c for c in preview.changes if c.model == "gpt-4o" and c.provider == "openai")
    assert change.new_input_rate == margin_rate(Decimal("0.0000025"), "12.345", "0.001")
    shown = app._preview.shown.set_index(["model", "provider"])
    assert shown.loc[("gpt-4o", "openai"), "input new"] == "0.002808625"  # plain, no padding


def test_slider_moves_write_the_exact_text(store: Store) -> None:
    app = BulkUpdateApp(store)
    app._margin_slider.value = 30.0
    assert app._margin_text.value == "30"
    assert app.state.margin == Decimal(30)
    app._margin_slider.value = 27.5
    assert app._margin_text.value == "27.5"
    assert slider_text(0.1 + 0.2, 0.5) == "0.3"
    assert slider_text(0.00123456789, 0.00001) == "0.00123"


def test_invalid_input_clears_the_preview_and_blocks_apply(store: Store) -> None:
    app = BulkUpdateApp(store)
    app._margin_text.value = "abc"
    assert app.state.preview is None and app._apply.disabled
    assert "margin must be a number" in app._margin_error.value
    assert "profitMargin" not in app._margin_error.value
    app._margin_text.value = "10"
    app._price_text.value = "0"
    assert "credit price must be &gt; 0" in app._price_error.value
    assert app._margin_error.value == ""
    assert app.state.preview is None


def test_filters_narrow_the_preview(store: Store) -> None:
    app = BulkUpdateApp(store)
    app._providers.value = ("openai",)
    app._types.value = ("chatCompletion",)
    app._pattern.value = "gpt-4o*"
    app._margin_text.value = "25"
    preview = app.state.preview
    assert preview is not None and preview.changed
    assert {(c.provider, c.type.value) for c in preview.changes} == {("openai", "chatCompletion")}
    assert all(c.model.startswith("gpt-4o") for c in preview.changes)
    assert f"{len(preview.changed)} rates would change" in app._summary.value


def test_preview_shows_skipped_and_sides_dropping_to_zero(store: Store) -> None:
    store.create_rate(RateSpec.create("openai", "no-costs", "chatCompletion", input_rate=1))
    store.create_rate(
        RateSpec.create(
            "openai", "free-output", "chatCompletion", input_rate="0.000001",
            output_rate="0.000002", unit_costs={"input": "0.000001", "output": "0"},
        )
    )  # fmt: skip
    app = BulkUpdateApp(store)
    app._pattern.value = "*o*"
    app._margin_text.value = "10"
    assert "no-costs" in app._skipped.value and "no unitCosts" in app._skipped.value
    table = app.state.preview_table().set_index("model")
    assert table.loc["free-output", "drops_to_zero"] == "output"
    assert "with a side dropping to 0" in app._summary.value


def test_apply_needs_a_reason_then_writes_rates_and_history(store: Store) -> None:
    app = BulkUpdateApp(store)
    app._margin_text.value = "25"
    app._price_text.value = "0.001"
    changed = app.state.preview.changed  # type: ignore[union-attr]
    assert app._apply.disabled and "type a reason" in app._why_not.value
    assert not app.state.apply("")
    assert "a reason is required" in app.state.errors["reason"]
    assert _gpt4o(store).version == 1

    app._reason.value = "Q4 prices"
    # price 1 → 0.001 multiplies every rate: beyond the job's 50 % limit, so held
    assert app._apply.disabled and "tick the confirmation" in app._why_not.value
    assert f"{len(changed)} rates move by more than 50 %" in app._unusual.value
    app._confirm.value = True
    assert not app._apply.disabled
    app._apply.click()
    rate = _gpt4o(store)
    assert rate.input_rate == margin_rate(Decimal("0.0000025"), 25, "0.001")
    assert rate.version == 2
    rows = store.history(job_run_id=None, since=app.state.result.changed_at)  # type: ignore[union-attr]
    bulk = [e for e in rows if e.change_type == "bulk_update"]
    assert len(bulk) == len(changed) == app.state.result.updated  # type: ignore[union-attr]
    assert {e.reason for e in bulk} == {"Q4 prices"}
    assert "History rows written" in app._written.value and "Q4 prices" in app._written.value
    # finance and the next visit start from the prices now in force
    ops = store.get_operator_settings()
    assert (ops.target_margin, ops.credit_price) == (Decimal(25), Decimal("0.001"))
    assert "recorded as the operator settings" in app.state.message.text  # type: ignore[union-attr]
    assert app._reason.value == ""
    assert "0 rates would change" in app._summary.value  # re-read: already at 25 %
    assert app._progress.bar.layout.display == "none"


def test_stale_preview_is_refused_then_reload_applies(db_url: str) -> None:
    store = seeded_store(db_url)
    try:
        app = BulkUpdateApp(store)
        app._margin_text.value = "40"
        rate = _gpt4o(store)
        store.update_rate(rate.id, rate.version, input_rate="0.5", reason="someone else")
        before = {r.id: r for r in store.list_rates()}

        app._reason.value = "raise"
        app._apply.click()
        assert app.state.stale and "changed since the preview" in app._message.value
        assert "Reload rates" in app._message.value
        assert {r.id: r for r in store.list_rates()} == before  # nothing written
        assert _gpt4o(store).input_rate == Decimal("0.5")

        app._reload.click()
        assert not app.state.stale
        app._reason.value = "raise"
        # someone's 0.5 → 0.0000035 is a -99.99 % move: held like the job would hold it
        assert "1 rate moves by more than 50 %" in app._unusual.value
        app._confirm.value = True
        app._apply.click()
        assert _gpt4o(store).input_rate == margin_rate(Decimal("0.0000025"), 40, 1)
    finally:
        close_all_widgets()
        store.close()


def test_progress_is_reported_while_previewing_and_applying(store: Store) -> None:
    calls: list[tuple[int, int]] = []
    state = BulkUpdateState(store)
    state.set_margin("5", progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (state.rate_count, state.rate_count) and state.rate_count > 250
    assert len(calls) >= 2  # intermediate steps too, not only the end
    calls.clear()
    assert state.apply("five", progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)


def test_state_class_makes_no_widgets(store: Store) -> None:
    before = live_widget_count()
    state = BulkUpdateState(store)
    state.set_margin("7")
    state.set_filter(providers="openai")
    assert state.apply("seven")
    assert live_widget_count() == before


def test_a_change_the_job_would_refuse_needs_a_confirmation_naming_it(store: Store) -> None:
    app = BulkUpdateApp(store)
    before = _gpt4o(store)
    app._margin_text.value = "1000000"  # beyond the plausible range: said in the screen's words
    assert "margin &#x27;1000000&#x27; is outside the plausible range" in app._margin_error.value
    assert "profitMargin" not in app._margin_error.value and app._apply.disabled
    app._margin_text.value = "5000"
    app._reason.value = "typo?"
    unusual = app.state.unusual()
    assert len(unusual) == 1 and "move by more than 50 % (largest +" in unusual[0]
    assert app._apply.disabled and app._confirm.layout.display == ""
    assert "Unusual, held for your confirmation" in app._unusual.value
    assert not app.state.apply("typo?")  # the state refuses too, not only the button
    assert "confirm the unusual changes first" in str(app.state.error)
    assert _gpt4o(store) == before

    app._confirm.value = True
    assert not app._apply.disabled
    app._margin_text.value = "5001"  # a new preview: the confirmation was for the old one
    assert not app.state.confirmed and not app._confirm.value and app._apply.disabled

    app._margin_text.value = "2.5"  # an ordinary step: nothing held
    assert app.state.unusual() == [] and app._confirm.layout.display == "none"
    assert not app._apply.disabled and app._why_not.value == ""


def test_an_apply_leaves_the_settings_alone_when_told(store: Store) -> None:
    app = BulkUpdateApp(store)
    app._margin_text.value = "2.5"
    app._record.value = False
    app._reason.value = "trial"
    app._apply.click()
    assert app.state.result is not None and app.state.result.updated > 0
    assert store.get_operator_settings().target_margin == Decimal(2)


def test_a_rate_becoming_free_is_named_with_correct_plurals(store: Store) -> None:
    store.create_rate(
        RateSpec.create(
            "openai", "free-output", "chatCompletion", input_rate="0.000001",
            output_rate="0.000002", unit_costs={"input": "0.000001", "output": "0"},
        )
    )  # fmt: skip
    state = BulkUpdateState(store)
    state.max_change_pct = None
    # a margin is never under cost (≥ 0 %): what can surprise here is output cost 0 → free
    assert state.set_filter(model_pattern="free-output") and state.set_margin("0")
    assert state.unusual() == ["1 rate would become free (0 credits)"]
    assert state.summary().startswith("1 rate would change")


def test_every_previewed_rate_is_reviewable_and_downloadable(store: Store) -> None:
    from hubkit.widgets._review_table import download_csv

    app = BulkUpdateApp(store)
    app._margin_text.value = "30"
    changed = app.state.preview.changed  # type: ignore[union-attr]
    assert len(changed) > 3
    table = app._preview
    assert len(table.shown) == len(changed)  # no cap: every row is in the grid
    assert table.table is not None and not table.table._dt_args.get("downsampling_warning")
    assert list(table.shown.columns[:4]) == ["model", "provider", "type", "input change %"]
    csv = pd.read_csv(io.StringIO(download_csv(table.download.value)), dtype=str)
    assert len(csv) == len(changed)
    written = {(c.rate_id, str(c.new_input_rate.normalize())) for c in changed}
    assert {(int(i), str(Decimal(r).normalize())) for i, r in
            zip(csv["rate_id"], csv["new_input_rate"], strict=True)} == written  # fmt: skip
    app._margin_text.value = "2"  # nothing would change: the table says so, no download
    assert table.shown.empty and table.download.value == ""
    assert "no rate would change" in table.note.value


# ---- typing over many rates: the summary at once, the exact preview and grid after a pause --


def test_a_deferred_input_gives_the_exact_counts_and_a_pending_preview(store: Store) -> None:
    state = BulkUpdateState(store)
    assert state.set_margin("25", defer=True) and state.set_credit_price("0.001", defer=True)
    assert state.pending and state.preview is None  # nothing to apply yet
    quick, quick_summary = state.counts, state.summary()
    assert quick is not None and quick.changed > 0
    assert state.refresh() and not state.pending
    assert state.counts == quick == BulkCounts.of(state.preview)  # type: ignore[arg-type]
    assert state.summary() == quick_summary
    exact = BulkUpdateState(store)
    exact.set_margin("25")
    exact.set_credit_price("0.001")
    assert exact.summary() == quick_summary
    assert state.refresh() and not state.pending  # made already: nothing to do


def test_invalid_deferred_input_is_said_at_once_and_waits_for_nothing(store: Store) -> None:
    state = BulkUpdateState(store)
    assert not state.set_margin("abc", defer=True)
    assert "profitMargin must be a number" in state.errors["margin"]
    assert not state.pending and state.counts is None and state.preview is None
    assert state.summary() == "no preview: fix the inputs"


def test_a_pending_preview_is_never_applied(store: Store) -> None:
    state = BulkUpdateState(store)
    state.set_margin("2.5")
    state.set_margin("3", defer=True)  # typed after the preview on screen
    assert state.apply_blocker("raise") == PENDING
    before = _gpt4o(store)
    assert not state.apply("raise")
    assert "nothing was written" in str(state.error) and _gpt4o(store) == before
    state.refresh()
    assert state.apply("raise")
    assert _gpt4o(store).input_rate == margin_rate(Decimal("0.0000025"), 3, 1)


def test_a_confirmation_holds_for_that_very_preview_only(store: Store) -> None:
    state = BulkUpdateState(store)
    state.set_margin("5000")
    assert state.unusual()
    state.confirm()
    assert state.confirmed and state.apply_blocker("typo?") is None
    seen = state.preview
    state.set_margin("5001", defer=True)
    assert not state.confirmed
    state.confirm()  # nothing on screen to confirm yet
    state.set_margin("5000", defer=True)
    state.refresh()  # the same inputs as the confirmed preview, but a new preview
    assert state.preview is not seen and not state.confirmed
    assert "tick the confirmation" in (state.apply_blocker("typo?") or "")


def test_a_burst_of_keystrokes_draws_the_grid_once_after_the_pause(store: Store) -> None:
    loop = FakeLoop()
    app = BulkUpdateApp(store, later=loop.later)
    drawn: list[int] = []
    show_rows = app._preview.show_rows

    def record(rows: Rows) -> None:
        drawn.append(len(rows.shown))
        show_rows(rows)

    app._preview.show_rows = record  # type: ignore[method-assign]
    for text in ("3", "30", "30.", "30.5"):
        app._margin_text.value = text
        # each keystroke's summary is there at once (the counts equal the exact preview's)
        assert app.state.pending and app._summary.value == f"<b>{app.state.summary()}</b>"
        assert f"margin {text.rstrip('.')} %" in app._summary.value
        assert app._apply.disabled and "being made" in app._why_not.value
        assert app._preview.is_stale and "hubkit-review-stale" in app._preview.box._dom_classes
        loop.advance(0.1)
    assert drawn == []
    loop.advance(PAUSE_S + 1)
    assert len(drawn) == 1 and not app._preview.is_stale
    assert not app.state.pending and app.state.preview is not None
    assert app.state.preview.profit_margin == Decimal("30.5")
    assert drawn[0] == len(app.state.preview.changed) == len(app._preview.shown)
    assert "hubkit-review-stale" not in app._preview.box._dom_classes
    app._reason.value = "a pause, then apply"
    assert not app._apply.disabled


def test_a_keystroke_during_the_steps_drops_the_old_grid(store: Store) -> None:
    loop = FakeLoop()
    app = BulkUpdateApp(store, later=loop.later)
    drawn: list[Decimal] = []
    show_rows = app._preview.show_rows

    def record(rows: Rows) -> None:
        drawn.append(app.state.preview.profit_margin)  # type: ignore[union-attr]
        show_rows(rows)

    app._preview.show_rows = record  # type: ignore[method-assign]
    app._margin_text.value = "10"
    loop.advance(PAUSE_S + 1)
    assert drawn == [Decimal(10)]
    app._margin_text.value = "11"
    loop.advance(PAUSE_S - 0.01)
    loop.run_one()  # the exact preview of 11 is made …
    assert app.state.preview is not None and not app.state.pending
    app._margin_text.value = "12"  # … and a keystroke arrives before its grid
    assert app.state.pending and app._apply.disabled
    app._reason.value = "now"
    app._apply.click()  # (a click sent before the button greyed out)
    assert "nothing was written" in app._message.value
    loop.advance(5)
    assert drawn == [Decimal(10), Decimal(12)]  # 11's grid was never drawn
    assert app.state.apply("now")  # the preview of 12, on screen
