"""The scheduler under ``apply``: N in flight, dependencies first, callbacks on the caller.

Real threads and real waits (events, not timers): a worker blocks until the test lets it
go, so "at most N at once" and "never before its provider" are observed, not inferred.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.hub._group_commit import GroupCommit
from hubkit.hub._schedule import Scheduler, dependencies

# Threads and their order: `make soak` runs these under CPU load.
pytestmark = pytest.mark.soak

# (key, parent) per item: "p:x" is provider x, its children name it as parent
Item = tuple[str, str | None]


def _needs(items: list[Item]) -> list[set[int]]:
    return dependencies(items, key=lambda i: i[0], parent=lambda i: i[1])


def test_an_item_waits_for_its_provider_and_earlier_items_on_the_same_target() -> None:
    items: list[Item] = [
        ("p:a", None), ("p:b", None), ("c:a/main", "p:a"), ("r:a/m1", "p:a"),
        ("r:b/m1", "p:b"), ("r:a/m1", "p:a"), ("r:c/m1", "p:c"),
    ]  # fmt: skip
    assert _needs(items) == [set(), set(), {0}, {0}, {1}, {0, 3}, set()]


class _Recorder:
    """``run`` blocks each item until released; records order, overlap and threads."""

    def __init__(self, gate: Callable[[int], threading.Event] | None = None) -> None:
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.finished: list[int] = []
        self.events: list[tuple[str, int]] = []  # ("start" | "end", item), as they happened
        self.running = 0
        self.most = 0
        self.gate = gate
        self.callback_threads: set[int] = set()

    def run(self, index: int) -> str:
        with self.lock:
            self.started.append(index)
            self.events.append(("start", index))
            self.running += 1
            self.most = max(self.most, self.running)
        if self.gate is not None:
            assert self.gate(index).wait(10), f"item {index} was never released"
        with self.lock:
            self.running -= 1
            self.finished.append(index)
            self.events.append(("end", index))
        return f"done {index}"

    def before(self, earlier: int, later: int) -> bool:
        """``earlier`` had finished when ``later`` started."""
        return self.events.index(("end", earlier)) < self.events.index(("start", later))

    def on_done(self, _index: int, _result: str) -> None:
        self.callback_threads.add(threading.get_ident())


def _schedule(
    n: int, needs: list[set[int]], rec: _Recorder, concurrency: int, stop: int | None = None
) -> list[str]:
    finished: list[str] = []

    def stop_after(result: str) -> bool:
        finished.append(result)
        return stop is not None and len(finished) >= stop

    return Scheduler(
        list(range(n)),
        needs,
        run=rec.run,
        not_started=lambda i: f"not started {i}",
        on_done=rec.on_done,
        stop_after=stop_after,
        concurrency=concurrency,
    ).results()


def test_at_most_n_run_at_once_and_n_do_when_they_can() -> None:
    events = [threading.Event() for _ in range(20)]
    rec = _Recorder(gate=lambda i: events[i])

    def release_when_eight_wait() -> None:
        # lets items go only once 8 are in flight: the pool must fill up to reach it
        for _ in range(3):
            while True:
                with rec.lock:
                    if rec.running == min(8, 20 - len(rec.finished)):
                        waiting = [i for i in rec.started if i not in rec.finished]
                        break
                threading.Event().wait(0.001)
            for i in waiting:
                events[i].set()
        for e in events:
            e.set()

    helper = threading.Thread(target=release_when_eight_wait)
    helper.start()
    results = _schedule(20, [set() for _ in range(20)], rec, concurrency=8)
    helper.join()
    assert rec.most == 8
    assert results == [f"done {i}" for i in range(20)]  # plan order, whatever finished first
    assert rec.callback_threads == {threading.get_ident()}  # never on a worker


def test_nothing_starts_before_what_it_depends_on_has_finished() -> None:
    # 0 is a provider the others need; 0 is held until the test sees nobody else started
    provider_done = threading.Event()
    rec = _Recorder(gate=lambda i: provider_done if i == 0 else _set())
    while_held: list[int] = []

    def let_the_provider_go() -> None:
        while not rec.started:
            threading.Event().wait(0.001)
        threading.Event().wait(0.05)  # time for a wrongly scheduled child to start
        with rec.lock:
            while_held.extend(rec.started)
        provider_done.set()

    helper = threading.Thread(target=let_the_provider_go)
    helper.start()
    _schedule(6, [set(), {0}, {0}, {0}, {0, 1}, {0}], rec, concurrency=4)
    helper.join()
    assert while_held == [0]
    assert rec.started[0] == 0 and rec.finished[0] == 0
    assert all(rec.before(0, i) for i in range(1, 6)) and rec.before(1, 4)


def _set() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@pytest.mark.parametrize("concurrency", [1, 4])
def test_once_stop_says_so_nothing_new_starts_and_the_rest_are_not_started(
    concurrency: int,
) -> None:
    rec = _Recorder()
    results = _schedule(12, [set() for _ in range(12)], rec, concurrency=concurrency, stop=3)
    ran = [r for r in results if r.startswith("done")]
    assert 3 <= len(ran) <= 3 + concurrency - 1  # what was in flight at the stop finished
    assert results[len(ran) :] == [f"not started {i}" for i in range(len(ran), 12)]


def test_one_at_a_time_is_plan_order_on_the_callers_thread() -> None:
    rec = _Recorder()
    threads: set[int] = set()
    original = rec.run

    def run(index: int) -> str:
        threads.add(threading.get_ident())
        return original(index)

    rec.run = run  # type: ignore[method-assign]
    _schedule(5, [set(), {0}, set(), {1}, set()], rec, concurrency=1)
    assert rec.started == [0, 1, 2, 3, 4] and threads == {threading.get_ident()}


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(
        st.tuples(st.sampled_from("abc"), st.sampled_from(["p", "c1", "r1", "r2"])),
        max_size=25,
    ),
    concurrency=st.integers(1, 6),
)
def test_any_plan_runs_every_item_once_after_its_dependencies(
    plan: list[tuple[str, str]], concurrency: int
) -> None:
    items: list[Item] = [
        (f"{kind}:{prov}", None if kind == "p" else f"p:{prov}") for prov, kind in plan
    ]
    needs = _needs(items)
    rec = _Recorder()
    results = _schedule(len(items), needs, rec, concurrency=concurrency)
    assert sorted(rec.started) == list(range(len(items)))
    assert results == [f"done {i}" for i in range(len(items))]
    for index, wanted in enumerate(needs):
        for earlier in wanted:
            assert rec.before(earlier, index)


def test_a_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        _schedule(1, [set()], _Recorder(), concurrency=0)


# --- rows that finish together share one commit -------------------------------------------------


def test_rows_queued_while_one_is_written_share_the_next_write_and_each_waits_for_its_own() -> None:
    first_writing = threading.Event()
    let_first_finish = threading.Event()
    writes: list[list[int]] = []

    def write(rows: Sequence[int]) -> None:
        writes.append(list(rows))
        if rows == [0]:
            first_writing.set()
            assert let_first_finish.wait(10)

    log: GroupCommit[int] = GroupCommit(write)
    returned: dict[int, list[list[int]]] = {}

    def commit(row: int) -> None:
        assert log.commit(row) is None
        returned[row] = [list(w) for w in writes]  # what was written when it returned

    leader = threading.Thread(target=commit, args=(0,))
    leader.start()
    assert first_writing.wait(10)
    followers = [threading.Thread(target=commit, args=(i,)) for i in range(1, 6)]
    for t in followers:
        t.start()
    while len(log._pending) < 5:  # all five queued behind the first write
        threading.Event().wait(0.001)
    assert 1 not in returned  # nobody returned before its row was written
    let_first_finish.set()
    for t in (leader, *followers):
        t.join()
    assert writes[0] == [0] and sorted(writes[1]) == [1, 2, 3, 4, 5] and len(writes) == 2
    assert all(any(row in w for w in returned[row]) for row in range(6))


def test_a_failed_write_is_reported_to_the_rows_it_carried_and_not_to_later_ones() -> None:
    def write(rows: Sequence[int]) -> None:
        if 13 in rows:
            raise ValueError("row 13 refused")

    log: GroupCommit[int] = GroupCommit(write)
    assert log.commit(1) is None
    error = log.commit(13)
    assert isinstance(error, ValueError) and "13" in str(error)
    assert log.commit(2) is None
