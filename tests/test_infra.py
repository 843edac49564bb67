"""The test infrastructure itself: fixtures, environment isolation, entry points, hygiene."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import _postgres
import pytest
import sqlalchemy as sa
from _stores import two_providers
from hypothesis import settings

if TYPE_CHECKING:  # the infrastructure tests run even when hubkit does not import
    from hubkit.store import Store

REPO = Path(__file__).resolve().parent.parent
CLEANED_PREFIXES = ("HUBKIT_", "AIGNE_HUB_", "NEW_USER_CREDIT_", "CREDIT_")


def _scalar(url: str, statement: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(statement)).scalar_one()
    finally:
        engine.dispose()


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_pg_url_answers_a_real_query(pg_url: str) -> None:
    assert pg_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    version = _scalar(pg_url, "SELECT version()")
    assert isinstance(version, str) and version.startswith("PostgreSQL ")


@pytest.mark.postgres
def test_pg_url_is_a_fresh_empty_database(pg_url: str) -> None:
    assert _scalar(pg_url, "SELECT current_database()") == pg_url.rsplit("/", 1)[1]
    tables = _scalar(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    assert tables == 0


@pytest.mark.postgres
def test_pg_numeric_38_18_round_trips_exactly(pg_url: str) -> None:
    metadata = sa.MetaData()
    rates = sa.Table(
        "rates",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("value", sa.Numeric(38, 18), nullable=False),
    )
    values = [
        Decimal("0.0000000001"),
        Decimal("0.000000000000000001"),  # the 18th place
        Decimal("12345678901234567890.123456789012345678"),  # all 38 digits
    ]
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(rates.insert(), [{"id": i, "value": v} for i, v in enumerate(values)])
        with engine.connect() as conn:
            back = conn.execute(sa.select(rates.c.value).order_by(rates.c.id)).scalars().all()
    finally:
        engine.dispose()
    assert all(isinstance(v, Decimal) for v in back)
    assert back == values
    assert back[0].normalize() == Decimal("1E-10")


@pytest.mark.postgres
def test_drop_database_ends_open_connections(
    postgres_server: _postgres.PostgresServer,
) -> None:
    name = _postgres.database_name("drop me")
    _postgres.create_database(postgres_server, name)
    assert name in _postgres.list_databases(postgres_server)
    engine = sa.create_engine(postgres_server.url(name))
    conn = engine.connect()  # left open on purpose, like a test that forgot to dispose
    conn.execute(sa.text("SELECT 1"))
    try:
        _postgres.drop_database(postgres_server, name)
        assert name not in _postgres.list_databases(postgres_server)
    finally:
        conn.invalidate()
        engine.dispose()


def test_database_names_are_valid_and_unique() -> None:
    long_hint = "test_something[postgres-" + "x" * 200 + "]"
    names = {_postgres.database_name(long_hint) for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert len(name) <= 63
        assert re.fullmatch(r"t_[a-z0-9_]+", name), name


def test_missing_postgres_skips_only_when_opted_out_off_ci() -> None:
    assert _postgres.unavailable_action({}) == "fail"
    assert _postgres.unavailable_action({_postgres.SKIP_VARIABLE: "1"}) == "skip"
    assert _postgres.unavailable_action({_postgres.SKIP_VARIABLE: "1", "CI": "true"}) == "fail"
    assert _postgres.unavailable_action({_postgres.SKIP_VARIABLE: "1", "CI": "false"}) == "skip"
    assert _postgres.unavailable_action({_postgres.SKIP_VARIABLE: "0"}) == "fail"


def test_pg_bindir_override_must_hold_the_binaries(tmp_path: Path) -> None:
    assert _postgres.find_bindir({"PG_BINDIR": str(tmp_path)}) is None
    for tool in ("initdb", "pg_ctl"):
        (tmp_path / tool).touch()
    assert _postgres.find_bindir({"PG_BINDIR": str(tmp_path)}) == tmp_path


# --- SQLite and the backend-parametrised fixture ---------------------------------------------


def test_sqlite_url_file_exists_after_a_write(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "hubkit.db"
    assert sqlite_url == f"sqlite:///{path}"
    assert not path.exists()
    engine = sa.create_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (42)"))
    finally:
        engine.dispose()
    assert path.is_file() and path.stat().st_size > 0


def test_db_url_gives_a_working_database(db_url: str, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.params["db_url"]
    assert db_url.startswith("sqlite:///" if backend == "sqlite" else "postgresql+psycopg://")
    if backend == "postgres":
        assert request.node.get_closest_marker("postgres") is not None
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (7), (35)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT sum(x) FROM t")).scalar_one() == 42
    finally:
        engine.dispose()


# --- the shared store fixture ------------------------------------------------------------------


def test_store_is_an_empty_sqlite_store_without_a_mark(store: Store, sqlite_url: str) -> None:
    assert store.engine.url.render_as_string(hide_password=False) == sqlite_url
    assert store.list_providers() == [] and not store.read_only


@pytest.mark.store("sqlite", "postgres", seed=two_providers)
def test_store_mark_names_the_back_ends_and_the_seed(
    store: Store, store_backend: str, request: pytest.FixtureRequest
) -> None:
    assert request.node.callspec.params["store_backend"] == store_backend
    if store_backend == "postgres":
        assert request.node.get_closest_marker("postgres") is not None
    assert store.engine.url.get_backend_name() == (
        "sqlite" if store_backend == "sqlite" else "postgresql"
    )
    assert sorted(p.name for p in store.list_providers()) == ["anthropic", "openai"]


@pytest.mark.store("sqlite", "postgres")
def test_a_test_taking_db_url_gets_its_store_on_that_database(store: Store, db_url: str) -> None:
    assert store.engine.url.render_as_string(hide_password=False) == db_url


# --- Environment isolation --------------------------------------------------------------------


def test_env_points_at_per_test_folders() -> None:
    from hubkit.config import PROJECT_ROOT, Settings

    ours = sorted(k for k in os.environ if k.startswith(CLEANED_PREFIXES) and os.environ[k])
    assert ours == ["HUBKIT_ACTOR", "HUBKIT_DATA_DIR", "HUBKIT_REPORTS_DIR"]
    current = Settings.from_env()
    assert current.actor == "pytest"
    assert current.data_dir == Path(os.environ["HUBKIT_DATA_DIR"])
    assert current.reports_dir == Path(os.environ["HUBKIT_REPORTS_DIR"])
    for folder in (current.data_dir, current.reports_dir):
        assert folder.is_dir()
        assert PROJECT_ROOT not in folder.parents  # never the real .hubkit/ or reports/
    assert current.data_dir != current.reports_dir
    assert current.database_url == f"sqlite:///{current.data_dir / 'hubkit.db'}"


def test_clean_env_removes_leaked_variables(tmp_path: Path) -> None:
    # Run a tiny suite under a copy of this conftest with a polluted environment.
    inner = tmp_path / "inner"
    inner.mkdir()
    here = Path(__file__).resolve().parent
    for name in ("conftest.py", "_postgres.py", "hub_fixtures.py"):
        shutil.copy(here / name, inner / name)
    (inner / "test_inner.py").write_text(
        "import os\n"
        "def test_env():\n"
        f"    prefixes = {CLEANED_PREFIXES!r}\n"
        "    left = sorted(k for k in os.environ if k.startswith(prefixes))\n"
        "    assert left == ['HUBKIT_ACTOR', 'HUBKIT_DATA_DIR', 'HUBKIT_REPORTS_DIR'], left\n"
        "    assert os.environ['HUBKIT_DATA_DIR'] != '/leak/data'\n"
        "    assert os.environ['HUBKIT_ACTOR'] == 'pytest'\n"
        "    assert 'PGSSLMODE' not in os.environ and 'PG_BINDIR' in os.environ\n"
    )
    env = dict(os.environ)
    env.update(
        {
            "HUBKIT_DATA_DIR": "/leak/data",
            "HUBKIT_DATABASE_URL": "sqlite:////leak/hubkit.db",
            "HUBKIT_HUB_TOKEN": "leak-token",
            "AIGNE_HUB_URL": "http://leak.invalid",
            "NEW_USER_CREDIT_GRANT_AMOUNT": "100",
            "CREDIT_PRICE_KEY": "leak",
            "PGSSLMODE": "require",
            "PG_BINDIR": "/nonexistent",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        + [f"--rootdir={inner}", f"--basetemp={tmp_path / 'basetemp'}", str(inner)],
        env=env,
        cwd=inner,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_hypothesis_profile_has_no_deadline() -> None:
    assert settings.default.deadline is None
    assert settings.default.derandomize == _postgres.in_ci(os.environ)


# --- Entry points: README, Makefile, CI ---------------------------------------------------------


def _command_lines(script: str) -> list[str]:
    # a trailing "# comment" explains the command; it is not part of it
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in script.splitlines()]
    return [
        line
        for line in lines
        if line and not line.startswith(("#", "set ", "cd ")) and line != "set -euo pipefail"
    ]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (REPO / ".ci" / "run").read_text()
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    assert _command_lines(script) == ["make test"]


def test_readme_first_code_block_shows_demo_and_test() -> None:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"^```[^\n]*\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert block is not None, "README.md has no fenced code block"
    commands = _command_lines(block.group(1))
    assert "make demo" in commands and "make test" in commands, commands


def test_make_help_lists_every_target() -> None:
    if shutil.which("make") is None:
        pytest.fail("`make` is missing: the README's commands need it (apt-get install make)")
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "-C", str(REPO)],  # default goal: help
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    expected = {"help", "venv", "demo", "test", "lint", "format", "lab", "app", "bench", "clean"}
    assert expected <= listed, result.stdout


# --- Notebook hygiene -------------------------------------------------------------------------


def _tracked_notebooks() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--", "*.ipynb"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (an unpacked sdist): check every notebook on disk instead.
        return sorted((REPO / "notebooks").rglob("*.ipynb"))
    names = [name for name in out.decode().split("\0") if name]
    return [REPO / name for name in names if (REPO / name).exists()]


def test_tracked_notebooks_have_no_outputs() -> None:
    offenders: list[str] = []
    for path in _tracked_notebooks():
        notebook = json.loads(path.read_text())
        for index, cell in enumerate(notebook.get("cells", [])):
            if cell.get("cell_type") != "code":
                continue
            if cell.get("outputs") or cell.get("execution_count") is not None:
                offenders.append(f"{path.relative_to(REPO)} cell {index}")
    assert offenders == [], "clear outputs before committing: " + ", ".join(offenders)
