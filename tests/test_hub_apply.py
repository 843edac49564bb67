"""apply against the local hub on loopback: dry runs, idempotence, crashes half-way, faults,
the sync-mode arithmetic cross-check, and keys that never leak.

Faults come from the local hub's switches (``hub.set_faults``), counted in writes, never
timed; "no duplicate" is checked by counting every (provider, model, type) on the hub.
The fault tests run one at a time (``concurrency=1``: exact order, exact statuses) and
with 8 in flight, where which item meets a fault is not fixed: those runs assert what
must hold whatever the order (no duplicate, every outcome reported, a fresh plan
finishes exactly the rest).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import pytest
from _hubsync import (
    BAD_KEY,
    KEY,
    NEW_KEY,
    PRICE,
    assert_no_secret,
    files_text,
    hub_credentials,
    hub_rates,
    priced_spec,
    seed_more_rates,
    seed_store,
    store_rate_keys,
)

from hubkit.domain import ChangeType, RateType
from hubkit.errors import HubRateLimitedError, ValidationError
from hubkit.hub import HubClient
from hubkit.hub import _fields as F
from hubkit.hub.apply import ApplyReport, ItemStatus, apply
from hubkit.hub.plan import Action, FieldChange, ItemKind, Plan, plan
from hubkit.hub.pull import pull
from hubkit.hub.verify import (
    ArithmeticMismatch,
    ArithmeticMismatchError,
    verify_against_hub_arithmetic,
)
from hubkit.pricing import margin_rate, mask_secret
from hubkit.store import Store

if TYPE_CHECKING:
    from hub_fixtures import HubHandle

# Faults, races or timing: `make soak` runs these under CPU load.
pytestmark = [
    pytest.mark.soak,
    pytest.mark.hub_needs("disposable", "these tests need an empty hub"),
]

OK, FAILED, SKIPPED = ItemStatus.OK, ItemStatus.FAILED, ItemStatus.SKIPPED


@pytest.fixture
def client(hub: HubHandle) -> Iterator[HubClient]:
    with hub.client() as c:
        yield c


def _writes(hub: HubHandle) -> int:
    return int(hub.stats()["writes"])


def _statuses(report: ApplyReport) -> dict[str, ItemStatus]:
    return {r.item.target: r.status for r in report.results}


def _assert_hub_is_the_store(client: HubClient, store: Store) -> None:
    """Exactly the desired state: every local rate once, with its values; nothing else."""
    assert plan(store, client).items == ()
    assert hub_rates(client) == Counter({key: 1 for key in store_rate_keys(store)})
    state = pull(client)
    for rate in store.list_rates():
        hub_rate = state.rate(rate.provider, rate.model, rate.type)
        assert hub_rate is not None and F.rate_fields(hub_rate) == F.rate_fields(rate)
    local_keys = Counter((c.provider, c.name) for c in store.list_credentials())
    assert hub_credentials(client) == local_keys


# --- dry run, idempotence, history ------------------------------------------------------------


@pytest.mark.hub_needs("switches", "counts the hub's writes")
def test_a_dry_run_reads_the_hub_and_writes_nothing(
    hub: HubHandle, client: HubClient, store: Store
) -> None:
    seed_store(store)
    p = plan(store, client)
    report = apply(p, store, client)  # the default is a dry run
    assert report.dry_run and _writes(hub) == 0
    assert set(_statuses(report).values()) == {ItemStatus.DRY_RUN}  # children of new providers too
    assert hub_rates(client) == Counter()
    assert [h.change_type for h in store.history()].count(ChangeType.HUB_PUSH.value) == 0
    assert store.list_credentials()[0].last_pushed_at is None
    assert not report.complete and "nothing was written" in report.summary()


@pytest.mark.hub_needs("switches", "counts the hub's writes")
def test_apply_pushes_everything_records_history_and_a_second_run_sends_nothing(
    hub: HubHandle, client: HubClient, store: Store
) -> None:
    seed_store(store)
    p = plan(store, client)
    seen: list[tuple[int, int]] = []
    report = apply(p, store, client, dry_run=False, progress=lambda d, t: seen.append((d, t)))
    assert report.complete, report.to_frame().to_string()
    assert seen == [(n, len(p.items)) for n in range(len(p.items) + 1)]
    _assert_hub_is_the_store(client, store)

    pushes = [h for h in store.history() if h.change_type == ChangeType.HUB_PUSH.value]
    assert len(pushes) == len(store_rate_keys(store)) == 5
    gpt4o = store.find_rate("openai", "gpt-4o", "chatCompletion")
    (push,) = [h for h in pushes if h.model == "gpt-4o"]
    assert (push.rate_id, push.previous_input_rate, push.current_input_rate) == (
        gpt4o.id, None, gpt4o.input_rate,
    )  # fmt: skip
    assert push.source == f"hub:{hub.url}" and push.metadata["action"] == "create"
    assert store.list_credentials()[0].last_pushed_at is not None

    folder = report.save()
    assert sorted(f.name for f in folder.iterdir()) == [
        ".hubkit-run", "plan.json", "report.json", "results.csv", "summary.json",
    ]  # fmt: skip
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["status"], summary["counts"]["ok"]) == ("success", len(p.items))
    assert "ok" in report._repr_html_()

    writes = _writes(hub)
    again = apply(p, store, client, dry_run=False)  # the same (old) plan once more
    assert again.complete and _writes(hub) == writes
    assert all(r.message.startswith("already") for r in again.results)


# --- crashes and faults -----------------------------------------------------------------------


@pytest.mark.hub_needs("switches")
@pytest.mark.parametrize("concurrency", [1, 8])
def test_killed_half_way_then_re_planned_ends_in_exactly_the_desired_state(
    hub: HubHandle, store: Store, concurrency: int
) -> None:
    seed_store(store)
    if concurrency > 1:
        seed_more_rates(store, 24)  # in flight when the hub dies: some landed, some not
    with hub.client(retries=1) as client:
        first_plan = plan(store, client)
        total = len(first_plan.items)
        assert total == 8 + (24 if concurrency > 1 else 0)  # 2 providers, 1 key, the rates

        def kill_after_four(done: int, total: int) -> None:
            if done == 4:
                hub.kill()

        first = apply(
            first_plan, store, client, dry_run=False, progress=kill_after_four,
            concurrency=concurrency,
        )  # fmt: skip
    statuses = [r.status for r in first.results]
    if concurrency == 1:
        assert statuses == [OK] * 4 + [FAILED] * 3 + [SKIPPED]
    else:  # the 4 that finished first, whatever was in flight (landed or not), the rest held
        assert statuses.count(OK) >= 4 and statuses.count(SKIPPED) >= 1
        assert set(statuses) == {OK, FAILED, SKIPPED}
        assert [r.item.target for r in first.results] == [i.target for i in first_plan.items]
    assert "stopped answering" in first.results[-1].message
    assert not first.complete and "fresh plan" in first.summary()

    hub.restart()  # same state file: what was written before the kill is there
    with hub.client() as client:
        second_plan = plan(store, client)
        done = {r.item.target for r in first.results if r.status is OK}
        left = {i.target for i in first_plan.items} - done
        if concurrency == 1:
            assert {i.target for i in second_plan.items} == left
        else:  # an item in flight at the kill may have landed: then it is in sync already
            assert {i.target for i in second_plan.items} <= left
        second = apply(second_plan, store, client, dry_run=False, concurrency=concurrency)
        assert second.complete
        _assert_hub_is_the_store(client, store)
    rows = [h for h in store.history() if h.change_type == ChangeType.HUB_PUSH.value]
    pushed = Counter(h.model for h in rows)
    if concurrency == 1:
        assert pushed == Counter(m for _, m, _ in store_rate_keys(store))
    else:  # once at most: a rate that landed unseen was not pushed by us as far as we know
        assert set(pushed.values()) == {1}


@pytest.mark.hub_needs("switches")
@pytest.mark.parametrize(
    ("writes", "landed", "concurrency"),
    [(2, "openai/main", 1), (3, "anthropic/claude-3-5-sonnet (chatCompletion)", 1),
     (2, None, 8), (5, None, 8)],
    ids=["key-post", "rate-post", "key-or-rate-post-8", "rate-post-8"],
)  # fmt: skip
def test_a_crash_after_a_post_landed_leaves_no_duplicate(
    hub: HubHandle, store: Store, writes: int, landed: str | None, concurrency: int
) -> None:
    """The hub applies a POST and dies before answering: the client cannot know."""
    seed_store(store)
    with hub.client(retries=1) as client:
        p = plan(store, client)
        hub.set_faults(crash={"after_writes": writes, "after_apply": True})
        first = apply(p, store, client, dry_run=False, concurrency=concurrency)
    by_target = {r.item.target: r for r in first.results}
    if landed is None:  # 8 in flight: which POST was the fatal one is not fixed
        unsure = [r for r in first.results if "whether it landed" in r.message]
        assert unsure and all(r.status is FAILED for r in unsure)
        landed = unsure[0].item.target
    assert by_target[landed].status is FAILED
    assert "whether it landed" in by_target[landed].message
    assert all(r.status in (OK, FAILED, SKIPPED) and r.message for r in first.results)
    hub.restart()
    with hub.client() as client:
        again = plan(store, client)
        kinds = {i.target: i.action for i in again.items}
        # a key that landed is pushed again (PUT), never created twice; a rate that landed
        # with the planned values is simply in sync
        if concurrency == 1:
            assert kinds.get(landed) == (Action.REPUSH if landed == "openai/main" else None)
        assert all(a in (Action.REPUSH, Action.CREATE) for a in kinds.values())
        assert apply(again, store, client, dry_run=False, concurrency=concurrency).complete
        _assert_hub_is_the_store(client, store)
        assert hub_credentials(client)[("openai", "main")] == 1
        assert pull(client).credential("openai", "main").display_text == mask_secret(KEY)


@pytest.mark.hub_needs("switches")
@pytest.mark.parametrize("concurrency", [1, 8])
def test_refused_writes_fail_their_items_and_a_fresh_plan_finishes_without_repeats(
    hub: HubHandle, client: HubClient, store: Store, concurrency: int
) -> None:
    seed_store(store)
    hub.set_faults(fail_after_writes={"writes": 3})  # then every write: 500, not applied
    first = apply(plan(store, client), store, client, dry_run=False, concurrency=concurrency)
    statuses = [r.status for r in first.results]
    if concurrency == 1:
        assert statuses == [OK] * 3 + [FAILED] * 5
    else:  # both providers first (their items wait for them), then any one of the rest
        assert statuses[:2] == [OK, OK] and sorted(statuses[2:]) == sorted([OK] + [FAILED] * 5)
    assert all("500" in r.message for r in first.failed)
    hub.clear_faults()
    rest = plan(store, client)
    assert {i.target for i in rest.items} == {r.item.target for r in first.failed}
    assert len(rest.items) == 5
    if concurrency == 1:
        assert {i.kind for i in rest.items} == {ItemKind.RATE}
    writes = _writes(hub)
    assert apply(rest, store, client, dry_run=False, concurrency=concurrency).complete
    assert _writes(hub) - writes == 5  # exactly what was missing; nothing sent twice
    _assert_hub_is_the_store(client, store)


@pytest.mark.hub_needs("switches")
@pytest.mark.parametrize("concurrency", [1, 8])
def test_503_bursts_and_a_slow_hub_fail_items_not_the_run(
    hub: HubHandle, client: HubClient, store: Store, concurrency: int
) -> None:
    seed_store(store, ("openai",))
    # two rate creates meet a 503 burst: POSTs are not retried, so those two fail
    hub.set_faults(status={"code": 503, "count": 2, "method": "POST",
                           "path": "/api/ai-providers/*/model-rates"})  # fmt: skip
    report = apply(plan(store, client), store, client, dry_run=False, concurrency=concurrency)
    statuses = [r.status for r in report.results]
    if concurrency == 1:
        assert statuses == [OK, OK, FAILED, FAILED, OK]
    else:  # provider, key; then the three rate creates side by side: any two meet the 503
        assert statuses[:2] == [OK, OK] and sorted(statuses[2:]) == [FAILED, FAILED, OK]
    assert all("503" in r.message and "re-read" in r.message for r in report.failed)

    # an update (PUT, idempotent) rides out a 503 burst by retrying
    hub.clear_faults()
    (made_it,) = [r.item.name for r in report.results
                  if r.item.kind is ItemKind.RATE and r.status is OK]  # fmt: skip
    rate = store.find_rate("openai", made_it, "chatCompletion")  # o3-mini one at a time
    store.update_rate(rate.id, rate.version, output_rate=rate.output_rate * 2)
    puts = hub.request_count(method="PUT")
    hub.set_faults(status={"code": 503, "count": 2, "method": "PUT"})
    report = apply(plan(store, client), store, client, dry_run=False, concurrency=concurrency)
    assert sorted((r.item.action.value, r.status.value) for r in report.results) == [
        ("create", "ok"), ("create", "ok"), ("update", "ok"),
    ]  # fmt: skip
    assert hub.request_count(method="PUT") - puts == 3

    # a slow hub: the create times out, the hub applies it later — no duplicate after.
    # The hub holds the POST until released: it times out however loaded the machine is,
    # and the client's other calls get a timeout no loaded machine comes near.
    hub.clear_faults()
    store.create_rate(priced_spec("openai", "gpt-4.1", "0.000002", "0.000008"))
    hub.set_faults(hold={"count": 1, "method": "POST"})
    with hub.client(timeout=5.0, retries=0) as impatient:
        slow = apply(
            plan(store, impatient), store, impatient, dry_run=False, concurrency=concurrency
        )
    (timed_out,) = [r for r in slow.results if r.item.name == "gpt-4.1"]
    assert timed_out.status is FAILED and "timed out" in timed_out.message
    hub.release()
    key = ("openai", "gpt-4.1", "chatCompletion")
    deadline = time.monotonic() + 20
    while hub_rates(client)[key] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting for the late write to land, not measuring anything
    assert apply(plan(store, client), store, client, dry_run=False).complete
    _assert_hub_is_the_store(client, store)


@pytest.mark.hub_needs("switches")
@pytest.mark.parametrize(("concurrency", "dropped"), [(1, 1), (8, 2)])
def test_a_create_whose_answer_was_lost_is_found_by_re_reading_the_hub(
    hub: HubHandle, client: HubClient, store: Store, concurrency: int, dropped: int
) -> None:
    seed_store(store, ("openai",))
    # the hub applies rate creates, then drops the connection before answering
    hub.set_faults(drop={"count": dropped, "after_apply": True, "method": "POST",
                         "path": "/api/ai-providers/*/model-rates"})  # fmt: skip
    report = apply(plan(store, client), store, client, dry_run=False, concurrency=concurrency)
    assert report.complete
    landed = [r for r in report.results if "landed" in r.message]
    assert len(landed) == dropped
    if concurrency == 1:
        assert landed[0].item.target == "openai/gpt-4o (chatCompletion)"
    assert all("it landed although the call failed" in r.message for r in landed)
    assert hub.request_count("/api/ai-providers/*/model-rates", "POST") == 3  # never re-sent
    _assert_hub_is_the_store(client, store)
    for result in landed:
        push = store.history(model=result.item.name, limit=1)[0]
        assert push.change_type == ChangeType.HUB_PUSH.value  # recorded like any other push


@pytest.mark.hub_needs("switches")
def test_an_unreachable_hub_fails_every_item_without_raising(hub: HubHandle, store: Store) -> None:
    seed_store(store)
    with hub.client(retries=0) as client:
        p = plan(store, client)
        hub.kill()
        report = apply(p, store, client, dry_run=False)
    assert {r.status for r in report.results} == {FAILED}
    assert "could not read the hub before applying" in report.results[0].message
    assert not report.complete


# --- a plan applied later ---------------------------------------------------------------------


@pytest.mark.hub_needs("fake_keys")
def test_a_saved_plan_applied_late_skips_what_changed_since(
    hub: HubHandle, client: HubClient, store: Store
) -> None:
    seed_store(store, ("openai",))
    assert apply(plan(store, client), store, client, dry_run=False).complete
    for model in ("gpt-4o", "gpt-4o-mini", "o3-mini"):
        rate = store.find_rate("openai", model, "chatCompletion")
        store.update_rate(rate.id, rate.version, output_rate=rate.output_rate * 2)
    saved = Plan.from_json(plan(store, client).to_json())
    assert len(saved.items) == 3
    # meanwhile someone edits gpt-4o on the hub, and gpt-4o-mini again locally
    hub_gpt4o = pull(client).rate("openai", "gpt-4o", "chatCompletion")
    assert hub_gpt4o is not None
    client.update_rate(hub_gpt4o.provider_id, hub_gpt4o.id, output_rate="0.5")
    mini = store.find_rate("openai", "gpt-4o-mini", "chatCompletion")
    store.update_rate(mini.id, mini.version, description="edited")
    report = apply(saved, store, client, dry_run=False)
    results = {r.item.name: r for r in report.results}
    assert results["gpt-4o"].status is SKIPPED
    assert "changed on the hub since the plan (outputRate is now 0.5)" in results["gpt-4o"].message
    assert results["gpt-4o-mini"].status is SKIPPED
    assert "changed locally since the plan" in results["gpt-4o-mini"].message
    assert results["o3-mini"].status is OK
    with pytest.raises(ValidationError, match="made against"):
        apply(dataclasses.replace(saved, hub="http://127.0.0.1:9"), store, client)


# --- bulk updates and the hub's own arithmetic ------------------------------------------------


@pytest.mark.hub_needs("switches", "counts the hub's requests")
def test_a_local_bulk_update_reaches_the_hub_only_when_its_arithmetic_agrees(
    hub: HubHandle, client: HubClient, store: Store
) -> None:
    seed_store(store)
    assert apply(plan(store, client), store, client, dry_run=False).complete
    preview = store.preview_bulk_update(40, PRICE)
    store.apply_bulk_update(preview, reason="margin 40 %")
    store.create_rate(priced_spec("openai", "gpt-4.1", "0.000002", "0.000008"))  # at 25 %
    new = store.find_rate("openai", "gpt-4.1", "chatCompletion")
    store.update_rate(new.id, new.version, input_rate=margin_rate("0.000002", 40, PRICE),
                      output_rate=margin_rate("0.000008", 40, PRICE))  # fmt: skip
    p = plan(store, client)
    assert sorted((i.action.value, i.name) for i in p.items) == sorted(
        [("update", m) for _, m, _ in store_rate_keys(store) if m != "gpt-4.1"]
        + [("create", "gpt-4.1")]
    )
    check = verify_against_hub_arithmetic(p, client, 40, PRICE)
    assert (check.ok, check.compared, check.agreed) == (True, 6, 6)
    assert verify_against_hub_arithmetic(preview, client).agreed == 5
    puts = hub.request_count(method="PUT")
    report = apply(p, store, client, dry_run=False, cross_check=(40, PRICE))
    assert report.complete and report.cross_check is not None and report.cross_check.agreed == 6
    assert hub.request_count(method="PUT") - puts == 5  # one update per rate, no margin mode
    assert hub.request_count("/api/ai-providers/bulk-rate-update") == 3  # the 3 dry runs
    _assert_hub_is_the_store(client, store)

    # tamper with one rate locally by one unit in the 10th place: refused, nothing sent
    rate = store.find_rate("openai", "gpt-4o", "chatCompletion")
    store.update_rate(rate.id, rate.version, input_rate=rate.input_rate + Decimal("1E-10"))
    tampered = plan(store, client)
    with pytest.raises(ArithmeticMismatchError) as err:
        apply(tampered, store, client, dry_run=False, cross_check=(40, PRICE))
    assert err.value.mismatches == (
        ArithmeticMismatch("openai", "gpt-4o", RateType.CHAT_COMPLETION, "input",
                           rate.input_rate + Decimal("1E-10"), rate.input_rate),
    )  # fmt: skip
    assert "gpt-4o (chatCompletion) input: hubkit 0.0035000001 ≠ hub 0.0035" in str(err.value)
    assert hub.request_count(method="PUT") - puts == 5
    # the wrong margin is refused too
    with pytest.raises(ArithmeticMismatchError, match="disagree on 1 of 1"):
        verify_against_hub_arithmetic(tampered, client, 41, PRICE)


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.hub_needs("fake_keys")
def test_a_rotated_key_is_pushed_again_and_no_key_leaks_anywhere(
    hub: HubHandle, client: HubClient, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seed_store(store)
    first = apply(plan(store, client), store, client, dry_run=False)
    assert first.complete and plan(store, client).items == ()
    store.rotate_credential("openai", "main", NEW_KEY)
    p = plan(store, client)
    (item,) = p.items
    assert (item.kind, item.action, item.target) == (
        ItemKind.CREDENTIAL, Action.REPUSH, "openai/main",
    )  # fmt: skip
    assert item.reason.startswith("rotated locally at")
    assert item.changes == (FieldChange("key", mask_secret(KEY), mask_secret(NEW_KEY)),)
    report = apply(p, store, client, dry_run=False)
    assert report.complete
    assert pull(client).credential("openai", "main").display_text == mask_secret(NEW_KEY)
    assert hub_credentials(client)[("openai", "main")] == 1
    assert plan(store, client).items == ()

    # a key the hub refuses: its item fails with the hub's reason, redacted
    store.add_credential("anthropic", "bad", BAD_KEY)
    bad = apply(plan(store, client), store, client, dry_run=False)
    (failed,) = bad.failed
    assert failed.item.target == "anthropic/bad" and "Incorrect API key" in failed.message

    folders = [p.save(), first.save(), report.save(), bad.save()]
    texts = [
        caplog.text,
        *(r.getMessage() for r in caplog.records),
        *(str(r.exc_info) for r in caplog.records),
        *(files_text(f) for f in folders),
        p.to_json(), report.to_json(), bad.to_json(),
        report.to_frame().to_csv(), bad.to_frame().to_csv(), repr(report), repr(bad),
        report._repr_html_(), p._repr_html_(),
    ]  # fmt: skip
    assert any("POST" in r.getMessage() for r in caplog.records)  # the client did log
    assert any(r.name == "hubkit.hub.apply" for r in caplog.records)  # and so did apply
    assert_no_secret("\n".join(texts), "logs, plans or reports")


@pytest.mark.hub_needs("switches")
def test_a_key_rotated_while_it_is_being_pushed_is_pushed_again_next_time(
    hub: HubHandle, client: HubClient, store: Store
) -> None:
    seed_store(store, ("openai",))
    assert apply(plan(store, client), store, client, dry_run=False).complete
    store.rotate_credential("openai", "main", NEW_KEY)
    pushed_before = store.list_credentials()[0].last_pushed_at
    # the hub holds the PUT until the operator has rotated the key once more: the
    # rotation lands while the push is in flight, by construction rather than by timing
    hub.set_faults(hold={"count": 1, "method": "PUT"})

    def rotate_when_the_put_arrives() -> None:
        try:
            hub.wait_for_request("/api/ai-providers/*/credentials/*", "PUT")
            store.rotate_credential("openai", "main", KEY)
        finally:
            hub.release()

    rotator = threading.Thread(target=rotate_when_the_put_arrives)
    rotator.start()
    with hub.client(timeout=60) as patient:  # it waits for the rotator, not for a timer
        report = apply(plan(store, patient), store, patient, dry_run=False)
    rotator.join()
    (result,) = report.results
    assert result.status is OK and "rotated again locally meanwhile" in result.message
    assert store.list_credentials()[0].last_pushed_at == pushed_before  # not marked pushed
    again = plan(store, client)
    assert [(i.action, i.target) for i in again.items] == [(Action.REPUSH, "openai/main")]
    assert apply(again, store, client, dry_run=False).complete
    assert pull(client).credential("openai", "main").display_text == mask_secret(KEY)


# --- several in flight ------------------------------------------------------------------------


class _Recording(httpx.BaseTransport):
    """A real HTTP transport that notes when each request left and when a 429 came back."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.sent: list[float] = []
        self.limited: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent.append(time.monotonic())
        response = self._inner.handle_request(request)
        if response.status_code == 429:
            with self._lock:
                self.limited.append(time.monotonic())
        return response

    def close(self) -> None:
        self._inner.close()


@pytest.mark.hub_needs("switches", "a 429 from the fault switches")
def test_a_429_pauses_every_worker_until_retry_after_then_all_finish(
    hub: HubHandle, client: HubClient, store: Store
) -> None:
    seed_store(store)
    seed_more_rates(store, 30)
    assert apply(plan(store, client), store, client, dry_run=False).complete
    for rate in store.list_rates():
        store.update_rate(rate.id, rate.version, output_rate=rate.output_rate * 2)
    p = plan(store, client)
    assert len(p.items) == 35 and {i.action for i in p.items} == {Action.UPDATE}
    hub.set_faults(status={"code": 429, "count": 1, "method": "PUT", "retryAfter": 2})
    transport = _Recording()
    with hub.client(transport=transport, sleep=time.sleep, max_wait=30) as patient:
        report = apply(p, store, patient, dry_run=False, concurrency=8)
    assert report.complete, report.to_frame().to_string()
    (limited_at,) = transport.limited
    # Requests already on their way when the 429 came back may still arrive; after that,
    # nobody sends until Retry-After has passed (0.5 s covers a worker descheduled between
    # its pause check and its send on a loaded machine), then everyone goes on.
    quiet = [t for t in transport.sent if limited_at + 0.5 < t < limited_at + 2.0]
    assert quiet == []
    assert sum(t >= limited_at + 2.0 for t in transport.sent) >= 8
    assert hub.request_count(method="PUT") == 35 + 1  # each update once, the limited one twice
    _assert_hub_is_the_store(client, store)


@pytest.mark.hub_needs("switches", "counts the hub's requests")
def test_a_pause_longer_than_max_wait_fails_the_call_without_sending_it(
    hub: HubHandle, client: HubClient
) -> None:
    before = hub.request_count()
    client._engine.pause.hold(90)  # as if another worker had been told "retry in 90 s"
    with pytest.raises(HubRateLimitedError, match="rate limiting.*HUBKIT_HUB_MAX_WAIT"):
        client.list_providers()
    assert hub.request_count() == before


@pytest.mark.hub_needs("switches", "counts the hub's requests")
def test_concurrency_out_of_range_is_refused_before_anything_is_read(
    hub: HubHandle, client: HubClient, store: Store
) -> None:
    seed_store(store)
    p = plan(store, client)
    before = hub.request_count()
    for bad in (0, 33, 2.5, True, "8"):
        with pytest.raises(ValidationError, match="concurrency must be a whole number from 1"):
            apply(p, store, client, dry_run=False, concurrency=bad)  # type: ignore[arg-type]
    assert hub.request_count() == before
