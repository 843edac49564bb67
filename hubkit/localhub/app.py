"""The local hub's ASGI app: AIGNE Hub's admin API (hub-api.md) over :class:`LocalHubState`.

Run it with ``python -m hubkit.localhub`` (see :mod:`hubkit.localhub.process`), or build it
with :func:`create_app`.

What it reproduces (read from AIGNE Hub's routes): Joi-style 400 messages, 404/409
answers, all-or-nothing batch create with the hub's exact messages, blank modelDisplay →
default, the paged list, credentials stored obfuscated and listed with the encrypted
``credentialValue`` (as the real hub leaks it), credential tests (a value starting with
``sk-bad`` or containing ``invalid`` fails) limited to 5 per 10 minutes per provider
(429 with ``retryAfter``), margin-mode bulk update that ignores ``dryRun``, sync mode
honouring it, health. Money is returned as plain decimal strings, except where the real
hub sends JSON numbers (the bulk-update summaries). The rules it applies are its own copy
(:mod:`hubkit.localhub.rules`), not hubkit's.

Deliberate differences: the credential-test limit is per provider (the real one is per
user: with one token, the same thing per provider); ``/health`` needs no token (as on the
real hub) but everything else needs ``Authorization: Bearer <token>`` (401 otherwise);
deleting a provider deletes its credentials and rates.

Test switches (``/__test__/…``: faults, release, reset, stats) exist only in an app made
with ``test_faults=True``; they live in :mod:`hubkit.localhub.faults`.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp

from hubkit.localhub.bulk import margin_update, parse_request, sync_update
from hubkit.localhub.faults import FaultMiddleware
from hubkit.localhub.latency import LatencyMiddleware
from hubkit.localhub.routing import Endpoint, Handler, guarded, json_app, read_json
from hubkit.localhub.state import LocalHubState
from hubkit.localhub.validation import ApiError

BASE = "/api/ai-providers"
TEST_LIMIT = 5
TEST_WINDOW_SECONDS = 600


def _no_failures() -> Collection[str]:
    return ()


class LocalHub:
    """State, token and the credential-test rate limiter of one server."""

    def __init__(self, state_path: Path, token: str, *, in_memory: bool = False) -> None:
        if not token:
            raise ValueError("the local hub needs a token (HUBKIT_HUB_TOKEN or --token-file)")
        self._token = token
        self.state = LocalHubState(state_path, token, persist=not in_memory)
        self.tests: dict[str, tuple[int, float]] = {}
        #: models whose margin-mode update fails (and is skipped silently, as on the real
        #: hub); only the fault switches set it
        self.margin_failures: Callable[[], Collection[str]] = _no_failures

    def __repr__(self) -> str:
        return f"LocalHub(state={str(self.state.path)!r})"

    @property
    def generation(self) -> int:
        """Bumped by :meth:`reset`: requests that waited across a reset are refused."""
        return self.state.generation

    def reset(self) -> None:
        """Wipe all data and the rate limiter's counts."""
        self.state.reset()
        self.tests.clear()

    async def durable(self) -> None:
        await self.state.durable()

    def authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), self._token)

    def rate_limit(self, provider_id: str) -> None:
        """``rateLimitMiddleware``: 5 tests per 10 minutes, then 429 with ``retryAfter``."""
        now = time.monotonic()
        count, start = self.tests.get(provider_id, (0, now))
        if count and now - start < TEST_WINDOW_SECONDS:
            if count >= TEST_LIMIT:
                remaining = int(-(-(TEST_WINDOW_SECONDS - (now - start)) // 1))
                raise ApiError(
                    429,
                    "Rate limit exceeded",
                    message=f"Too many requests. Please try again in {remaining} seconds.",
                    retryAfter=remaining,
                )
            self.tests[provider_id] = (count + 1, start)
        else:
            self.tests[provider_id] = (1, now)


def admin_routes(hub: LocalHub) -> list[Route]:
    """hub-api.md's routes under ``/api/ai-providers``."""
    state = hub.state

    def guard(handler: Handler, *, public: bool = False) -> Endpoint:
        return guarded(hub, handler, public=public)

    def p(request: Request, name: str) -> str:
        return str(request.path_params[name])

    async def providers(request: Request) -> Any:
        if request.method == "GET":
            q = request.query_params
            return state.list_providers(q.get("name") or None, bool(q.get("includeModelRates")))
        return state.create_provider(await read_json(request))

    async def provider(request: Request) -> Any:
        if request.method == "PUT":
            return state.update_provider(p(request, "pid"), await read_json(request))
        return state.delete_provider(p(request, "pid"))

    async def credentials(request: Request) -> Any:
        return state.create_credential(p(request, "pid"), await read_json(request))

    async def credential(request: Request) -> Any:
        if request.method == "PUT":
            return state.update_credential(
                p(request, "pid"), p(request, "cid"), await read_json(request)
            )
        return state.delete_credential(p(request, "pid"), p(request, "cid"))

    async def credential_test(request: Request) -> Any:
        hub.rate_limit(p(request, "pid"))
        return state.test_credential(p(request, "pid"), await read_json(request))

    async def credential_check(request: Request) -> Any:
        return state.check_credential(p(request, "pid"), p(request, "cid"))

    async def provider_rates(request: Request) -> Any:
        if request.method == "GET":
            include = request.query_params.get("includeDeprecated") == "true"
            return state.rates_for_provider(p(request, "pid"), include)
        return state.create_rate(p(request, "pid"), await read_json(request))

    async def rate(request: Request) -> Any:
        if request.method == "PUT":
            return state.update_rate(p(request, "pid"), p(request, "rid"), await read_json(request))
        return state.delete_rate(p(request, "pid"), p(request, "rid"))

    async def all_rates(request: Request) -> Any:
        if request.method == "GET":
            return state.rates_page(dict(request.query_params))
        return state.batch_create_rates(await read_json(request))

    async def bulk(request: Request) -> Any:
        params = parse_request(await read_json(request))
        if params["mode"] == "sync":
            return sync_update(state, params)
        # dryRun is never read: as the hub
        return margin_update(state, params, hub.margin_failures())

    async def health(request: Request) -> Any:
        return state.health()

    return [
        Route(BASE, guard(providers), methods=["GET", "POST"]),
        Route(f"{BASE}/health", guard(health, public=True), methods=["GET"]),
        Route(f"{BASE}/bulk-rate-update", guard(bulk), methods=["POST"]),
        Route(f"{BASE}/model-rates", guard(all_rates), methods=["GET", "POST"]),
        Route(f"{BASE}/{{pid}}", guard(provider), methods=["PUT", "DELETE"]),
        Route(f"{BASE}/{{pid}}/credentials", guard(credentials), methods=["POST"]),
        Route(f"{BASE}/{{pid}}/credentials/test", guard(credential_test), methods=["POST"]),
        Route(f"{BASE}/{{pid}}/credentials/{{cid}}", guard(credential), methods=["PUT", "DELETE"]),
        Route(
            f"{BASE}/{{pid}}/credentials/{{cid}}/check", guard(credential_check), methods=["GET"]
        ),
        Route(f"{BASE}/{{pid}}/model-rates", guard(provider_rates), methods=["GET", "POST"]),
        Route(f"{BASE}/{{pid}}/model-rates/{{rid}}", guard(rate), methods=["PUT", "DELETE"]),
    ]


def create_app(
    state_path: str | os.PathLike[str],
    token: str,
    *,
    test_faults: bool = False,
    latency_ms: float = 0,
    jitter_ms: float = 0,
    in_memory: bool = False,
) -> ASGIApp:
    """The local hub as an ASGI app; with ``test_faults`` wrapped in the fault switches,
    with ``latency_ms`` (and ``jitter_ms``) answering like a hub across a network, with
    ``in_memory`` writing no change to ``state_path`` (read once at start)."""
    hub = LocalHub(Path(state_path), token, in_memory=in_memory)
    app: ASGIApp = json_app(admin_routes(hub))
    if test_faults:
        app = FaultMiddleware(app, hub)
    if latency_ms or jitter_ms:
        app = LatencyMiddleware(app, latency_ms, jitter_ms)
    return app
