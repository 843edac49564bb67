"""The ``Store``: hubkit's one door to the database."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import inspect

from hubkit.config import Settings, get_settings
from hubkit.errors import StorageError
from hubkit.store.engine import make_engine, migrate, schema_is_current
from hubkit.store.history import HistoryOps
from hubkit.store.imports import CatalogOps, SettingsOps
from hubkit.store.providers import ProviderOps
from hubkit.store.rates import RateOps


class Store(ProviderOps, RateOps, HistoryOps, SettingsOps, CatalogOps):
    """Providers, credentials, rates, history and settings; every method is one transaction.

    >>> store = Store.open()                       # the embedded SQLite default
    >>> finance = Store.open(read_only=True)       # explore and export, never write
    """

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        read_only: bool = False,
        migrate_schema: bool = True,
    ) -> Store:
        """Open (and, unless read-only, migrate) the store at ``url`` or HUBKIT_DATABASE_URL."""
        settings = settings or get_settings()
        engine = make_engine(url or settings.database_url, read_only=read_only)
        try:
            if read_only:
                if not inspect(engine).has_table("model_rates") or not schema_is_current(engine):
                    raise StorageError(
                        "the database is empty or its schema is out of date; run "
                        "`python -m hubkit init` once with write access"
                    )
            elif migrate_schema:
                migrate(engine)
        except BaseException:
            # a refused open must not leave the pool's connection open (PostgreSQL)
            engine.dispose()
            raise
        return cls(engine, settings, read_only=read_only)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backup(self, destination: Path) -> Path:
        """A consistent copy of the database (SQLite online backup, or pg_dump).

        The copy holds encrypted credentials only: keep the key (HUBKIT_KEY_FILE or
        HUBKIT_SECRET_KEY) backed up separately, or the copy's credentials are unreadable.
        """
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            source_path = (url.database or "").removeprefix("file:").split("?", 1)[0]

            def copy(partial: Path) -> None:
                try:
                    src = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
                except sqlite3.Error as exc:
                    raise StorageError(f"cannot read {source_path} to back it up: {exc}") from None
                dst = sqlite3.connect(partial)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
                    src.close()

            return _write_atomically(destination, copy)
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise StorageError("pg_dump is not on PATH: install postgresql-client to back up")
        # The password goes through the environment: on the command line `ps` would show it.
        env = dict(os.environ)
        if url.password:
            env["PGPASSWORD"] = str(url.password)
        dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)

        def dump(partial: Path) -> None:
            try:
                subprocess.run(
                    [pg_dump, "--format=custom", f"--file={partial}", dsn],
                    check=True,
                    capture_output=True,
                    timeout=600,
                    env=env,
                )
            except subprocess.CalledProcessError as exc:
                stderr = exc.stderr.decode(errors="replace")
                raise StorageError(f"pg_dump failed: {stderr}") from None

        return _write_atomically(destination, dump)


def _write_atomically(destination: Path, write: Callable[[Path], None]) -> Path:
    """Write beside ``destination`` and rename: a failed backup never clobbers the last one."""
    partial = destination.with_name(f".{destination.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        write(partial)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return destination
