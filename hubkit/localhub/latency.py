"""A distant hub on loopback: every request waits a fixed delay (plus jitter) first.

The wait is ``asyncio.sleep`` in the server's event loop, so requests in flight wait side
by side, as they would over a network with that round trip; one at a time, they add up.
Tests and ``benchmarks/bench_hub_sync.py`` use it to show what concurrency buys.
"""

from __future__ import annotations

import asyncio
import random

from starlette.types import ASGIApp, Receive, Scope, Send


class LatencyMiddleware:
    """Delay each HTTP request by ``delay_ms`` plus a uniform 0…``jitter_ms``."""

    def __init__(self, app: ASGIApp, delay_ms: float, jitter_ms: float = 0, seed: int = 0):
        if delay_ms < 0 or jitter_ms < 0:
            raise ValueError("latency and jitter must be ≥ 0 ms")
        self.app = app
        self.delay_s = delay_ms / 1000
        self.jitter_s = jitter_ms / 1000
        self._random = random.Random(seed)  # noqa: S311 (a simulated network, not a secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(self.delay_s + self._random.uniform(0, self.jitter_s))
        await self.app(scope, receive, send)
