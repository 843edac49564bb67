"""Shared fixtures for the whole suite.

- ``_clean_env`` (autouse): no test sees the developer's hubkit/hub variables, and every
  test gets its own data and reports folders, so nothing touches the real ``.hubkit/`` or
  ``reports/``.
- ``postgres_server`` (session) / ``pg_url``: a real throwaway PostgreSQL on loopback,
  one fresh database per test (mechanics in ``tests/_postgres.py``).
- ``sqlite_url``: a real SQLite file in the test's tmp dir.
- ``db_url``: runs a test once per backend (ids ``sqlite`` and ``postgres``).
- ``store``: an open :class:`~hubkit.store.Store`, closed after the test. A module says how
  its stores are made with a ``store`` mark (without one: SQLite, empty)::

      pytestmark = pytest.mark.store("sqlite", "postgres", seed=seed, close_widgets=True)

  positional arguments are the back ends (each one a run of the test, ids as ``db_url``'s);
  ``seed(store)`` fills it; ``close_widgets`` closes every ipywidget afterwards;
  ``url_in_env`` sets HUBKIT_DATABASE_URL and opens ``Store.open()`` as cron would. A test
  that also takes ``db_url`` gets its store on that very database.
- Hypothesis profile ``hubkit``: ``deadline=None``; derandomized on CI.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import _postgres
import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from hubkit.store import Store

# The loopback hub server fixtures (`local_hub`, `hub`) for every test that talks HTTP.
pytest_plugins = ["hub_fixtures"]

# Variables that steer hubkit or describe a hub/credit policy; a developer's shell (or CI's)
# must not leak them into tests. CREDIT_* / NEW_USER_CREDIT_* are the gateway's own names.
CLEANED_PREFIXES = ("HUBKIT_", "AIGNE_HUB_", "NEW_USER_CREDIT_", "CREDIT_")

# Same as hubkit.config.PROJECT_ROOT in a checkout; not imported so that a broken hubkit
# import shows up as failing tests of that module, not as an error in every test.
REPO_ROOT = Path(__file__).resolve().parent.parent

# Read once at import: the autouse fixture removes HUBKIT_* before tests run.
_STARTUP_ENV = dict(os.environ)

settings.register_profile("hubkit", deadline=None, derandomize=_postgres.in_ci(_STARTUP_ENV))
settings.load_profile("hubkit")


def _libpq_variable(name: str) -> bool:
    # PGHOST, PGPASSWORD, PGSSLMODE...: libpq reads them behind every connection's back.
    # Names with an underscore (PG_BINDIR) are not libpq's.
    return name.startswith("PG") and "_" not in name


@pytest.fixture(autouse=True)
def _clean_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(CLEANED_PREFIXES) or _libpq_variable(name):
            monkeypatch.delenv(name)
    # A developer's project-root .env is read by Settings.from_env() under the real
    # environment; an empty value counts as unset there, so blank out every key it sets.
    dotenv = REPO_ROOT / ".env"
    if dotenv.exists():
        from dotenv import dotenv_values

        for name in dotenv_values(dotenv):
            if name.startswith(CLEANED_PREFIXES):
                monkeypatch.setenv(name, "")
    # mktemp, not tmp_path: tests that list their own tmp_path must find it empty.
    monkeypatch.setenv("HUBKIT_DATA_DIR", str(tmp_path_factory.mktemp("hubkit-data")))
    monkeypatch.setenv("HUBKIT_REPORTS_DIR", str(tmp_path_factory.mktemp("hubkit-reports")))
    monkeypatch.setenv("HUBKIT_ACTOR", "pytest")
    yield


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_postgres.PostgresServer]:
    """A PostgreSQL cluster on 127.0.0.1:<free port> for the whole session."""
    # A cancelled run (CI timeout, Ctrl-C from a wrapper) arrives as SIGTERM; as a
    # KeyboardInterrupt pytest unwinds and this fixture's teardown still stops the server.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        try:
            server = _postgres.start_server()
        except _postgres.PostgresUnavailable as exc:
            if _postgres.unavailable_action(_STARTUP_ENV) == "skip":
                pytest.skip(f"{exc} ({_postgres.SKIP_VARIABLE}=1 is set)")
            pytest.fail(
                f"{exc}. PostgreSQL tests never skip on CI; on a laptop without it set "
                f"{_postgres.SKIP_VARIABLE}=1 to skip them.",
                pytrace=False,
            )
        try:
            yield server
        finally:
            _postgres.stop_server(server)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def pg_url(
    postgres_server: _postgres.PostgresServer, request: pytest.FixtureRequest
) -> Iterator[str]:
    """``postgresql+psycopg://postgres@127.0.0.1:PORT/<fresh db>``, dropped after the test."""
    name = _postgres.database_name(request.node.name)
    _postgres.create_database(postgres_server, name)
    try:
        yield postgres_server.url(name)
    finally:
        _postgres.drop_database(postgres_server, name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """``sqlite:///<tmp_path>/hubkit.db`` (the file appears on first write)."""
    return f"sqlite:///{tmp_path / 'hubkit.db'}"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test against a fresh SQLite file and a fresh PostgreSQL database."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


# --- the shared `store` fixture ----------------------------------------------------------------
BACKENDS = {
    "sqlite": pytest.param("sqlite", id="sqlite"),
    "postgres": pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
}


@dataclass(frozen=True)
class StoreOptions:
    """A module's ``store`` mark, read (see the module docstring)."""

    backends: tuple[str, ...] = ("sqlite",)
    seed: Callable[[Store], Any] | None = None
    close_widgets: bool = False
    url_in_env: bool = False

    @classmethod
    def of(cls, node: pytest.Item) -> StoreOptions:
        mark = node.get_closest_marker("store")
        if mark is None:
            return cls()
        options = cls(tuple(mark.args) or ("sqlite",), **mark.kwargs)
        unknown = set(options.backends) - set(BACKENDS)
        if unknown:
            raise ValueError(f"store mark: unknown back end(s) {sorted(unknown)}")
        return options


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "store(*backends, seed=None, close_widgets=False, url_in_env=False): how the shared "
        "`store` fixture makes this module's stores (tests/conftest.py)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # One run per back end the module's store mark names. A test that takes db_url too
    # follows db_url's own parametrisation instead (its store opens that database); one
    # that parametrises store_backend itself (e.g. SQLite only) keeps its choice.
    if "store_backend" not in metafunc.fixturenames or "db_url" in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "store_backend" in (
            names.replace(" ", "").split(",") if isinstance(names, str) else names
        ):
            return
    backends = StoreOptions.of(metafunc.definition).backends
    if backends != ("sqlite",):
        metafunc.parametrize("store_backend", [BACKENDS[b] for b in backends], indirect=True)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """The back end ``store`` opens (parametrised by ``pytest_generate_tests``)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def store(
    request: pytest.FixtureRequest, store_backend: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """An open store made as the module's ``store`` mark says; closed after the test."""
    from hubkit.store import Store

    options = StoreOptions.of(request.node)
    if "db_url" in request.fixturenames:
        url = str(request.getfixturevalue("db_url"))
    else:
        url = str(request.getfixturevalue("sqlite_url" if store_backend == "sqlite" else "pg_url"))
    if options.url_in_env:  # the kernel papermill starts reads it from there, like cron
        monkeypatch.setenv("HUBKIT_DATABASE_URL", url)
    opened = Store.open() if options.url_in_env else Store.open(url)
    try:
        if options.seed is not None:
            options.seed(opened)
        yield opened
    finally:
        opened.close()
        if options.close_widgets:
            from _widget_helpers import close_all_widgets

            close_all_widgets()
