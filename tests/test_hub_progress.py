"""What a push says while it runs: items done / total, rate, time left, failures."""

from __future__ import annotations

import io

from hubkit.hub.apply import ItemResult, ItemStatus
from hubkit.hub.plan import Action, ItemKind, PlanItem
from hubkit.hub.progress import PushProgress


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _result(status: ItemStatus) -> ItemResult:
    item = PlanItem(ItemKind.RATE, Action.UPDATE, "openai", "m", "chatCompletion")
    return ItemResult(item, status, "")


def test_rate_time_left_and_failures_follow_the_items() -> None:
    clock = _Clock()
    push = PushProgress(clock=clock)
    push(0, 300)
    assert push.text() == "0/300 items"  # nothing done yet: no rate to guess from
    clock.now += 10
    push(100, 300)
    push.result(_result(ItemStatus.OK))
    push.result(_result(ItemStatus.FAILED))
    assert push.rate == 10.0 and push.seconds_left == 20.0
    assert push.text() == "100/300 items · 10.0 items/s · about 20 s left · 1 failed"
    clock.now += 190
    push(250, 300)
    assert push.text().startswith("250/300 items · 1.2 items/s · about 40 s left")
    clock.now += 400
    push(300, 300)
    assert push.text() == "300/300 items · 0.5 items/s · done · 1 failed"


def test_printing_says_it_at_most_once_a_second_and_always_at_the_end() -> None:
    clock = _Clock()
    out = io.StringIO()
    report = PushProgress(clock=clock).printing(out)
    report(0, 5)
    for done in range(1, 5):  # at 0.4 s printed; 0.8 and 1.2 s too soon; 1.6 s printed
        clock.now += 0.4
        report(done, 5)
    clock.now += 0.1
    report(5, 5)  # the end is always said
    lines = out.getvalue().splitlines()
    assert [line.split(" ")[1] for line in lines] == ["1/5", "4/5", "5/5"]
    assert all(line.startswith("progress: ") for line in lines)
