"""Switchable faults and request counters for the local hub (test use only).

Mounted only when asked for: ``python -m hubkit.localhub --test-faults`` (what the test
suite's ``local_hub`` fixture runs), ``create_app(..., test_faults=True)`` or
``start_local_hub(test_faults=True)``. Without it there is no ``/__test__`` route at all
and no middleware: the hub a person starts with ``hub serve-local`` cannot be wiped or
made to fail by a request. The client package (:mod:`hubkit.hub`) never imports this.

Routes (same bearer token as the admin API): ``POST /__test__/faults`` sets the faults
below, ``GET /__test__/faults`` shows them, ``POST /__test__/release`` lets requests held
by the ``hold`` fault go on, ``POST /__test__/reset`` wipes all data, faults, counters and
rate limits, ``GET /__test__/stats`` counts requests.

``POST /__test__/faults``: the body *replaces* the fault set, ``{}`` clears it. Every key
is optional::

    {
      "delay":  {"seconds": 2.0, "count": 1, "path": "/api/ai-providers*", "method": "GET"},
      "hold":   {"count": 1, "path": "...", "method": "PUT", "seconds": 60},
      "status": {"code": 503, "count": 2, "path": "...", "method": "POST",
                 "retryAfter": 1, "retryAfterHeader": false},
      "drop":   {"count": 1, "afterApply": true, "path": "...", "method": "..."},
      "failAfterWrites": {"writes": 3, "code": 500, "count": null},
      "crash":  {"afterWrites": 3, "afterApply": false},
      "marginFailModels": ["gpt-4o"]
    }

- ``delay``: sleep before handling (past the client's timeout: a "slow hub"). A write
  still applies after the delay, as on a real hub the client gave up on — unless the
  state was reset meanwhile (then 503, so one test's late write never leaks into the next).
- ``hold``: like ``delay``, but until the test says ``POST /__test__/release`` (or
  ``seconds``, default 60, pass): "the hub is working on it" for exactly as long as a
  test needs, with no guess at how long that is. A release lets held requests (and any
  later ones of this fault set) go on; replacing or resetting the faults releases them
  too (a reset one then gets the 503 above).
- ``status``: answer ``code`` with ``{"error": "Injected fault: <code>"}`` without
  handling; for 429 the body carries ``retryAfter`` (and a ``Retry-After`` header if
  ``retryAfterHeader``).
- ``drop``: read the whole request, then answer 200 headers and the first bytes of the
  promised body and close the connection cleanly (a FIN, never a RST): the client always
  sees a body that ended early (httpx: ``RemoteProtocolError``). With ``afterApply``
  (default) the request is handled first — the client cannot know its write happened.
- ``failAfterWrites``: the first ``writes`` writes pass, the next ones (``count`` of them,
  default all) get ``code`` (500) and are **not** applied.
- ``crash``: after ``afterWrites`` writes the next write kills the server process
  (``os._exit``) before it is applied, or just after it (``afterApply``), with no answer.
- ``marginFailModels``: margin-mode bulk updates fail (silently skip) rates of these models.

``count`` is how many matching requests the fault hits (``null``: all until cleared);
``path`` is an ``fnmatch`` pattern on the URL path; ``method`` an HTTP method.
A *write* is a POST/PUT/DELETE under ``/api/`` except credential tests; counting starts
when the faults are set. ``GET /__test__/stats`` returns
``{"total", "writes", "requests": {"GET /api/ai-providers": n, ...}}`` (``/__test__`` excluded).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import Request
from starlette.routing import Route

from hubkit.localhub.routing import Endpoint, Handler, guarded, json_app, read_json
from hubkit.localhub.validation import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CRASH_EXIT_CODE = 70


class SwitchableHub(Protocol):
    """What the switches need of the hub they wrap (:class:`hubkit.localhub.app.LocalHub`)."""

    margin_failures: Callable[[], Collection[str]]

    @property
    def generation(self) -> int: ...

    def reset(self) -> None: ...

    def authorised(self, request: Request) -> bool: ...

    async def durable(self) -> None: ...


class InjectedDrop(Exception):
    """Raised after a partial answer so uvicorn closes the connection (expected, not logged)."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedDrop)


def install_log_filter() -> None:
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


@dataclass
class Rule:
    """Which requests a fault hits, and how many more times."""

    path: str | None = None
    method: str | None = None
    count: int | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any], name: str) -> Rule:
        count = data.get("count")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 0
        ):
            raise ApiError(400, f'"{name}.count" must be an integer ≥ 0 or null')
        method = data.get("method")
        return cls(
            path=data.get("path") or None,
            method=method.upper() if isinstance(method, str) and method else None,
            count=count,
        )

    def take(self, method: str, path: str) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.method and self.method != method:
            return False
        if self.path and not fnmatch.fnmatchcase(path, self.path):
            return False
        if self.count is not None:
            self.count -= 1
        return True


@dataclass
class Faults:
    delay: tuple[Rule, float] | None = None
    hold: tuple[Rule, float] | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)
    status: tuple[Rule, int, float | None, bool] | None = None
    drop: tuple[Rule, bool] | None = None
    fail_after: tuple[int, int, int | None] | None = None
    crash: tuple[int, bool] | None = None
    margin_fail_models: tuple[str, ...] = ()
    writes_seen: int = 0
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Any) -> Faults:
        if not isinstance(data, Mapping):
            raise ApiError(400, "faults must be a JSON object")
        known = {
            "delay", "hold", "status", "drop", "failAfterWrites", "crash", "marginFailModels",
        }  # fmt: skip
        unknown = set(data) - known
        if unknown:
            raise ApiError(400, f"unknown fault(s): {', '.join(sorted(unknown))}")
        faults = cls(raw=json.loads(json.dumps(data, default=float)))
        if (d := data.get("delay")) is not None:
            faults.delay = (Rule.parse(d, "delay"), _seconds(d.get("seconds"), "delay.seconds"))
        if (h := data.get("hold")) is not None:
            faults.hold = (Rule.parse(h, "hold"), _seconds(h.get("seconds", 60), "hold.seconds"))
        if (s := data.get("status")) is not None:
            code = s.get("code", 503)
            if not isinstance(code, int) or not 400 <= code <= 599:
                raise ApiError(400, '"status.code" must be an HTTP error status (400-599)')
            retry = s.get("retryAfter")
            faults.status = (
                Rule.parse(s, "status"),
                code,
                None if retry is None else _seconds(retry, "status.retryAfter"),
                bool(s.get("retryAfterHeader")),
            )
        if (p := data.get("drop")) is not None:
            faults.drop = (Rule.parse(p, "drop"), bool(p.get("afterApply", True)))
        if (f := data.get("failAfterWrites")) is not None:
            count = f.get("count")
            faults.fail_after = (
                _count(f.get("writes"), "failAfterWrites.writes"),
                f.get("code", 500),
                count,
            )
        if (c := data.get("crash")) is not None:
            faults.crash = (
                _count(c.get("afterWrites", 0), "crash.afterWrites"),
                bool(c.get("afterApply")),
            )
        models = data.get("marginFailModels") or []
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ApiError(400, '"marginFailModels" must be a list of model ids')
        faults.margin_fail_models = tuple(models)
        return faults


def _seconds(value: Any, name: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ApiError(400, f'"{name}" must be a number of seconds') from None
    if not 0 <= seconds <= 600:
        raise ApiError(400, f'"{name}" must be between 0 and 600 seconds')
    return seconds


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(400, f'"{name}" must be an integer ≥ 0')
    return value


def is_write(method: str, path: str) -> bool:
    return (
        method in ("POST", "PUT", "DELETE")
        and path.startswith("/api/")
        and not path.endswith("/credentials/test")
    )


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.writes = 0

    def record(self, method: str, path: str) -> None:
        self.requests[f"{method} {path}"] += 1
        if is_write(method, path):
            self.writes += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "total": sum(self.requests.values()),
            "writes": self.writes,
            "requests": dict(sorted(self.requests.items())),
        }


async def _send_json(
    send: Send, status: int, body: Any, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class FaultMiddleware:
    """Outermost ASGI layer: counts requests, injects the configured faults and serves
    the ``/__test__`` routes (which are neither counted nor faulted)."""

    def __init__(self, app: ASGIApp, hub: SwitchableHub) -> None:
        self.app = app
        self._faults = Faults()
        self.stats = Stats()
        self._hub = hub
        self._generation: Callable[[], int] = lambda: hub.generation
        hub.margin_failures = lambda: self._faults.margin_fail_models
        self._switches = json_app(self._routes())

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, new: Faults) -> None:
        # A held request never outlives the fault set that held it.
        self._faults.released.set()
        self._faults = new

    def release(self) -> None:
        """Let every held request go on (``POST /__test__/release``)."""
        self._faults.released.set()

    def reset(self) -> int:
        """Wipe the hub's data and rate limits, the faults and the counters."""
        self._hub.reset()
        self.faults = Faults()
        self.stats.requests.clear()
        self.stats.writes = 0
        return self._hub.generation

    def _routes(self) -> list[Route]:
        def guard(handler: Handler) -> Endpoint:
            return guarded(self._hub, handler)

        async def faults(request: Request) -> Any:
            if request.method == "POST":
                self.faults = Faults.parse(await read_json(request))
            return self.faults.raw

        async def reset(request: Request) -> Any:
            return {"message": "reset", "generation": self.reset()}

        async def release(request: Request) -> Any:
            self.release()
            return {"message": "released"}

        async def stats(request: Request) -> Any:
            return self.stats.as_json()

        return [
            Route("/__test__/faults", guard(faults), methods=["GET", "POST"]),
            Route("/__test__/reset", guard(reset), methods=["POST"]),
            Route("/__test__/release", guard(release), methods=["POST"]),
            Route("/__test__/stats", guard(stats), methods=["GET"]),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/__test__"):
            await self._switches(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        self.stats.record(method, path)
        # Taken on arrival, before any await: a reset while the body is still coming in
        # counts as "meanwhile" too (a test sees the request counted from this point on).
        generation = self._generation()
        faults = self.faults
        write = is_write(method, path)
        if faults.crash is not None and write and faults.writes_seen >= faults.crash[0]:
            if faults.crash[1]:
                await self.app(scope, receive, _swallow)
            os._exit(CRASH_EXIT_CODE)  # a hard crash: no answer, no cleanup
        delay = faults.delay is not None and faults.delay[0].take(method, path)
        hold = faults.hold is not None and faults.hold[0].take(method, path)
        if delay or hold:
            # Read the body first, as the real hub's body parser does before any handler:
            # a client that gives up meanwhile does not stop its write from applying.
            receive = await _buffered(receive)
            if delay and faults.delay is not None:
                await asyncio.sleep(faults.delay[1])
            if hold and faults.hold is not None:
                try:
                    await asyncio.wait_for(faults.released.wait(), faults.hold[1])
                except TimeoutError:
                    pass  # held as long as allowed: carry on, as a slow hub finally would
            if generation != self._generation():
                await _send_json(
                    send,
                    503,
                    {"error": "Injected fault: the hub was reset while this request waited"},
                )
                return
        if faults.status is not None and faults.status[0].take(method, path):
            _rule, code, retry_after, header = faults.status
            body: dict[str, Any] = {"error": f"Injected fault: {code}"}
            headers: list[tuple[bytes, bytes]] = []
            if retry_after is not None:
                body["retryAfter"] = retry_after
                if header:
                    headers.append((b"retry-after", str(int(retry_after)).encode()))
            await _send_json(send, code, body, headers)
            return
        if write and faults.fail_after is not None:
            writes, code, remaining = faults.fail_after
            if faults.writes_seen >= writes and (remaining is None or remaining > 0):
                if remaining is not None:
                    faults.fail_after = (writes, code, remaining - 1)
                await _send_json(
                    send, code, {"error": f"Injected fault: write refused after {writes} writes"}
                )
                return
        if write:
            faults.writes_seen += 1
        if faults.drop is not None and faults.drop[0].take(method, path):
            # The whole request is read first, whether or not it is applied: closing a
            # socket with unread request bytes makes the kernel send a RST instead of a
            # FIN, and whether the client then saw "reset" or "closed early" was a race.
            receive = await _buffered(receive)
            if faults.drop[1]:
                await self.app(scope, receive, _swallow)
            await _send_truncated(send)
            raise InjectedDrop(f"dropped {method} {path}")
        await self.app(scope, receive, send)


#: What a dropped answer promises and what it delivers before the clean close.
DROP_CONTENT_LENGTH = 64
DROP_PARTIAL_BODY = b'{"dropped": '


async def _send_truncated(send: Send) -> None:
    """Full headers, the first bytes of the promised body, then (on raise) a clean close.

    The client always gets the same thing: a 200 whose body ends early, i.e. httpx's
    ``RemoteProtocolError`` ("peer closed connection without sending complete message
    body"), never a connection reset.
    """
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(DROP_CONTENT_LENGTH).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": DROP_PARTIAL_BODY, "more_body": True})


async def _swallow(message: Message) -> None:
    return None


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request body now; replay it to the app later."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
