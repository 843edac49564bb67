"""Engines for SQLite and PostgreSQL, read-only mode, and alembic migrations."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import tempfile
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from hubkit._files import PRIVATE_FILE, private_dir
from hubkit._urls import mask_url
from hubkit.errors import StorageError

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# alembic's `context` and `op` are module-level proxies: two threads migrating at once
# (two Store.open calls in one process) trample each other's and fail with KeyError.
_MIGRATE_LOCK = threading.Lock()


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url``; ``read_only`` opens SQLite with ``mode=ro`` and PostgreSQL
    sessions with ``default_transaction_read_only``, so no code path can write."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # SQLAlchemy's own message quotes the URL, password and all: never chain it
        raise StorageError(
            f"HUBKIT_DATABASE_URL is not a database URL: {mask_url(url)!r} (expected e.g. "
            "sqlite:///path/hubkit.db or postgresql+psycopg://user@host/db)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed.database or "", read_only=read_only)
    if parsed.get_backend_name() == "postgresql":
        connect_args: dict[str, Any] = {}
        if read_only:
            connect_args["options"] = "-c default_transaction_read_only=on"
        try:
            return create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
        except (ArgumentError, ValueError) as exc:  # NoSuchModuleError is an ArgumentError
            raise StorageError(
                f"cannot use the database URL {mask_url(url)!r}: {type(exc).__name__} "
                f"({_masked_reason(exc, url)}); expected e.g. postgresql+psycopg://user@host/db"
            ) from None
    raise StorageError(
        f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL"
    )


def display_url(url: str) -> str:
    """A database URL as SQLAlchemy renders it, password hidden, for a person to read;
    ``(not a database URL)`` when it does not parse (the views need no SQLAlchemy)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # make_url raises several types for a malformed URL
        return "(not a database URL)"


def _masked_reason(exc: BaseException, url: str) -> str:
    """The library's reason, with the URL (and its password) taken out of it."""
    text = str(exc).replace(url, mask_url(url) or "")
    password = make_url(url).password
    return text.replace(str(password), "***") if password else text


def _create_private(path: Path) -> None:
    """Make a new database file 0600 (its folder 0700 if new), already in WAL mode.

    SQLite would create it with the umask's mode (often world-readable) and gives its
    -wal/-shm files the database file's mode, so setting it here covers all three.
    The file is made under a temporary name and linked into place: switching a database
    to WAL needs an exclusive lock, and SQLite answers "database is locked" at once (no
    busy wait) to a connection switching it while another does the same, which is what
    concurrent first opens of a new store did. A file that appears already in WAL mode
    leaves nothing to switch.
    """
    if path.exists():
        return
    if not path.parent.exists():
        private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    try:
        os.fchmod(fd, PRIVATE_FILE)
        os.close(fd)
        con = sqlite3.connect(tmp)
        try:
            con.execute("PRAGMA journal_mode=WAL")  # persistent: written into the header
        finally:
            con.close()
        try:
            os.link(tmp, path)  # never replaces: another process or thread may have won
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def _sqlite_engine(database: str, *, read_only: bool) -> Engine:
    if not database or database == ":memory:":
        raise StorageError("hubkit needs a SQLite file, not an in-memory database")
    path = Path(database.removeprefix("file:").split("?", 1)[0]).expanduser()
    if read_only:
        if not path.exists():
            raise StorageError(f"cannot open {path} read-only: the file does not exist")
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:
        _create_private(path)
        url = f"sqlite:///{path}"
    # NullPool: each unit of work gets its own connection, so a file replaced by a restore
    # or another process is seen at once and no connection is held between cells.
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transactions into our own hands (pysqlite's implicit BEGIN comes too late
        # to protect read-then-write units of work).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: two writers serialise instead of one
        # failing half-way with "database is locked" after it read stale data.
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (idempotent, safe to run from several processes).

    A store already at head costs one connection and one SELECT. Otherwise the migration
    runs under a lock every hubkit process honours — ``pg_advisory_lock`` on PostgreSQL, an
    ``flock`` on a file beside the SQLite database — taken before alembic reads the
    version table: a second ``hubkit init`` waits, then finds the schema current and does
    nothing, instead of creating the same tables again and failing half-way.
    """
    if revision == "head" and schema_is_current(engine):
        return
    cfg = _alembic_config()
    try:
        with _MIGRATE_LOCK, _migration_connection(engine) as conn, conn.begin():
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise StorageError(f"could not migrate the database: {exc.orig}") from exc


# Any constant will do, as long as every hubkit process uses the same one: "hubkit-migrate"
# read as 8 bytes would not fit a bigint, so its CRC-32.
MIGRATION_LOCK_KEY = zlib.crc32(b"hubkit-migrate")


def migration_lock_path(engine: Engine) -> Path:
    """The file whose ``flock`` serialises migrations of a SQLite database."""
    return Path(f"{engine.url.database}.migrate-lock")


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection holding the cross-process migration lock, released on exit."""
    if engine.dialect.name == "sqlite":
        with migration_lock_path(engine).open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file is closed
            with engine.connect() as conn:
                yield conn
        return
    with engine.connect() as conn:
        # Session-level, so alembic's own transaction handling cannot end it early; the
        # SELECT's implicit transaction is ended so the migration's begins clean.
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        conn.commit()
        try:
            yield conn
        finally:
            _advisory_unlock(conn)


def _advisory_unlock(conn: Connection) -> None:
    try:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        conn.commit()
    except DBAPIError:
        # Cannot say whether the session still holds the lock: never hand it back to the
        # pool (closing the session is what releases a session-level lock).
        conn.invalidate()


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    # Reading the migration scripts is the slow part of the already-migrated check.
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def schema_is_current(engine: Engine) -> bool:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head_revision()
