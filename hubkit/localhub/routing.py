"""HTTP plumbing shared by the admin routes (:mod:`~hubkit.localhub.app`) and the test
switches (:mod:`~hubkit.localhub.faults`): JSON in and out, the bearer check, the hub's
error answers. Kept apart so that neither of those two modules imports the other's routes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hubkit.localhub.validation import ApiError

Handler = Callable[[Request], Awaitable[Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


class Gatekeeper(Protocol):
    """Whatever decides whether a request carries the hub's token."""

    def authorised(self, request: Request) -> bool: ...

    async def durable(self) -> None:
        """Return once the request's changes are on disk (it is answered after)."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, default=_default, allow_nan=False)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def read_json(request: Request) -> Any:
    """The request's JSON body (``{}`` when empty); decimals stay exact; 400 on bad JSON."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_bad_constant)
    except ValueError:
        raise ApiError(400, "Invalid JSON body") from None


def _bad_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def guarded(gate: Gatekeeper, handler: Handler, *, public: bool = False) -> Endpoint:
    """``handler`` behind the bearer check, its ApiErrors and crashes turned into answers."""

    async def endpoint(request: Request) -> Response:
        if not public and not gate.authorised(request):
            return json_response({"error": "Unauthorized"}, 401)
        # State methods are synchronous and run on the event loop's thread: each one is
        # atomic with respect to other requests without a lock.
        try:
            result = await handler(request)
        except ApiError as exc:
            result = json_response(exc.body, exc.status)
        except Exception as exc:  # the hub's catch-all: 500 {"error": formatError(err)}
            result = json_response({"error": f"{type(exc).__name__}: {exc}"}, 500)
        await gate.durable()  # what the request changed is written before it is answered
        return result if isinstance(result, Response) else json_response(result)

    return endpoint


def json_app(routes: Sequence[Route]) -> Starlette:
    """A Starlette app whose own errors (404, 405) are JSON ``{"error": ...}`` like the rest."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return json_response({"error": exc.detail}, exc.status_code)

    return Starlette(routes=list(routes), exception_handlers={HTTPException: http_error})
