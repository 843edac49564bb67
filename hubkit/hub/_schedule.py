"""Run a plan's items with up to N in flight, never before what they depend on.

An item waits for every earlier item of the same *key* (its own target: a create before its
update) and of its *parent* (a provider before its credentials and rates). With N = 1 the
items run one by one in plan order, on the caller's thread, exactly as before concurrency.

Callbacks (``on_done``) always run on the caller's thread, in completion order, so a
progress bar or a widget is never touched from a worker. ``stop_after(result)`` is asked
after each completion; once it says stop, nothing new starts (what is in flight finishes)
and every item not started is handed to ``not_started`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def dependencies(
    items: Sequence[_Item],
    key: Callable[[_Item], Hashable],
    parent: Callable[[_Item], Hashable | None],
) -> list[set[int]]:
    """For each item, the indexes of the earlier items it must wait for."""
    last: dict[Hashable, int] = {}
    needs: list[set[int]] = []
    for index, item in enumerate(items):
        own = key(item)
        wanted = {last[k] for k in (own, parent(item)) if k is not None and k in last}
        needs.append(wanted)
        last[own] = index
    return needs


class Scheduler(Generic[_Item, _Result]):
    """One run over ``items``: ``run(item)`` does the work (on a worker when N > 1)."""

    def __init__(
        self,
        items: Sequence[_Item],
        needs: Sequence[set[int]],
        *,
        run: Callable[[_Item], _Result],
        not_started: Callable[[_Item], _Result],
        on_done: Callable[[int, _Result], None],
        stop_after: Callable[[_Result], bool],
        concurrency: int,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be ≥ 1")
        self._items = items
        self._needs = [set(n) for n in needs]
        self._run = run
        self._not_started = not_started
        self._on_done = on_done
        self._stop_after = stop_after
        self._concurrency = concurrency
        self._dependants: list[list[int]] = [[] for _ in items]
        for index, wanted in enumerate(self._needs):
            for earlier in wanted:
                self._dependants[earlier].append(index)

    def results(self) -> list[_Result]:
        """Every item's result, in plan order."""
        out: dict[int, _Result] = {}
        if self._concurrency == 1:
            self._serial(out)
        else:
            self._concurrent(out)
        return [out[i] for i in range(len(self._items))]

    def _finish(self, out: dict[int, _Result], index: int, result: _Result) -> bool:
        out[index] = result
        self._on_done(index, result)
        return self._stop_after(result)

    def _serial(self, out: dict[int, _Result]) -> None:
        stopped = False
        for index, item in enumerate(self._items):
            if stopped:
                self._finish(out, index, self._not_started(item))
            else:
                stopped = self._finish(out, index, self._run(item))

    def _concurrent(self, out: dict[int, _Result]) -> None:
        waiting = [len(n) for n in self._needs]
        ready = [i for i, n in enumerate(waiting) if n == 0]  # kept in plan order
        in_flight: dict[Future[_Result], int] = {}
        stopped = False
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="hubkit-apply") as pool:
            while ready or in_flight:
                while ready and not stopped and len(in_flight) < self._concurrency:
                    index = ready.pop(0)
                    in_flight[pool.submit(self._run, self._items[index])] = index
                if not in_flight:
                    break  # stopped: the rest are handed to not_started below
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                # plan order among those that finished together: reproducible reports
                for future in sorted(done, key=in_flight.__getitem__):
                    index = in_flight.pop(future)
                    stopped = self._finish(out, index, future.result()) or stopped
                    for later in self._dependants[index]:
                        waiting[later] -= 1
                        if waiting[later] == 0:
                            ready.append(later)
                ready.sort()
        for index, item in enumerate(self._items):
            if index not in out:
                self._finish(out, index, self._not_started(item))
