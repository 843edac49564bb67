"""The debouncer behind the bulk app's grid: a burst of inputs runs the steps once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from _widget_helpers import FakeLoop

from hubkit.widgets._debounce import STEP_GAP_S, Debouncer, on_running_loop


def _recorder() -> tuple[list[str], list[Callable[[], None]]]:
    ran: list[str] = []
    return ran, [lambda: ran.append("a"), lambda: ran.append("b"), lambda: ran.append("c")]


def test_a_burst_of_pokes_runs_the_steps_once_after_the_pause() -> None:
    loop = FakeLoop()
    ran, steps = _recorder()
    debouncer = Debouncer(steps, 0.4, later=loop.later)
    for _ in range(5):  # typing: 150 ms between keystrokes
        debouncer.poke()
        loop.advance(0.15)
    assert ran == [] and debouncer.pending
    loop.advance(0.26)
    assert ran == ["a"]  # the first step once typing paused for 0.4 s …
    loop.advance(2 * STEP_GAP_S)
    assert ran == ["a", "b", "c"] and not debouncer.pending  # … the others a gap apart
    loop.advance(5)
    assert ran == ["a", "b", "c"]  # nothing more without a poke


def test_a_poke_between_steps_drops_the_rest_and_starts_over() -> None:
    loop = FakeLoop()
    ran, steps = _recorder()
    debouncer = Debouncer(steps, 0.4, later=loop.later)
    debouncer.poke()
    loop.advance(0.39)
    assert ran == []
    loop.run_one()
    loop.run_one()
    assert ran == ["a", "b"]  # the first two steps, one loop callback each
    debouncer.poke()  # a keystroke read between two steps
    loop.advance(0.39)
    assert ran == ["a", "b"]  # the old "c" is dropped; the new round waits for the pause
    loop.advance(1)
    assert ran == ["a", "b", "a", "b", "c"] and not debouncer.pending


def test_cancel_drops_what_is_waiting() -> None:
    loop = FakeLoop()
    ran, steps = _recorder()
    debouncer = Debouncer(steps, 0.4, later=loop.later)
    debouncer.poke()
    debouncer.cancel()
    assert not debouncer.pending
    loop.advance(1)
    assert ran == []


def test_a_step_that_fails_does_not_stop_the_next_rounds() -> None:
    loop = FakeLoop()
    ran: list[str] = []

    def boom() -> None:
        ran.append("boom")
        raise RuntimeError("boom")

    debouncer = Debouncer([boom, lambda: ran.append("after")], 0.1, later=loop.later)
    debouncer.poke()
    try:
        loop.advance(0.1)
    except RuntimeError:
        loop.advance(1)  # the loop logs it and goes on
    assert ran == ["boom", "after"] and not debouncer.pending


def test_without_a_running_loop_the_steps_run_at_once() -> None:
    ran, steps = _recorder()
    debouncer = Debouncer(steps, 10.0)  # on_running_loop: a script or a test has no loop
    debouncer.poke()
    assert ran == ["a", "b", "c"] and not debouncer.pending


def test_in_a_kernel_the_loop_calls_back_after_the_pause() -> None:
    async def typing() -> list[str]:
        ran, steps = _recorder()
        debouncer = Debouncer(steps, 0.05, later=on_running_loop)
        debouncer.poke()
        await asyncio.sleep(0.01)
        debouncer.poke()
        assert ran == [] and debouncer.pending
        for _ in range(100):
            if not debouncer.pending:
                break
            await asyncio.sleep(0.02)
        return ran

    assert asyncio.run(typing()) == ["a", "b", "c"]
