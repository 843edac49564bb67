"""Shared fixtures for the whole suite.

- ``_clean_env`` (autouse): no test sees the developer's hubkit/hub variables, and every
  test gets its own data and reports folders, so nothing touches the real ``.hubkit/`` or
  ``reports/``.
- ``postgres_server`` (session) / ``pg_url``: a real throwaway PostgreSQL on loopback,
  one fresh database per test (mechanics in ``tests/_postgres.py``).
- ``sqlite_url``: a real SQLite file in the test's tmp dir.
- ``db_url``: runs a test once per backend (ids ``sqlite`` and ``postgres``).
- Hypothesis profile ``hubkit``: ``deadline=None``; derandomized on CI.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import _postgres
import pytest
from hypothesis import settings

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
