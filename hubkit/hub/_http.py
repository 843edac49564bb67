"""The request loop under :class:`hubkit.hub.client.HubClient`: timeouts, retries, errors.

Retry policy (hub-api.md, "What a careful client does"):

- every call has a timeout;
- an *idempotent* call (GET/PUT/DELETE, or a POST the caller marks as side-effect free)
  is retried with exponential backoff on transport errors, timeouts and 429/502/503/504;
- a POST that may have reached the hub is never retried: a timeout, a dropped connection
  or a 502/503/504 raises, saying the hub may have applied it, so the caller re-reads first;
  a POST is retried only when it surely did not reach the hub (connect failure) or the hub
  said 429 (rate limited: nothing applied);
- 429 waits ``retryAfter`` (body, seconds) or ``Retry-After`` (header, seconds or date);
  when that wait (summed over the call) would pass ``max_wait`` the call raises
  :class:`~hubkit.errors.HubRateLimitedError` saying when to retry;
- the wait is shared: calls on other threads (``apply`` sends several at once) hold back
  until it has passed too, so a rate-limited hub sees the whole client pause, not one
  worker while the others keep knocking.

Nothing secret is logged or put into an exception: URLs, bodies and the hub's messages go
through :mod:`hubkit.hub.redact` with the token and the request's credential values.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from hubkit.errors import HubError, HubRateLimitedError, HubStatusError, HubTimeoutError
from hubkit.hub.redact import redact, redact_mapping, redact_url

logger = logging.getLogger("hubkit.hub")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_GATEWAY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded hub answer (JSON with ``parse_float=Decimal``)."""

    status: int
    data: Any
    retried_after_ambiguity: bool = False


def decode_json(content: bytes) -> Any:
    """Decode the hub's JSON exactly: ``2.5e-08`` → ``Decimal('2.5E-8')``."""
    return json.loads(content, parse_float=Decimal)


def _hub_message(data: Any) -> str | None:
    if isinstance(data, Mapping):
        parts = [str(data[k]) for k in ("error", "message", "detail") if data.get(k)]
        # {"error": {"message": ...}} is the gateway's shape for billing errors
        if isinstance(data.get("error"), Mapping):
            parts = [str(data["error"].get("message") or data["error"])]
        return " — ".join(dict.fromkeys(parts)) or None
    if isinstance(data, str) and data.strip():
        return data.strip()[:300]
    return None


def retry_after_seconds(data: Any, headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the hub asks us to wait: body ``retryAfter`` first, else ``Retry-After``."""
    if isinstance(data, Mapping) and data.get("retryAfter") is not None:
        try:
            value = float(Decimal(str(data["retryAfter"])))
            if value >= 0:
                return value
        except (InvalidOperation, ValueError):
            pass
    header = headers.get("retry-after")
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class PauseGate:
    """A pause every thread's calls respect: the latest "not before" a 429 asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0  # time.monotonic()

    def hold(self, seconds: float) -> float:
        """Pause everyone for ``seconds`` from now (never shortening a longer pause)."""
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)
            return self._until

    def until(self) -> float:
        with self._lock:
            return self._until


class RequestEngine:
    """Sends one logical call, retrying as the policy allows. Owns no secrets but the token.

    Safe to share between threads (``httpx.Client`` is): a call's state lives in ``send``;
    only the 429 pause is shared, on purpose.
    """

    def __init__(
        self,
        http: httpx.Client,
        token: str,
        *,
        timeout: float,
        max_wait: float,
        retries: int,
        backoff: float,
        max_backoff: float,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._http = http
        self._token = token
        self.timeout = timeout
        self.max_wait = max_wait
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._clock = clock
        self.pause = PauseGate()

    # --- public -----------------------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        secrets: Iterable[str] = (),
        idempotent: bool | None = None,
        accept: Iterable[int] = (),
    ) -> Reply:
        """Send and return the decoded 2xx answer (or one whose status is in ``accept``)."""
        method = method.upper()
        known = (self._token, *secrets)
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else None
        accepted = frozenset(accept)
        waited = 0.0
        ambiguous = False  # an earlier attempt may have reached the hub
        attempt = 0
        covered = 0.0  # the end of the last pause this call has already waited out
        while True:
            attempt += 1
            until = self.pause.until()
            if until > covered:
                # another thread was told 429: wait with it (counted against max_wait)
                pause = max(0.0, until - time.monotonic())
                covered = until
                if pause > 0:
                    if waited + pause > self.max_wait:
                        raise self._rate_limited(method, path, None, pause, waited, known)
                    logger.debug(
                        "%s %s waits %.1f s: the hub is rate limiting", method, path, pause
                    )
                    self._sleep(pause)
                    waited += pause
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "→ %s %s%s attempt %d%s",
                    method,
                    redact(path, known),
                    _params_text(params, known),
                    attempt,
                    "" if body is None else f" body={json.dumps(redact_mapping(body, known))}",
                )
            started = time.monotonic()
            # Errors are raised after the ``except``: raised inside it they would keep the
            # httpx exception as ``__context__`` (``from None`` only hides it), and its
            # ``request`` holds the bearer header and the body with credential values.
            failure: HubError | None = None
            try:
                response = self._http.request(
                    method, path, params=_clean_params(params), content=content, headers=headers
                )
            except httpx.TimeoutException as exc:
                reached = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
                if (safe or not reached) and attempt <= self.retries:
                    ambiguous = ambiguous or reached
                    self._wait_backoff(method, path, attempt, type(exc).__name__, known)
                    continue
                failure = self._timeout_error(method, path, exc, reached, safe, known)
            except httpx.TransportError as exc:
                reached = not isinstance(exc, httpx.ConnectError)
                if (safe or not reached) and attempt <= self.retries:
                    ambiguous = ambiguous or reached
                    self._wait_backoff(method, path, attempt, type(exc).__name__, known)
                    continue
                failure = self._transport_error(method, path, exc, reached, safe, known)
            if failure is not None:
                raise failure
            elapsed_ms = (time.monotonic() - started) * 1000
            status = response.status_code
            logger.debug("← %s %s %d in %.0f ms", method, redact(path, known), status, elapsed_ms)
            if 300 <= status < 400:
                # Never followed: a redirect could carry the bearer token to another host.
                where = redact_url(response.headers.get("location", "?"), known)
                raise HubStatusError(
                    f"{method} {path} → {status}: the hub redirected to {where}; set "
                    "HUBKIT_HUB_URL to the final address (https, and any path prefix)",
                    method=method,
                    path=path,
                    status=status,
                )
            data = self._decode(method, path, response, known)
            if status < 400 or status in accepted:
                return Reply(status, data, ambiguous)
            if status == 429:
                wait = retry_after_seconds(data, response.headers, self._clock())
                if wait is None:
                    wait = self._backoff_delay(attempt)
                if attempt > self.retries or waited + wait > self.max_wait:
                    raise self._rate_limited(method, path, data, wait, waited, known)
                logger.debug("hub rate-limited %s %s; waiting %.1f s", method, path, wait)
                covered = self.pause.hold(wait)  # every other call waits it out too
                self._sleep(wait)
                waited += wait
                continue
            if status in _GATEWAY_STATUSES and safe and attempt <= self.retries:
                ambiguous = True
                hinted = retry_after_seconds(data, response.headers, self._clock())
                delay = max(self._backoff_delay(attempt), min(hinted or 0.0, self.max_wait))
                logger.debug(
                    "hub answered %d to %s %s; retry in %.2f s", status, method, path, delay
                )
                self._sleep(delay)
                continue
            if status == 404 and method == "DELETE" and ambiguous:
                # An earlier attempt reached the hub and its answer was lost: the 404 is
                # our own delete having succeeded. Reporting "not found" would be wrong.
                logger.debug("DELETE %s: 404 after an interrupted attempt; already deleted", path)
                return Reply(200, {"message": "already deleted"}, True)
            raise self.status_error(method, path, status, data, safe, known)

    # --- helpers ----------------------------------------------------------------------------

    def _decode(
        self, method: str, path: str, response: httpx.Response, known: tuple[str, ...]
    ) -> Any:
        content = response.content
        if not content:
            return None
        try:
            return decode_json(content)
        except ValueError:
            pass  # raised below, not here: the JSONDecodeError's ``doc`` is the whole body
        if response.status_code >= 400:
            return content.decode("utf-8", "replace")
        raise HubError(
            f"{method} {path}: the hub answered {response.status_code} with a body that is "
            f"not JSON: {redact(content[:200].decode('utf-8', 'replace'), known)!r}",
            method=method,
            path=path,
            status=response.status_code,
        )

    def _backoff_delay(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.backoff * (2 ** (attempt - 1))))

    def _wait_backoff(
        self, method: str, path: str, attempt: int, reason: str, known: tuple[str, ...]
    ) -> None:
        delay = self._backoff_delay(attempt)
        logger.debug(
            "%s %s failed (%s); retry in %.2f s", method, redact(path, known), reason, delay
        )
        self._sleep(delay)

    def _timeout_error(
        self,
        method: str,
        path: str,
        exc: Exception,
        reached: bool,
        safe: bool,
        known: tuple[str, ...],
    ) -> HubTimeoutError:
        tries = f" after {self.retries + 1} attempts" if safe or not reached else ""
        hint = (
            "; the hub may have applied it: re-read its state before retrying"
            if reached and not safe
            else "; check that the hub is up or raise HUBKIT_HUB_TIMEOUT"
        )
        return HubTimeoutError(
            redact(
                f"{method} {path} timed out ({type(exc).__name__}, timeout {self.timeout:g} s)"
                f"{tries}{hint}",
                known,
            ),
            method=method,
            path=path,
        )

    def _transport_error(
        self,
        method: str,
        path: str,
        exc: Exception,
        reached: bool,
        safe: bool,
        known: tuple[str, ...],
    ) -> HubError:
        base = redact_url(str(self._http.base_url).rstrip("/"))
        if not reached:
            text = (
                f"{method} {path}: cannot connect to the hub at {base} ({type(exc).__name__}: "
                f"{exc}); check HUBKIT_HUB_URL and that the hub is running"
            )
        else:
            text = (
                f"{method} {path}: the connection to the hub was lost before an answer "
                f"({type(exc).__name__}: {exc})"
            )
            if not safe:
                text += "; the hub may have applied it: re-read its state before retrying"
        return HubError(redact(text, known), method=method, path=path)

    def _rate_limited(
        self,
        method: str,
        path: str,
        data: Any,
        wait: float,
        waited: float,
        known: tuple[str, ...],
    ) -> HubRateLimitedError:
        at = self._clock() + timedelta(seconds=wait)
        hub_message = _hub_message(data)
        text = (
            f"{method} {path}: the hub is rate limiting (429); retry in {wait:.0f} s "
            f"(after {at:%Y-%m-%d %H:%M:%S} UTC)"
        )
        if waited:
            text += f"; already waited {waited:.0f} s"
        if wait + waited > self.max_wait:
            text += f", more than the allowed HUBKIT_HUB_MAX_WAIT of {self.max_wait:g} s"
        if hub_message:
            text += f". Hub says: {hub_message}"
        return HubRateLimitedError(
            redact(text, known),
            retry_after=wait,
            method=method,
            path=path,
            status=429,
            hub_message=None if hub_message is None else redact(hub_message, known),
        )

    def status_error(
        self,
        method: str,
        path: str,
        status: int,
        data: Any,
        safe: bool,
        known: tuple[str, ...],
    ) -> HubStatusError:
        hub_message = _hub_message(data)
        text = f"{method} {path} → {status}"
        if hub_message:
            text += f": {hub_message}"
        if status in _GATEWAY_STATUSES and not safe:
            text += " (the hub may have applied this POST: re-read its state before retrying)"
        elif status in _GATEWAY_STATUSES:
            text += f" (still failing after {self.retries + 1} attempts)"
        elif status == 401:
            text += " (check HUBKIT_HUB_TOKEN: it must be an admin access key of that hub)"
        return HubStatusError(
            redact(text, known),
            method=method,
            path=path,
            status=status,
            hub_message=None if hub_message is None else redact(hub_message, known),
        )


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out or None


def _params_text(params: Mapping[str, Any] | None, known: tuple[str, ...]) -> str:
    cleaned = _clean_params(params)
    if not cleaned:
        return ""
    return redact_url("?" + str(httpx.QueryParams(cleaned)), known)
