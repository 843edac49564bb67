"""Coalescing: a burst of inputs runs the slow work once, after the person pauses.

A keystroke in the bulk app's margin field repaints its summary at once; the exact preview
and the 10,000-row grid wait in a :class:`Debouncer` until the typing stops. The work is
split in steps with a short gap between them: in the gap the kernel's loop reads the next
message, so a keystroke arriving meanwhile is answered after one step, not after all of
them, and it drops the steps left (they were for the inputs before it). The gap is not 0:
ipykernel hands a message from its shell thread to the main loop over a socket and a few
loop turns, and steps chained with no delay would win every one of those turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


#: ``later(delay_s, callback)``: call ``callback`` after ``delay_s``; a handle to cancel it,
#: or None when it ran already
Later = Callable[[float, Callable[[], None]], Cancellable | None]


def on_running_loop(delay: float, callback: Callable[[], None]) -> Cancellable | None:
    """The kernel's event loop calls back later; with no loop running (a script, a test
    that sets a widget value) there is nobody to wait for: run it now."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        callback()
        return None
    return loop.call_later(delay, callback)


#: the loop's time to read a message between two steps (seconds)
STEP_GAP_S = 0.03


class Debouncer:
    """``poke()`` (re)starts the wait; ``delay`` s after the last poke the steps run in
    order, each in its own loop callback, ``gap`` s apart. A poke stops the steps not yet
    run."""

    def __init__(
        self,
        steps: Sequence[Callable[[], None]],
        delay: float,
        *,
        later: Later = on_running_loop,
        gap: float = STEP_GAP_S,
    ) -> None:
        self.steps = tuple(steps)
        self.delay = delay
        self.gap = gap
        self._later = later
        self._generation = 0  # pokes so far
        self._done = 0  # the generation whose steps all ran
        self._handle: Cancellable | None = None

    @property
    def pending(self) -> bool:
        """Steps are still to run for the last poke."""
        return self._done != self._generation

    def poke(self) -> None:
        """The inputs changed: run the steps once they stop changing for ``delay`` s."""
        self.cancel()
        self._generation += 1
        self._schedule(self.delay, self._generation, 0)

    def cancel(self) -> None:
        """Drop the steps not yet run (the caller did their work another way)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._done = self._generation

    def _schedule(self, delay: float, generation: int, index: int) -> None:
        handle = self._later(delay, partial(self._step, generation, index))
        if generation == self._generation and self._done != generation:
            self._handle = handle  # (a handle that ran at once needs no cancelling)

    def _step(self, generation: int, index: int) -> None:
        if generation != self._generation:
            return  # a later poke took over
        self._handle = None
        try:
            self.steps[index]()
        finally:
            if generation == self._generation:
                if index + 1 < len(self.steps):
                    self._schedule(self.gap, generation, index + 1)
                else:
                    self._done = generation
