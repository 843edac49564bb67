"""A throwaway PostgreSQL server on loopback, for the test suite.

The recipe (see shared design note ``testing.md``): Debian's binaries live outside PATH in
``/usr/lib/postgresql/<ver>/bin`` (or ``$PG_BINDIR``); PostgreSQL refuses to run as root, so
as root every command goes through ``runuser -u postgres --`` and the data folder is a
``mkdtemp`` folder under ``/tmp`` chowned to ``postgres`` (pytest's own tmp dirs are 0700 root).
``pg_ctl start`` always gets ``-l LOGFILE``: without it, it keeps the caller's pipe open and
hangs. Durability is switched off: the cluster lives for one test session.

``tests/conftest.py`` turns this into the ``postgres_server`` / ``pg_url`` fixtures.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "run `bash scripts/install-system-deps.sh` (apt-get install postgresql)"
SKIP_VARIABLE = "HUBKIT_TEST_SKIP_POSTGRES"

_PORT_ATTEMPTS = 5
_START_TIMEOUT_S = 60
_DB_NAME_MAX = 63  # PostgreSQL's identifier limit (NAMEDATALEN - 1)


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries (or the ``postgres`` OS user) are missing on this machine."""


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster: connect as ``postgres`` (trust auth) on ``host:port``."""

    host: str
    port: int
    root: Path  # temp folder holding data/, sock/ and the server log
    bindir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for ``database`` on this server."""
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """libpq connection string, for plain ``psycopg.connect``."""
        return f"host={self.host} port={self.port} user=postgres dbname={database}"


def find_bindir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Folder holding ``initdb`` and ``pg_ctl``: ``$PG_BINDIR``, else the newest Debian one."""
    env = os.environ if environ is None else environ
    explicit = env.get("PG_BINDIR")
    if explicit:
        path = Path(explicit)
        return path if (path / "initdb").exists() and (path / "pg_ctl").exists() else None
    candidates = [
        bindir
        for bindir in Path("/usr/lib/postgresql").glob("*/bin")
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists()
    ]
    # Version folders are numbers ("15", "16"): compare numerically, not as text.
    candidates.sort(key=lambda p: _version_key(p.parent.name))
    if candidates:
        return candidates[-1]
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


def unavailable_action(environ: Mapping[str, str]) -> str:
    """``"skip"`` or ``"fail"`` when PostgreSQL is missing.

    Skipping is a laptop convenience only: CI must never silently lose the PostgreSQL tests.
    """
    opted_out = environ.get(SKIP_VARIABLE, "").strip() == "1"
    return "skip" if opted_out and not in_ci(environ) else "fail"


def in_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def start_server() -> PostgresServer:
    """initdb + start a cluster on 127.0.0.1 with a free port. Raises PostgresUnavailable."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(f"PostgreSQL binaries (initdb, pg_ctl) not found: {INSTALL_HINT}")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root but `runuser` is missing (util-linux)")
    if as_root:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable(f"no `postgres` OS user: {INSTALL_HINT}") from None

    # /tmp explicitly: a TMPDIR under /root would not be enterable by the postgres user.
    base = "/tmp" if Path("/tmp").is_dir() else tempfile.gettempdir()
    root = Path(tempfile.mkdtemp(prefix="hubkit-pg-", dir=base))
    server: PostgresServer | None = None
    try:
        (root / "data").mkdir(mode=0o700)
        (root / "sock").mkdir()  # short path: unix socket paths must stay < 108 bytes
        if as_root:
            for path in (root, root / "data", root / "sock"):
                shutil.chown(path, user="postgres", group="postgres")
        _run(
            bindir,
            [
                "initdb",
                "-D",
                str(root / "data"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )
        server = _start_on_free_port(bindir, root)
        return server
    except BaseException:
        # Includes KeyboardInterrupt (SIGTERM in the fixture): never leave a half-started
        # cluster or its folder behind.
        if server is None:
            _stop(bindir, root)
            shutil.rmtree(root, ignore_errors=True)
        raise


def stop_server(server: PostgresServer) -> None:
    """Stop the cluster (fast shutdown) and delete its folder. Safe to call twice."""
    _stop(server.bindir, server.root)
    shutil.rmtree(server.root, ignore_errors=True)


def database_name(hint: str) -> str:
    """A fresh, valid database name derived from ``hint`` (e.g. the test's name)."""
    slug = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_") or "test"
    suffix = uuid.uuid4().hex[:8]
    return f"t_{slug[: _DB_NAME_MAX - len(suffix) - 3]}_{suffix}"


def create_database(server: PostgresServer, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server: PostgresServer, name: str) -> None:
    """Drop ``name``, first ending connections a test left open (pools, forgotten sessions)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        # WITH (FORCE) (PG >= 13) covers a connection opened between the two statements.
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def list_databases(server: PostgresServer) -> list[str]:
    import psycopg

    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database ORDER BY datname").fetchall()
    return [row[0] for row in rows]


def _start_on_free_port(bindir: Path, root: Path) -> PostgresServer:
    last_log = ""
    for _ in range(_PORT_ATTEMPTS):
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root / 'sock'} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        result = _run(
            bindir,
            [
                "pg_ctl",
                "-D",
                str(root / "data"),
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                str(_START_TIMEOUT_S),
                "-o",
                options,
                "start",
            ],
            check=False,
        )
        if result.returncode == 0:
            return PostgresServer(host="127.0.0.1", port=port, root=root, bindir=bindir)
        last_log = _read_log(root)
        # Another process may take the port between our probe and the server's bind: retry.
        if "already in use" not in last_log and "could not bind" not in last_log:
            break
        _stop(bindir, root)
    raise RuntimeError(f"pg_ctl start failed; server log:\n{last_log[-4000:]}")


def _stop(bindir: Path, root: Path) -> None:
    if not (root / "data" / "postmaster.pid").exists():
        return
    _run(bindir, ["pg_ctl", "-D", str(root / "data"), "stop", "-m", "fast", "-w"], check=False)


def _run(
    bindir: Path, argv: Sequence[str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    command = [str(bindir / argv[0]), *argv[1:]]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(
        command,
        env=_server_env(),
        cwd="/",  # the postgres user may not be able to enter the caller's folder
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=_START_TIMEOUT_S + 30,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:1])} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result


def _server_env() -> dict[str, str]:
    # libpq/server variables from a developer's shell (PGDATA, PGPORT, PGHOST...) would
    # redirect pg_ctl; PG_BINDIR-style names with an underscore are ours and harmless.
    env = {k: v for k, v in os.environ.items() if not (k.startswith("PG") and "_" not in k)}
    env["LC_ALL"] = "C"
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_log(root: Path) -> str:
    try:
        return (root / "server.log").read_text(errors="replace")
    except OSError:
        return ""


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)
