"""pytest plugin: an AIGNE Hub to test against — the bundled local hub, or a real one.

Fixtures:

- ``local_hub`` (session): by default starts ``python -m hubkit.localhub --test-faults``
  in a subprocess on 127.0.0.1 with a free port, a token and a state file in a tmp dir, waits
  until it answers and yields a :class:`LocalHub` handle (``.url``, ``.token``,
  ``.set_faults(...)``, ``.clear_faults()``, ``.release()``, ``.reset()``, ``.kill()``,
  ``.restart()``, ``.request_count(path=None, method=None)``, ``.wait_for_request(...)``,
  ``.stats()``, ``.client(**kw)``).
  With ``HUBKIT_TEST_HUB_URL`` and ``HUBKIT_TEST_HUB_TOKEN`` set it yields a
  :class:`RemoteHub` for that hub instead: fault switches, kill/restart and request
  counts skip the test there (saying why), and ``reset()`` only deletes what the tests
  created (tracked with ``track_*``), never anything else. With
  ``HUBKIT_TEST_HUB_DISPOSABLE=1`` too, that hub may be changed and wiped: ``reset()``
  deletes every provider, credential and rate on it through the gateway's public API
  (hub-api.md), so the tests that need an empty hub run there as well.
- ``hub`` (function): the same handle, made clean for one test: the local hub is
  (re)started if a test killed it, reset, and has no faults; whatever the test tracked
  is deleted afterwards (on a real hub that is the whole clean-up).

What a test needs of the hub, in three kinds; each skips with its own opening words, so
``pytest -rs`` shows which kind each skip is (tests/README.md lists them):

- ``switches``: the local hub's test switches (faults, kill/restart, request counts,
  latency). Skips against every hub given by URL.
- ``local_hub``: the bundled local hub itself: its fake key checker (``fake_keys``), its
  state file, answers of its own. Skips against every hub given by URL.
- ``disposable``: a hub it may change or wipe (an empty hub, exact counts, margin mode
  over every rate). Runs against a URL's hub only with ``HUBKIT_TEST_HUB_DISPOSABLE=1``.

Say it with a mark, which the ``hub`` fixture checks before anything else runs (a
module's ``pytestmark`` gives the default, a test's own mark overrides it)::

    @pytest.mark.hub_needs("switches", "counts the hub's writes")

or in the test, after a part that runs everywhere: ``hub.require_switches(why)``,
``hub.require_local_hub(why)``, ``hub.require_fake_keys()``, ``hub.require_disposable(why)``.

Load it with ``pytest_plugins = ["tests.hub_fixtures"]`` (needs the repo root on
``sys.path``, as ``python -m pytest`` gives) or ``["hub_fixtures"]`` (works whenever
``tests/`` is, as with the rootdir conftest). Imported under both names, the session
still starts one server: the handle is shared through ``config``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubkit.errors import HubStatusError
from hubkit.hub import HubClient, HubProvider

REPO_ROOT = Path(__file__).resolve().parent.parent
# Read at import: the suite's autouse fixture removes HUBKIT_* before each test runs.
TARGET_URL = os.environ.get("HUBKIT_TEST_HUB_URL") or None
TARGET_TOKEN = os.environ.get("HUBKIT_TEST_HUB_TOKEN") or None
DISPOSABLE_VARIABLE = "HUBKIT_TEST_HUB_DISPOSABLE"
_DISPOSABLE_VALUE = os.environ.get(DISPOSABLE_VARIABLE)

#: The three kinds of skip against a hub given by HUBKIT_TEST_HUB_URL, each with its own
#: opening words: a reader of ``pytest -rs`` sees which kind each skip is.
SWITCHES_SKIP = "local hub's switches only"
LOCAL_HUB_SKIP = "local hub itself only"
DISPOSABLE_SKIP = "disposable hub only"
#: What ``hub_needs`` / ``require`` accept.
NEEDS = ("switches", "local_hub", "fake_keys", "disposable")
FAKE_KEYS = (
    "uses made-up keys, which only the local hub's fake key checker accepts (a real hub "
    "tests each key live with its provider)"
)
REMOTE_SKIP = (
    f"{SWITCHES_SKIP}: needs the bundled local hub's test switches (faults, kill/restart, "
    "request counts, latency); a hub given by HUBKIT_TEST_HUB_URL has none"
)
_CONFIG_KEY = "_hubkit_local_hub"
# Generous: a start that fails exits at once (poll); only a slow one waits this long, and the
# soak found a restarted hub taking over 20 s to answer on 2 cores with load ~8.
_START_TIMEOUT = 90.0

#: Base URLs the local hub gives each known provider when a test needs one.
PROVIDER_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "deepseek": "https://api.deepseek.com",
    "google": "https://generativelanguage.googleapis.com",
    "openrouter": "https://openrouter.ai/api/v1",
    "poe": "https://api.poe.com/v1",
    "xai": "https://api.x.ai/v1",
    "ideogram": "https://api.ideogram.ai",
    "ollama": "http://127.0.0.1:11434",
    "doubao": "https://ark.cn-beijing.volces.com/api/v3",
}


def unique_model(prefix: str = "hubkit-test") -> str:
    """A model id no real hub has: tests that create rates use these and delete them."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {_camel(str(k)): _camel_keys(v) for k, v in value.items()}
    return value


class HubHandle:
    """What every test target offers: an address, a token, clients and clean-up."""

    is_local = False
    #: whether tests may change and wipe everything on it (the local hub always may)
    disposable = False

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self._tracked: list[tuple[str, tuple[str, ...]]] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, token='***')"

    unique_model = staticmethod(unique_model)
    provider_urls = PROVIDER_URLS

    def client(self, **kwargs: Any) -> HubClient:
        kwargs.setdefault("timeout", 5.0)
        kwargs.setdefault("sleep", lambda _s: None)  # tests never wait for real
        return HubClient(self.url, self.token, **kwargs)

    # --- clean-up of what tests created -----------------------------------------------------

    def track_provider(self, provider_id: str) -> None:
        self._tracked.append(("provider", (provider_id,)))

    def track_rate(self, provider_id: str, rate_id: str) -> None:
        self._tracked.append(("rate", (provider_id, rate_id)))

    def track_credential(self, provider_id: str, credential_id: str) -> None:
        self._tracked.append(("credential", (provider_id, credential_id)))

    def cleanup(self) -> None:
        """Delete tracked objects, newest first; ones already gone are fine."""
        tracked, self._tracked = self._tracked, []
        if not tracked:
            return
        with self.client(retries=1) as client:
            deletes: dict[str, Callable[..., object]] = {
                "provider": client.delete_provider,
                "rate": client.delete_rate,
                "credential": client.delete_credential,
            }
            for kind, ids in reversed(tracked):
                _delete(deletes[kind], *ids)

    def provider(self, name: str, **kwargs: Any) -> HubProvider:
        """The provider ``name``: the existing one, or a new one (tracked for deletion)."""
        with self.client() as client:
            found = client.get_provider(name)
            if found is not None:
                return found
            return self._create_provider(client, name, **kwargs)

    def fresh_provider(self, name: str, **kwargs: Any) -> HubProvider:
        """A provider this test creates (and may change); skips if the hub already has it."""
        with self.client() as client:
            if client.get_provider(name) is not None:
                pytest.skip(
                    f"the target hub already has provider {name!r}; this test must create it"
                )
            return self._create_provider(client, name, **kwargs)

    def _create_provider(self, client: HubClient, name: str, **kwargs: Any) -> HubProvider:
        kwargs.setdefault("base_url", PROVIDER_URLS.get(name))
        if name == "bedrock":
            kwargs.setdefault("region", "us-east-1")
        created = client.create_provider(name, kwargs.pop("display_name", name.title()), **kwargs)
        self.track_provider(created.id)
        return created

    # --- what a test needs: skips where the hub cannot give it ------------------------------

    def require(self, kind: str, why: str | None = None) -> None:
        """``require_<kind>(why)``: the ``hub_needs`` mark's check (see the module docstring)."""
        if kind not in NEEDS:
            raise ValueError(f"hub_needs: unknown kind {kind!r}; one of {', '.join(NEEDS)}")
        getattr(self, f"require_{kind}")(*([why] if why else []))

    def require_switches(self, why: str | None = None) -> None:
        """Skip unless this is the local hub: the test needs its switches (faults,
        kill/restart, request counts, latency), which no hub given by URL has."""
        if not self.is_local:
            pytest.skip(
                f"{SWITCHES_SKIP}: {why}; a hub given by HUBKIT_TEST_HUB_URL has no test switches"
                if why
                else REMOTE_SKIP
            )

    def require_local_hub(self, why: str = "tests the bundled local hub itself") -> None:
        """Skip unless this is the local hub: the test checks the bundled hub itself (its
        fake key checker, its state file, answers of its own), not the gateway's API."""
        if not self.is_local:
            pytest.skip(f"{LOCAL_HUB_SKIP}: {why}")

    def require_fake_keys(self, also: str | None = None) -> None:
        """:meth:`require_local_hub` for a test that stores or tests made-up keys."""
        self.require_local_hub(f"{FAKE_KEYS}{f'; {also}' if also else ''}")

    def require_disposable(self, why: str = "changes or wipes the hub's data") -> None:
        """Skip unless the hub may be changed and wiped: the local hub, or a hub given by
        URL with HUBKIT_TEST_HUB_DISPOSABLE=1."""
        if not self.disposable:
            pytest.skip(
                f"{DISPOSABLE_SKIP}: {why}; runs against HUBKIT_TEST_HUB_URL's hub only "
                f"with {DISPOSABLE_VARIABLE}=1 (the hub may then be changed and wiped)"
            )

    def require_local(self, why: str | None = None) -> None:
        """The old name of :meth:`require_switches` (skips against every hub given by URL).
        Say which kind a test is instead: switches, the local hub itself, or disposable."""
        self.require_switches(why)

    def set_faults(self, **faults: Any) -> None:
        pytest.skip(REMOTE_SKIP)

    def clear_faults(self) -> None:
        return None

    def release(self) -> None:
        pytest.skip(REMOTE_SKIP)

    def wait_for_request(self, path: str | None = None, method: str | None = None) -> None:
        pytest.skip(REMOTE_SKIP)

    def kill(self) -> None:
        pytest.skip(REMOTE_SKIP)

    def restart(self) -> None:
        pytest.skip(REMOTE_SKIP)

    def request_count(self, path: str | None = None, method: str | None = None) -> int:
        pytest.skip(REMOTE_SKIP)

    def stats(self) -> dict[str, Any]:
        pytest.skip(REMOTE_SKIP)

    def reset(self) -> None:
        self.cleanup()

    def ensure_running(self) -> None:
        return None

    def stop(self) -> None:
        return None


class RemoteHub(HubHandle):
    """A real hub named by HUBKIT_TEST_HUB_URL: read, create tracked things, delete them.

    ``disposable=True`` (``HUBKIT_TEST_HUB_DISPOSABLE=1``): the hub may be changed and
    wiped, and :meth:`reset` empties it through the gateway's public API.
    """

    def __init__(self, url: str, token: str, *, disposable: bool = False) -> None:
        super().__init__(url, token)
        self.disposable = disposable

    def __repr__(self) -> str:
        return f"RemoteHub(url={self.url!r}, token='***', disposable={self.disposable})"

    def reset(self) -> None:
        """Non-disposable: delete what the tests tracked, nothing else. Disposable: wipe."""
        if self.disposable:
            self.wipe()
        else:
            self.cleanup()

    def wipe(self) -> None:
        """Delete every provider with its rates (deprecated ones too) and credentials, using
        only hub-api.md's endpoints, then check that the hub is empty."""
        if not self.disposable:
            raise RuntimeError(f"{self!r} is not disposable: refusing to wipe it")
        self._tracked.clear()
        with self.client(retries=1) as client:
            for provider in client.list_providers():
                # children first: a gateway need not delete them with their provider
                for rate in client.list_rates(provider.id, include_deprecated=True):
                    _delete(client.delete_rate, provider.id, rate.id)
                for credential in provider.credentials:
                    _delete(client.delete_credential, provider.id, credential.id)
                _delete(client.delete_provider, provider.id)
            left = client.list_providers()
            rates = client.list_rates_page(page_size=1, include_deprecated=True).count
        if left or rates:
            raise AssertionError(
                f"wiping {self.url} left {len(left)} providers and {rates} rates behind"
            )

    def stop(self) -> None:
        # Leave a disposable hub as empty as the tests found it after the first reset.
        if self.disposable:
            self.wipe()


def _delete(delete: Callable[..., object], *ids: str) -> None:
    """Delete, where already gone (404) is as good as deleted."""
    try:
        delete(*ids)
    except HubStatusError as exc:
        if exc.status != 404:
            raise


class LocalHub(HubHandle):
    """``python -m hubkit.localhub --test-faults`` in a subprocess: the switches mounted."""

    is_local = True
    disposable = True

    def __init__(self, workdir: Path) -> None:
        super().__init__("", "hubtok-" + secrets.token_urlsafe(24))
        self.workdir = workdir
        self.state_path = workdir / "hub-state.json"
        self.log_path = workdir / "hub.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._admin: httpx.Client | None = None

    # --- process ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start (again on the same port, so the URL stays, when that port is still free)."""
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        try:
            self._start()
        except RuntimeError:
            new_output = self.log_path.read_bytes()[log_start:]
            if self.port == 0 or b"in use" not in new_output:
                raise
            # Between kill and restart another process took the port (an outgoing
            # connection can get it too): a fresh port, rather than a failed test.
            self.port = 0
            self._start()

    def _start(self) -> None:
        ready = self.workdir / "ready"
        ready.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUBKIT_")}
        env["HUBKIT_HUB_TOKEN"] = self.token  # in the environment, never on the command line
        cmd = [
            sys.executable,
            "-m",
            "hubkit.localhub",
            "--test-faults",
            "--port",
            str(self.port),
            "--state",
            str(self.state_path),
            "--ready-file",
            str(ready),
            "--exit-with-parent",
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while not ready.exists():
            self._check_alive(deadline)
            time.sleep(0.05)
        self.port = int(ready.read_text(encoding="utf-8"))
        self.url = f"http://127.0.0.1:{self.port}"
        if self._admin is not None:
            self._admin.close()
        self._admin = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=5.0
        )
        while True:
            try:
                if self._admin.get("/__test__/stats").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            self._check_alive(deadline)
            time.sleep(0.05)

    def _check_alive(self, deadline: float) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None or time.monotonic() > deadline:
            log = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"the local hub did not start; its log ends with:\n{log}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the server: a crash mid-whatever, nothing flushed but what was written."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        """Start again on the same port with the same state file (kills it first if needed)."""
        self.kill()
        self.start()

    def ensure_running(self) -> None:
        if not self.alive:
            self.start()

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    # --- test switches ----------------------------------------------------------------------

    def _post(self, path: str, body: Any = None) -> Any:
        assert self._admin is not None, "the local hub is not running"
        response = self._admin.post(path, json=body if body is not None else {})
        if response.status_code != 200:
            raise AssertionError(f"{path} → {response.status_code}: {response.text}")
        return response.json()

    def set_faults(self, **faults: Any) -> None:
        """Replace the fault set, e.g. ``set_faults(status={"code": 503, "count": 2})``.

        Keys and sub-keys may be snake_case (``fail_after_writes``, ``retry_after``).
        See :mod:`hubkit.localhub.faults` for the list.
        """
        self._post("/__test__/faults", _camel_keys(faults))

    def clear_faults(self) -> None:
        if self.alive:
            self._post("/__test__/faults", {})

    def release(self) -> None:
        """Let requests held by the ``hold`` fault go on (see ``set_faults(hold=...)``)."""
        self._post("/__test__/release")

    def wait_for_request(self, path: str | None = None, method: str | None = None) -> None:
        """Return once the hub has received a matching request (a held one counts)."""
        deadline = time.monotonic() + 60  # a stuck client, not a slow machine, trips this
        while self.request_count(path, method) == 0:
            assert time.monotonic() < deadline, f"no {method or ''} {path or ''} request arrived"
            time.sleep(0.02)

    def reset(self) -> None:
        """Wipe all data, faults, counters and rate limits."""
        self._tracked.clear()
        self._post("/__test__/reset")

    def stats(self) -> dict[str, Any]:
        assert self._admin is not None
        return dict(self._admin.get("/__test__/stats").json())

    def request_count(self, path: str | None = None, method: str | None = None) -> int:
        """Requests the hub received since the last reset (``path`` may be a glob)."""
        total = 0
        for key, count in self.stats()["requests"].items():
            m, _, p = key.partition(" ")
            if (path is None or fnmatchcase(p, path)) and (method is None or m == method.upper()):
                total += count
        return total

    def cleanup(self) -> None:
        # The next test resets the whole local hub anyway: deleting one by one is wasted time.
        self._tracked.clear()

    def read_state(self) -> str:
        return self.state_path.read_text(encoding="utf-8")


def disposable_setting(value: str | None, url: str | None) -> bool:
    """``HUBKIT_TEST_HUB_DISPOSABLE`` read: ``1`` yes; ``0``, empty or unset no.

    Anything else, or ``1`` without ``HUBKIT_TEST_HUB_URL``, is a :class:`pytest.UsageError`:
    a typo must not quietly skip the tests, nor wipe anything unasked.
    """
    text = (value or "").strip()
    if text not in ("", "0", "1"):
        raise pytest.UsageError(
            f"{DISPOSABLE_VARIABLE}={value!r}: use 1 (the hub at HUBKIT_TEST_HUB_URL may be "
            "changed and wiped) or 0 / empty (it may not)"
        )
    if text == "1" and not url:
        raise pytest.UsageError(
            f"{DISPOSABLE_VARIABLE}=1 says the hub at HUBKIT_TEST_HUB_URL may be wiped, but "
            "HUBKIT_TEST_HUB_URL is not set: set it (and HUBKIT_TEST_HUB_TOKEN), or unset "
            f"{DISPOSABLE_VARIABLE} to test against the bundled local hub"
        )
    return text == "1"


def pytest_configure(config: pytest.Config) -> None:
    # Early: a bad value stops the session before any test runs (and before any wipe).
    disposable_setting(_DISPOSABLE_VALUE, TARGET_URL)
    config.addinivalue_line(
        "markers",
        f"hub_needs(kind, why=None): what the test needs of the hub, kind one of "
        f"{', '.join(NEEDS)}; skips where the hub cannot give it (tests/hub_fixtures.py)",
    )


@pytest.fixture(scope="session")
def local_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubHandle]:
    """The hub the contract tests talk to (see the module docstring)."""
    shared = getattr(request.config, _CONFIG_KEY, None)
    if shared is not None:  # this module was imported under a second name
        yield shared
        return
    if TARGET_URL or TARGET_TOKEN:
        if not (TARGET_URL and TARGET_TOKEN):
            pytest.fail(
                "set both HUBKIT_TEST_HUB_URL and HUBKIT_TEST_HUB_TOKEN to test a real hub "
                "(or neither, for the bundled local hub)",
                pytrace=False,
            )
        handle: HubHandle = RemoteHub(
            TARGET_URL, TARGET_TOKEN, disposable=disposable_setting(_DISPOSABLE_VALUE, TARGET_URL)
        )
    else:
        workdir = tmp_path_factory.mktemp("local-hub")
        handle = LocalHub(workdir)
        handle.start()
    setattr(request.config, _CONFIG_KEY, handle)
    try:
        yield handle
    finally:
        try:
            handle.cleanup()
        finally:
            handle.stop()
            delattr(request.config, _CONFIG_KEY)
            if isinstance(handle, LocalHub):
                shutil.rmtree(handle.workdir, ignore_errors=True)


@pytest.fixture
def hub(local_hub: HubHandle, request: pytest.FixtureRequest) -> Iterator[HubHandle]:
    """``local_hub``, clean for one test; tracked objects are deleted afterwards.

    The test's (or its module's) ``hub_needs`` mark is checked first: a test the hub cannot
    serve skips before anything, the reset included, touches the hub.
    """
    needs = request.node.get_closest_marker("hub_needs")
    if needs is not None:
        local_hub.require(*needs.args, **needs.kwargs)
    local_hub.ensure_running()
    local_hub.reset()
    try:
        yield local_hub
    finally:
        local_hub.ensure_running()
        local_hub.clear_faults()
        local_hub.cleanup()
