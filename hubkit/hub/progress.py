"""How a push is going, in words: items done / total, rate, time left, failures.

One tracker for the CLI (``hub apply`` prints it to stderr as it goes) and the 05 app (a
line beside its progress bar). :func:`hubkit.hub.apply.apply` feeds it through its
``progress`` and ``on_result`` hooks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from hubkit.hub.apply import ItemResult, ItemStatus


@dataclass
class PushProgress:
    """Counts of a push in progress; :meth:`text` says them."""

    clock: Callable[[], float] = time.monotonic
    done: int = 0
    total: int = 0
    failed: int = 0
    _started: float | None = field(default=None, repr=False)

    def __call__(self, done: int, total: int) -> None:
        """The ``progress(done, total)`` hook of :func:`~hubkit.hub.apply.apply`."""
        if self._started is None:
            self._started = self.clock()
        self.done, self.total = done, total

    def result(self, result: ItemResult) -> None:
        """The ``on_result`` hook: counts the failed items."""
        if result.status is ItemStatus.FAILED:
            self.failed += 1

    @property
    def elapsed(self) -> float:
        return 0.0 if self._started is None else max(self.clock() - self._started, 0.0)

    @property
    def rate(self) -> float | None:
        """Items per second so far (None before the first item is done)."""
        return self.done / self.elapsed if self.done and self.elapsed > 0 else None

    @property
    def seconds_left(self) -> float | None:
        rate = self.rate
        return None if rate is None else (self.total - self.done) / rate

    def printing(self, stream: TextIO, every: float = 1.0) -> Callable[[int, int], None]:
        """A ``progress`` hook that also prints :meth:`text` to ``stream``: at most once a
        second while items go, and once at the end (a terminal or a cron log alike)."""
        last = [float("-inf")]

        def report(done: int, total: int) -> None:
            self(done, total)
            now = self.clock()
            if done and (done >= total or now - last[0] >= every):
                last[0] = now
                print(f"progress: {self.text()}", file=stream, flush=True)

        return report

    def text(self) -> str:
        parts = [f"{self.done:,}/{self.total:,} items"]
        rate, left = self.rate, self.seconds_left
        if rate is not None and left is not None:
            parts.append(f"{rate:,.1f} items/s")
            parts.append("done" if self.done >= self.total else f"about {_duration(left)} left")
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        return " · ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(seconds, 1):.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s"
