"""A faithful local AIGNE Hub (admin API of hub-api.md) for tests, demos and notebooks.

Run it::

    HUBKIT_HUB_TOKEN=... python -m hubkit.localhub.app --port 8765 --state hub-state.json

or from Python with :func:`serve` (blocking) or :func:`create_app` (an ASGI app).
It listens on 127.0.0.1 only unless ``--allow-remote`` is given. The token comes from
``HUBKIT_HUB_TOKEN`` or ``--token-file`` and is never printed.

What it reproduces (read from AIGNE Hub's routes): Joi-style 400 messages, 404/409
answers, all-or-nothing batch create with the hub's exact messages, blank modelDisplay →
default, the paged list, credentials stored obfuscated and listed with the encrypted
``credentialValue`` (as the real hub leaks it), credential tests (a value starting with
``sk-bad`` or containing ``invalid`` fails) limited to 5 per 10 minutes per provider
(429 with ``retryAfter``), margin-mode bulk update that ignores ``dryRun``, sync mode
honouring it, health. Money is returned as plain decimal strings, except where the real
hub sends JSON numbers (the bulk-update summaries).

Deliberate differences: the credential-test limit is per provider (the real one is per
user: with one token, the same thing per provider); ``/health`` needs no token (as on the
real hub) but everything else needs ``Authorization: Bearer <token>`` (401 otherwise);
deleting a provider deletes its credentials and rates.

Test-only endpoints (same token): ``POST /__test__/faults`` (see
:mod:`hubkit.localhub.faults`), ``GET /__test__/faults``, ``POST /__test__/release``
(lets requests held by the ``hold`` fault go on), ``POST /__test__/reset``
(wipes all data, faults, counters and rate limits), ``GET /__test__/stats``.
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hubkit.localhub.bulk import margin_update, parse_request, sync_update
from hubkit.localhub.faults import FaultMiddleware, Faults, install_log_filter
from hubkit.localhub.state import LocalHubState
from hubkit.localhub.validation import ApiError

BASE = "/api/ai-providers"
TEST_LIMIT = 5
TEST_WINDOW_SECONDS = 600

Handler = Callable[[Request], Awaitable[Any]]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, default=_default, allow_nan=False)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class LocalHub:
    """State, token, faults and the credential-test rate limiter of one server."""

    def __init__(self, state_path: Path, token: str) -> None:
        if not token:
            raise ValueError("the local hub needs a token (HUBKIT_HUB_TOKEN or --token-file)")
        self._token = token
        self.state = LocalHubState(state_path, token)
        self.tests: dict[str, tuple[int, float]] = {}
        self.middleware: FaultMiddleware | None = None

    def __repr__(self) -> str:
        return f"LocalHub(state={str(self.state.path)!r})"

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


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_bad_constant)
    except ValueError:
        raise ApiError(400, "Invalid JSON body") from None


def _bad_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _routes(hub: LocalHub) -> list[Route]:
    state = hub.state

    def guarded(
        handler: Handler, *, public: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not public and not hub.authorised(request):
                return json_response({"error": "Unauthorized"}, 401)
            # State methods are synchronous and run on the event loop's thread: each one is
            # atomic with respect to other requests without a lock.
            try:
                result = await handler(request)
            except ApiError as exc:
                return json_response(exc.body, exc.status)
            except Exception as exc:  # the hub's catch-all: 500 {"error": formatError(err)}
                return json_response({"error": f"{type(exc).__name__}: {exc}"}, 500)
            return result if isinstance(result, Response) else json_response(result)

        return endpoint

    def p(request: Request, name: str) -> str:
        return str(request.path_params[name])

    async def providers(request: Request) -> Any:
        if request.method == "GET":
            q = request.query_params
            return state.list_providers(q.get("name") or None, bool(q.get("includeModelRates")))
        return state.create_provider(await _body(request))

    async def provider(request: Request) -> Any:
        if request.method == "PUT":
            return state.update_provider(p(request, "pid"), await _body(request))
        return state.delete_provider(p(request, "pid"))

    async def credentials(request: Request) -> Any:
        return state.create_credential(p(request, "pid"), await _body(request))

    async def credential(request: Request) -> Any:
        if request.method == "PUT":
            return state.update_credential(
                p(request, "pid"), p(request, "cid"), await _body(request)
            )
        return state.delete_credential(p(request, "pid"), p(request, "cid"))

    async def credential_test(request: Request) -> Any:
        hub.rate_limit(p(request, "pid"))
        return state.test_credential(p(request, "pid"), await _body(request))

    async def credential_check(request: Request) -> Any:
        return state.check_credential(p(request, "pid"), p(request, "cid"))

    async def provider_rates(request: Request) -> Any:
        if request.method == "GET":
            include = request.query_params.get("includeDeprecated") == "true"
            return state.rates_for_provider(p(request, "pid"), include)
        return state.create_rate(p(request, "pid"), await _body(request))

    async def rate(request: Request) -> Any:
        if request.method == "PUT":
            return state.update_rate(p(request, "pid"), p(request, "rid"), await _body(request))
        return state.delete_rate(p(request, "pid"), p(request, "rid"))

    async def all_rates(request: Request) -> Any:
        if request.method == "GET":
            return state.rates_page(dict(request.query_params))
        return state.batch_create_rates(await _body(request))

    async def bulk(request: Request) -> Any:
        params = parse_request(await _body(request))
        if params["mode"] == "sync":
            return sync_update(state, params)
        fail_models = hub.middleware.faults.margin_fail_models if hub.middleware else ()
        return margin_update(state, params, fail_models)  # dryRun is never read: as the hub

    async def health(request: Request) -> Any:
        return state.health()

    async def test_faults(request: Request) -> Any:
        assert hub.middleware is not None
        if request.method == "POST":
            hub.middleware.faults = Faults.parse(await _body(request))
        return hub.middleware.faults.raw

    async def test_reset(request: Request) -> Any:
        assert hub.middleware is not None
        state.reset()
        hub.tests.clear()
        hub.middleware.faults = Faults()
        hub.middleware.stats.requests.clear()
        hub.middleware.stats.writes = 0
        return {"message": "reset", "generation": state.generation}

    async def test_release(request: Request) -> Any:
        assert hub.middleware is not None
        hub.middleware.release()
        return {"message": "released"}

    async def test_stats(request: Request) -> Any:
        assert hub.middleware is not None
        return hub.middleware.stats.as_json()

    return [
        Route(BASE, guarded(providers), methods=["GET", "POST"]),
        Route(f"{BASE}/health", guarded(health, public=True), methods=["GET"]),
        Route(f"{BASE}/bulk-rate-update", guarded(bulk), methods=["POST"]),
        Route(f"{BASE}/model-rates", guarded(all_rates), methods=["GET", "POST"]),
        Route(f"{BASE}/{{pid}}", guarded(provider), methods=["PUT", "DELETE"]),
        Route(f"{BASE}/{{pid}}/credentials", guarded(credentials), methods=["POST"]),
        Route(f"{BASE}/{{pid}}/credentials/test", guarded(credential_test), methods=["POST"]),
        Route(
            f"{BASE}/{{pid}}/credentials/{{cid}}", guarded(credential), methods=["PUT", "DELETE"]
        ),
        Route(
            f"{BASE}/{{pid}}/credentials/{{cid}}/check", guarded(credential_check), methods=["GET"]
        ),
        Route(f"{BASE}/{{pid}}/model-rates", guarded(provider_rates), methods=["GET", "POST"]),
        Route(f"{BASE}/{{pid}}/model-rates/{{rid}}", guarded(rate), methods=["PUT", "DELETE"]),
        Route("/__test__/faults", guarded(test_faults), methods=["GET", "POST"]),
        Route("/__test__/reset", guarded(test_reset), methods=["POST"]),
        Route("/__test__/release", guarded(test_release), methods=["POST"]),
        Route("/__test__/stats", guarded(test_stats), methods=["GET"]),
    ]


def create_app(state_path: str | os.PathLike[str], token: str) -> FaultMiddleware:
    """The local hub as an ASGI app (faults middleware outermost, then Starlette)."""
    hub = LocalHub(Path(state_path), token)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return json_response({"error": exc.detail}, exc.status_code)

    app = Starlette(routes=_routes(hub), exception_handlers={HTTPException: http_error})
    middleware = FaultMiddleware(app, lambda: hub.state.generation)
    hub.middleware = middleware
    return middleware


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _watch_parent(parent: int) -> None:
    # A test run killed hard must not leave servers behind: exit when the parent goes.
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    state_path: str | os.PathLike[str] = "hub-state.json",
    token: str = "",
    *,
    log_level: str = "warning",
    ready_file: str | os.PathLike[str] | None = None,
    allow_remote: bool = False,
    exit_with_parent: bool = False,
) -> None:
    """Serve the local hub until interrupted. ``port=0`` picks a free port.

    The bound port is printed (and written to ``ready_file`` if given) once the socket
    is listening; the token never is.
    """
    import uvicorn

    if not allow_remote and not _is_loopback(host):
        raise ValueError(f"refusing to listen on {host!r}: the local hub binds loopback only")
    app = create_app(state_path, token)
    install_log_filter()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say TCP,
    # and without it every answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    if ready_file is not None:
        tmp = Path(f"{ready_file}.tmp")
        tmp.write_text(str(bound), encoding="utf-8")
        os.replace(tmp, ready_file)
    print(f"local hub listening on http://{host}:{bound} (state {state_path})", flush=True)
    if exit_with_parent:
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubkit.localhub.app",
        description="Serve a local AIGNE Hub admin API (loopback only) for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--state", required=True, help="JSON file keeping the hub's data")
    parser.add_argument(
        "--token-file", help="file holding the bearer token (else HUBKIT_HUB_TOKEN)"
    )
    parser.add_argument("--ready-file", help="write the bound port here once listening")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback host")
    parser.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.token_file:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    else:
        token = os.environ.get("HUBKIT_HUB_TOKEN", "").strip()
    if not token:
        print(
            "set HUBKIT_HUB_TOKEN or pass --token-file: the hub needs a bearer token",
            file=sys.stderr,
        )
        return 2
    try:
        serve(
            args.host,
            args.port,
            args.state,
            token,
            log_level=args.log_level,
            ready_file=args.ready_file,
            allow_remote=args.allow_remote,
            exit_with_parent=args.exit_with_parent,
        )
    except (ValueError, OSError) as exc:
        print(f"cannot start the local hub: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
