"""Several threads each need a row written before they go on: one writes them all at once.

The first thread to arrive writes its row and whatever others queued meanwhile, in one
call; those that arrive while it writes wait and are written by the next call, together.
Each caller returns only once *its* row is written (or with the error that call raised),
so durability per item is what it was with one commit each — only the commits are shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

_Row = TypeVar("_Row")


class GroupCommit(Generic[_Row]):
    def __init__(self, write: Callable[[Sequence[_Row]], object]) -> None:
        self._write = write
        self._cv = threading.Condition()
        self._pending: list[_Row] = []
        self._queued = 0  # rows ever queued …
        self._done = 0  # … and how many of them a finished call covered
        self._writing = False
        self._errors: list[tuple[int, int, Exception]] = []  # (first, last) rows of a failed call

    def commit(self, row: _Row) -> Exception | None:
        """Write ``row`` (with any others waiting); the error of its call, or None."""
        with self._cv:
            self._pending.append(row)
            self._queued += 1
            mine = self._queued
            while self._done < mine and self._writing:
                self._cv.wait()
            if self._done >= mine:
                return self._error_for(mine)
            self._writing = True
            batch, self._pending = self._pending, []
            first, last = self._done + 1, self._queued
        error: Exception | None = None
        try:
            self._write(batch)
        except Exception as exc:  # handed to every caller whose row was in this call
            error = exc
        with self._cv:
            if error is not None:
                self._errors.append((first, last, error))
            self._done = last
            self._writing = False
            self._cv.notify_all()
        return error

    def _error_for(self, row: int) -> Exception | None:
        return next((e for first, last, e in self._errors if first <= row <= last), None)
