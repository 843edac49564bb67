"""Store: rate history, the rate in force at a time, timelines and revert, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa
from _stores import chat_spec, count_rows, snapshot, two_providers
from sqlalchemy.orm import Session

from hubkit.catalog import Catalog, CatalogEntry
from hubkit.domain import ChangeType, RateType, UnitCosts
from hubkit.errors import ConflictError, NotFoundError, StaleVersionError, ValidationError
from hubkit.store import Store
from hubkit.store.schema import RateHistoryRow, RateRow

pytestmark = pytest.mark.store("sqlite", "postgres", seed=two_providers)

D = Decimal
COSTS = {"input": "0.000002", "output": "0.000008"}


def _catalog(*entries: tuple[str, str, str, str]) -> Catalog:
    return Catalog(
        entries=tuple(
            CatalogEntry(
                provider=provider,
                model=model,
                type=RateType.CHAT_COMPLETION,
                unit_costs=UnitCosts(D(cost_in), D(cost_out)),
                cache_read_cost=None,
                cache_write_cost=None,
                model_metadata=None,
                source_key=f"{provider}/{model}",
            )
            for provider, model, cost_in, cost_out in entries
        ),
        unmapped=(),
        source="test.csv",
        currency="USD",
    )


# --- a history row for every kind of change --------------------------------------------------


def test_every_change_kind_writes_history(store: Store) -> None:
    created = store.create_rate(chat_spec(model="gpt-4o", unit_costs=COSTS))
    store.create_rates_batch(chat_spec(model="shared", unit_costs=COSTS), ["openai", "anthropic"])
    store.update_rate(created.id, 1, output_rate="0.000012")
    store.apply_bulk_update(store.preview_bulk_update(30, 1), job_run_id="bulk-1")
    # small cost move → catalog_import; > 10 % → source_drift
    store.import_catalog(
        _catalog(
            ("openai", "gpt-4o", "0.0000021", "0.000008"),
            ("anthropic", "shared", "0.000004", "0.000008"),
        )
    )
    store.delete_rate(created.id)
    deleted = store.history(limit=1)[0]
    assert deleted.change_type == ChangeType.DELETE
    (revert,) = store.revert(deleted.id)
    kinds = [h.change_type for h in store.history()]
    assert sorted(set(kinds)) == sorted(
        {
            "create",
            "bulk_create",
            "manual_update",
            "bulk_update",
            "catalog_import",
            "source_drift",
            "delete",
            "revert",
        }
    )
    for entry in store.history():
        assert entry.actor == "pytest"
        assert entry.changed_at.tzinfo is not None and entry.changed_at.utcoffset() == timedelta(0)
    assert revert.metadata == {"reverts": deleted.id}
    assert kinds.count("bulk_update") == 3 and kinds.count("bulk_create") == 2


def test_drift_just_over_the_threshold_is_source_drift_as_the_catalog_says(store: Store) -> None:
    # 10.000004 % is over 10 %: the store must agree with hubkit.catalog.drift, not round
    # the percentage to 10.0000 first and call it an ordinary import.
    from hubkit.catalog import drift

    rate = store.create_rate(chat_spec(unit_costs={"input": "1", "output": "0"}))
    catalog = _catalog(("openai", "gpt-4o", "1.10000004", "0"))
    (flagged,) = drift(store.list_rates(), catalog)
    assert flagged.exceeds
    result = store.import_catalog(catalog)
    assert [d[1] for d in result.drifted] == ["gpt-4o"]
    assert store.history(rate_id=rate.id)[0].change_type == ChangeType.SOURCE_DRIFT


def test_catalog_import_refuses_to_overwrite_an_edit_made_since_it_was_planned(
    store: Store,
) -> None:
    rate = store.create_rate(chat_spec(unit_costs=COSTS))
    planned = {r.id: r.version for r in store.list_rates()}
    edited = store.update_rate(rate.id, rate.version, input_rate="0.000009", reason="operator")
    with pytest.raises(StaleVersionError, match="changed since"):
        store.import_catalog(
            _catalog(("openai", "gpt-4o", "0.000003", "0")), expected_versions=planned
        )
    assert store.get_rate(rate.id) == edited
    assert [e.change_type for e in store.history(rate_id=rate.id)] == ["manual_update", "create"]
    # planned against the current versions, the same import goes through
    current = {r.id: r.version for r in store.list_rates()}
    result = store.import_catalog(
        _catalog(("openai", "gpt-4o", "0.000003", "0")), expected_versions=current
    )
    assert result.updated == 1


def test_history_rows_carry_previous_and_current_values(store: Store) -> None:
    rate = store.create_rate(chat_spec(unit_costs=COSTS))
    store.update_rate(rate.id, 1, input_rate="0.000003", unit_costs={"input": "0.0000025"})
    store.import_catalog(_catalog(("openai", "gpt-4o", "0.000003", "0")), reason="refresh")
    drift, update, create = store.history(rate_id=rate.id)
    assert create.previous_unit_costs is None
    assert create.current_unit_costs == UnitCosts(D("0.000002"), D("0.000008"))
    assert (update.previous_input_rate, update.current_input_rate) == (
        D("0.0000025"),
        D("0.000003"),
    )
    assert update.previous_unit_costs == UnitCosts(D("0.000002"), D("0.000008"))
    assert update.current_unit_costs == UnitCosts(D("0.0000025"), D(0))
    assert drift.change_type == ChangeType.SOURCE_DRIFT
    assert drift.drift_pct == D(20)
    assert drift.source == "catalog:test.csv"
    assert drift.reason == "refresh"
    assert drift.current_unit_costs == UnitCosts(D("0.000003"), D(0))
    # costs alone moved: the rates are kept unless asked to re-derive them
    assert drift.current_input_rate == drift.previous_input_rate == D("0.000003")


def test_history_filters_and_order(store: Store) -> None:
    a = store.create_rate(chat_spec(model="a"))
    store.create_rate(chat_spec("anthropic", model="b", type="embedding"))
    store.update_rate(a.id, 1, input_rate=1)
    everything = store.history()
    assert [h.change_type for h in everything] == ["manual_update", "create", "create"]
    assert [h.changed_at for h in everything] == sorted(
        (h.changed_at for h in everything), reverse=True
    )
    assert len(store.history(rate_id=a.id)) == 2
    assert [h.model for h in store.history(provider="ANTHROPIC")] == ["b"]
    assert [h.model for h in store.history(type="embedding")] == ["b"]
    assert len(store.history(model="a")) == 2
    assert len(store.history(limit=1)) == 1
    assert store.history(since=everything[0].changed_at) == everything[:1]
    with pytest.raises(ValidationError):
        store.history(type="chat")


# --- the rate in force at a time -------------------------------------------------------------


def _between(earlier: datetime, later: datetime) -> datetime:
    assert later > earlier
    return earlier + (later - earlier) / 2


def test_rate_at_between_changes(store: Store) -> None:
    rate = store.create_rate(chat_spec(input_rate="0.000001", unit_costs=COSTS))
    store.update_rate(rate.id, 1, input_rate="0.000002")
    store.update_rate(rate.id, 2, input_rate="0.000003")
    store.delete_rate(rate.id)
    deleted, third, second, first = store.history(rate_id=rate.id)
    key = ("openai", "gpt-4o", "chatCompletion")
    assert store.rate_at(*key, first.changed_at - timedelta(seconds=1)) is None
    at_create = store.rate_at(*key, first.changed_at)
    assert at_create is not None and at_create.input_rate == D("0.000001")
    assert at_create.history_id == first.id and at_create.since == first.changed_at
    assert at_create.unit_costs == UnitCosts(D("0.000002"), D("0.000008"))
    for before, after, expected in (
        (first, second, "0.000001"),
        (second, third, "0.000002"),
        (third, deleted, "0.000003"),
    ):
        found = store.rate_at(*key, _between(before.changed_at, after.changed_at))
        assert found is not None and found.input_rate == D(expected)
        assert found.output_rate == D("0.00001")
    assert store.rate_at(*key, deleted.changed_at + timedelta(seconds=1)) is None
    assert store.rate_at("openai", "other", "chatCompletion", datetime.now(UTC)) is None
    with pytest.raises(ValidationError, match="timezone"):
        store.rate_at(*key, datetime(2030, 1, 1))  # naive: refused, never guessed


def test_rate_at_accepts_other_time_zones(store: Store) -> None:
    store.create_rate(chat_spec())
    (entry,) = store.history()
    tz = datetime.now().astimezone().tzinfo
    later = (entry.changed_at + timedelta(milliseconds=1)).astimezone(tz)
    found = store.rate_at("openai", "gpt-4o", "chatCompletion", later)
    assert found is not None and found.history_id == entry.id


# --- timeline --------------------------------------------------------------------------------


def test_rate_timeline_periods(store: Store) -> None:
    rate = store.create_rate(
        chat_spec(input_rate="0.000001", caching={"readRate": "0.0000005"}, unit_costs=COSTS)
    )
    store.update_rate(rate.id, 1, input_rate="0.000002")
    store.delete_rate(rate.id)
    store.create_rate(chat_spec(input_rate="0.000009"))
    store.create_rate(chat_spec("anthropic", model="claude"))
    recreate, deleted, update, create = store.history(model="gpt-4o")

    frame = store.rate_timeline()
    assert list(frame.columns) == [
        "provider",
        "model",
        "type",
        "input_rate",
        "output_rate",
        "cache_read_rate",
        "cache_write_rate",
        "unit_cost_input",
        "unit_cost_output",
        "valid_from",
        "valid_to",
        "scheduled",
        "proposal_id",
    ]
    assert not frame["scheduled"].any()
    gpt = frame[frame["model"] == "gpt-4o"].reset_index(drop=True)
    assert list(gpt["input_rate"]) == [D("0.000001"), D("0.000002"), D("0.000009")]
    assert pd.isna(gpt.loc[0, "valid_from"])  # backfilled: prices calls before hubkit saw it
    assert gpt.loc[0, "valid_to"] == pd.Timestamp(update.changed_at)
    assert gpt.loc[1, "valid_from"] == pd.Timestamp(update.changed_at)
    assert gpt.loc[1, "valid_to"] == pd.Timestamp(deleted.changed_at)  # a delete ends it
    assert gpt.loc[2, "valid_from"] == pd.Timestamp(recreate.changed_at)
    assert pd.isna(gpt.loc[2, "valid_to"])
    assert str(frame["valid_from"].dtype).startswith("datetime64") and "UTC" in str(
        frame["valid_from"].dtype
    )
    # cache rates are the current ones (history does not track them); none after re-create
    assert gpt["cache_read_rate"].isna().all()
    assert list(frame[frame["model"] == "claude"]["provider"]) == ["anthropic"]

    strict = store.rate_timeline(backfill=False)
    first = strict[strict["model"] == "gpt-4o"].iloc[0]
    assert first["valid_from"] == pd.Timestamp(create.changed_at)


def test_timeline_carries_current_cache_rates(store: Store) -> None:
    store.create_rate(chat_spec(caching={"readRate": "0.0000005", "writeRate": 0}))
    (row,) = store.rate_timeline().to_dict("records")
    assert (row["cache_read_rate"], row["cache_write_rate"]) == (D("0.0000005"), D(0))


def test_hub_push_rows_are_not_price_changes(store: Store) -> None:
    # A push records where a rate went; it must neither split nor end a price period,
    # even when the push deleted the rate on the hub (after=None).
    rate = store.create_rate(chat_spec())
    store.record_hub_push(
        provider="openai", model="gpt-4o", type="chatCompletion", rate_id=rate.id,
        before=(rate.input_rate, rate.output_rate, None), after=None,
    )  # fmt: skip
    (row,) = store.rate_timeline().to_dict("records")
    assert pd.isna(row["valid_to"]) and row["input_rate"] == rate.input_rate
    now = datetime.now(UTC) + timedelta(seconds=1)
    found = store.rate_at("openai", "gpt-4o", "chatCompletion", now)
    assert found is not None and found.input_rate == rate.input_rate


def test_empty_timeline(store: Store) -> None:
    frame = store.rate_timeline()
    assert frame.empty and "valid_from" in frame.columns


# --- revert ----------------------------------------------------------------------------------


def test_revert_an_update(store: Store) -> None:
    rate = store.create_rate(chat_spec(unit_costs=COSTS))
    store.update_rate(rate.id, 1, input_rate="0.000004", unit_costs={"input": "0.000003"})
    change = store.history(rate_id=rate.id)[0]
    (entry,) = store.revert(change.id, reason="oops")
    assert entry.change_type == ChangeType.REVERT and entry.reason == "oops"
    assert entry.metadata == {"reverts": change.id}
    assert (entry.previous_input_rate, entry.current_input_rate) == (
        D("0.000004"),
        D("0.0000025"),
    )
    back = store.get_rate(rate.id)
    assert back.input_rate == D("0.0000025")
    assert back.unit_costs == UnitCosts(D("0.000002"), D("0.000008"))
    assert back.version == 3  # a revert is a change: stale editors must reload
    with pytest.raises(ValidationError, match="revert the original"):
        store.revert(entry.id)


def test_revert_conflicts_unless_forced(store: Store, db_url: str) -> None:
    rate = store.create_rate(chat_spec())
    store.update_rate(rate.id, 1, input_rate="0.000004")
    first_change = store.history(rate_id=rate.id)[0]
    store.update_rate(rate.id, 2, input_rate="0.000005")
    before, n_history = snapshot(store), count_rows(db_url, "rate_history")
    with pytest.raises(ConflictError, match="changed again since") as info:
        store.revert(first_change.id)
    assert "force" in str(info.value)
    assert snapshot(store) == before
    assert count_rows(db_url, "rate_history") == n_history
    store.revert(first_change.id, force=True)
    assert store.get_rate(rate.id).input_rate == D("0.0000025")


def test_revert_a_create_deletes_the_rate(store: Store) -> None:
    rate = store.create_rate(chat_spec())
    (create,) = store.history(rate_id=rate.id)
    (entry,) = store.revert(create.id)
    assert entry.current_input_rate is None and entry.previous_input_rate == D("0.0000025")
    assert store.list_rates() == []


def test_revert_a_create_after_an_edit_conflicts(store: Store) -> None:
    rate = store.create_rate(chat_spec())
    create = store.history(rate_id=rate.id)[0]
    store.update_rate(rate.id, 1, input_rate=1)
    with pytest.raises(ConflictError):
        store.revert(create.id)
    assert len(store.list_rates()) == 1


def test_revert_a_delete_recreates_the_rate(store: Store) -> None:
    rate = store.create_rate(
        chat_spec(
            model="gpt-4o-mini",
            model_display="GPT-4o mini",
            unit_costs={"input": "1.0003E-7", "output": "0.0000006"},
            caching={"readRate": "0.000000075"},
            model_metadata={"maxTokens": 16384, "features": ["tools"]},
            description="cheap",
        )
    )
    store.delete_rate(rate.id)
    deleted = store.history(rate_id=rate.id)[0]
    (entry,) = store.revert(deleted.id)
    back = store.find_rate("openai", "gpt-4o-mini", "chatCompletion")
    assert entry.rate_id == back.id
    for name in (
        "input_rate",
        "output_rate",
        "model_display",
        "unit_costs",
        "caching",
        "model_metadata",
        "description",
    ):
        assert getattr(back, name) == getattr(rate, name), name
    # a delete can be reverted once; re-created since means a conflict
    with pytest.raises(ConflictError, match="re-created"):
        store.revert(deleted.id)


def test_revert_a_delete_brings_back_the_deprecation(store: Store) -> None:
    rate = store.create_rate(chat_spec(model="gpt-3.5-turbo"))
    rate = store.deprecate_rate(rate.id, rate.version, reason="retired by openai")
    (before,) = [r for r in _rate_table(store) if r.model == "gpt-3.5-turbo"]
    assert before.deprecated_at is not None
    store.delete_rate(rate.id)
    deleted = store.history(rate_id=rate.id)[0]
    store.revert(deleted.id)
    back = store.find_rate("openai", "gpt-3.5-turbo", "chatCompletion")
    assert (back.deprecated, back.deprecated_reason) == (True, "retired by openai")
    (after,) = [r for r in _rate_table(store) if r.model == "gpt-3.5-turbo"]
    assert after.deprecated_at == before.deprecated_at
    # deprecated rates stay out of the default lists, as before the delete
    assert back.id not in {r.id for r in store.list_rates(include_deprecated=False)}


def test_revert_of_a_delete_recorded_without_the_deprecation_keeps_it_active(
    store: Store, db_url: str
) -> None:
    # Deletes recorded before the snapshot carried the deprecation fields: as before.
    rate = store.create_rate(chat_spec(model="gpt-3.5-turbo"))
    rate = store.deprecate_rate(rate.id, rate.version, reason="retired")
    store.delete_rate(rate.id)
    deleted = store.history(rate_id=rate.id)[0]
    old = {k: v for k, v in deleted.metadata["snapshot"].items() if not k.startswith("deprecat")}
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.update(RateHistoryRow.__table__)
                .where(RateHistoryRow.__table__.c.id == deleted.id)
                .values(metadata={"snapshot": old})
            )
    finally:
        engine.dispose()
    store.revert(deleted.id)
    back = store.find_rate("openai", "gpt-3.5-turbo", "chatCompletion")
    assert (back.deprecated, back.deprecated_reason) == (False, None)


def _rate_table(store: Store) -> list[RateRow]:
    with Session(store.engine) as session:
        rows = list(session.scalars(sa.select(RateRow)))
        session.expunge_all()
        return rows


def test_revert_an_update_of_a_deleted_rate_conflicts(store: Store) -> None:
    rate = store.create_rate(chat_spec())
    store.update_rate(rate.id, 1, input_rate=1)
    change = store.history(rate_id=rate.id)[0]
    store.delete_rate(rate.id)
    with pytest.raises(ConflictError, match="deleted since"):
        store.revert(change.id)


def test_revert_a_bulk_job(store: Store, db_url: str) -> None:
    for model in ("a", "b", "c"):
        store.create_rate(chat_spec(model=model, unit_costs=COSTS))
    store.create_rate(chat_spec(model="no-costs"))
    before = snapshot(store)
    result = store.apply_bulk_update(store.preview_bulk_update(40, 1), job_run_id="job-7")
    assert result.updated == 3
    assert snapshot(store) != before
    reverted = store.revert_job_run("job-7")
    assert len(reverted) == 3
    assert {e.change_type for e in reverted} == {"revert"}
    after = {r.model: (r.input_rate, r.output_rate) for r in store.list_rates()}
    assert after == {m: (i, o) for _, _, m, _, i, o, _, _ in before}
    with pytest.raises(NotFoundError, match="changed no rates"):
        store.revert_job_run("job-unknown")
    with pytest.raises(NotFoundError):
        store.revert(987654)


def test_revert_a_bulk_job_refused_when_one_rate_moved_on(store: Store) -> None:
    for model in ("a", "b"):
        store.create_rate(chat_spec(model=model, unit_costs=COSTS))
    store.apply_bulk_update(store.preview_bulk_update(40, 1), job_run_id="job-8")
    a = store.find_rate("openai", "a", "chatCompletion")
    store.update_rate(a.id, a.version, input_rate="0.5")
    moved = snapshot(store)
    with pytest.raises(ConflictError, match="openai/a"):
        store.revert_job_run("job-8")
    assert snapshot(store) == moved  # all or nothing: "b" was not reverted either
    store.revert_job_run("job-8", force=True)
    assert {r.input_rate for r in store.list_rates()} == {D("0.0000025")}


def test_catalog_rederive_refuses_rates_beyond_the_gateway_limit(store: Store) -> None:
    # A created rate is checked against DECIMAL(20,10) (RateSpec); a re-derived existing
    # one must be too, or a rate the gateway cannot hold is written to the store.
    rate = store.create_rate(chat_spec(unit_costs=COSTS))
    with pytest.raises(ValidationError, match="inputRate|outputRate"):
        store.import_catalog(
            _catalog(("openai", "gpt-4o", "100000", "0")),
            rederive_rates=True,
            credit_price="0.000001",  # the lowest plausible price; 1e11 credits per token
        )
    assert store.get_rate(rate.id) == rate
    assert [e.change_type for e in store.history(rate_id=rate.id)] == ["create"]
