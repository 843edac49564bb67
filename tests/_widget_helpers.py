"""Helpers for the headless widget tests: a seeded store, secret scans over widget state."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as widgets
from ipywidgets.widgets.widget import _instances

from hubkit.store import Store
from hubkit.widgets import seed_sample_data
from hubkit.widgets._common import iter_widgets


def seed_sample(store: Store) -> None:
    """The workbench's sample data (providers, a credential, rates); the store was empty."""
    assert seed_sample_data(store) is True


def seeded_store(url: str) -> Store:
    store = Store.open(url)
    seed_sample(store)
    return store


def live_widget_count() -> int:
    return len(_instances)


def all_widget_states(root: widgets.Widget | None = None) -> Iterator[str]:
    """JSON of ``get_state()`` of every live widget (and of every widget under ``root``)."""
    seen = list(_instances.values())
    if root is not None:
        seen.extend(iter_widgets(root))
    for w in seen:
        yield json.dumps(w.get_state(), default=str)


def assert_secret_absent(secret: str, *, root: widgets.Widget | None = None, state: Any = None):
    """No widget's synced state, and no attribute of the app state, holds ``secret``."""
    hits = [s[:200] for s in all_widget_states(root) if secret in s]
    assert not hits, f"secret found in widget state: {hits[:3]}"
    if state is not None:
        text = repr(vars(state))
        assert secret not in text, "secret found on the app state"
        if state.message is not None:
            assert secret not in state.message.text


def close_all_widgets() -> None:
    for w in list(_instances.values()):
        w.close()


class FakeLoop:
    """``later`` for tests: callbacks wait until :meth:`advance` or :meth:`run_one` runs them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waiting: list[_Handle] = []

    def later(self, delay: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(self.now + delay, callback)
        self.waiting.append(handle)
        return handle

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, running what falls due (one callback at a time, in order)."""
        end = self.now + seconds
        while True:
            due = [h for h in self.waiting if not h.cancelled and h.when <= end]
            if not due:
                break
            first = min(due, key=lambda h: h.when)
            self.waiting.remove(first)
            self.now = max(self.now, first.when)
            first.callback()
        self.now = end
        self.waiting = [h for h in self.waiting if not h.cancelled]

    def run_one(self) -> bool:
        """Run the next callback due (the loop reading one more message in between)."""
        live = sorted((h for h in self.waiting if not h.cancelled), key=lambda h: h.when)
        if not live:
            return False
        self.waiting.remove(live[0])
        self.now = max(self.now, live[0].when)
        live[0].callback()
        return True


class _Handle:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True
