"""The ``Store``: hubkit's one door to the database."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import inspect

from hubkit._files import atomic_write_with
from hubkit.config import EnvironmentSettings, get_settings
from hubkit.errors import ConflictError, StorageError, ValidationError
from hubkit.store.engine import make_engine, migrate, schema_is_current
from hubkit.store.history import HistoryOps
from hubkit.store.imports import CatalogOps, SettingsOps
from hubkit.store.jobs import JobTables
from hubkit.store.proposals import ProposalOps
from hubkit.store.providers import ProviderOps
from hubkit.store.rates import RateOps


class Store(ProviderOps, ProposalOps, RateOps, HistoryOps, SettingsOps, CatalogOps):
    """Providers, credentials, rates, history, settings and rate proposals; every method is
    one transaction.

    >>> store = Store.open()                       # the embedded SQLite default
    >>> finance = Store.open(read_only=True)       # explore and export, never write
    """

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        settings: EnvironmentSettings | None = None,
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

    @property
    def jobs(self) -> JobTables:
        """The job lock and run records (``job_locks``, ``job_runs``) that hubkit.jobs uses."""
        return JobTables(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backup(self, destination: Path, *, overwrite: bool = False) -> Path:
        """A consistent copy of the database (SQLite online backup, or pg_dump), mode 0600.

        An existing file is replaced only with ``overwrite=True`` (CLI ``--force``); the live
        database (or a symlink to it) and the key file are refused even then. The copy
        holds encrypted credentials only: keep the key (HUBKIT_KEY_FILE or
        HUBKIT_SECRET_KEY) backed up separately, or the copy's credentials are unreadable.
        """
        destination = Path(destination).expanduser()
        url = self.engine.url
        source_path = ""
        if url.get_backend_name() == "sqlite":
            source_path = (url.database or "").removeprefix("file:").split("?", 1)[0]
        _check_destination(destination, source_path, self.settings.key_file, overwrite)
        if source_path:

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

            return _write_atomically(destination, copy, overwrite)
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

        return _write_atomically(destination, dump, overwrite)


def _check_destination(
    destination: Path, source_path: str, key_file: Path, overwrite: bool
) -> None:
    protected = {"the live database": Path(source_path)} if source_path else {}
    if source_path:
        # SQLite's WAL companions are part of the live database too
        for suffix in ("-wal", "-shm", "-journal"):
            protected[f"the live database's {suffix[1:]} file"] = Path(source_path + suffix)
    protected["the secret key file"] = key_file
    for what, path in protected.items():
        if _same_file(destination, path):
            raise StorageError(
                f"refusing to back up onto {what} ({path}): {destination} is that file; "
                "choose a path outside the data folder"
            )
    if destination.is_dir() and not destination.is_symlink():
        raise ValidationError(
            f"backup destination {destination} is a folder; give a file name, e.g. "
            f"{destination / 'hubkit.db'}",
            field="destination",
        )
    if not overwrite and (destination.exists() or destination.is_symlink()):
        raise ConflictError(
            f"{destination} already exists; nothing was written. Choose another name, or "
            "pass --force (Store.backup(..., overwrite=True)) to replace it"
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _write_atomically(destination: Path, write: Callable[[Path], None], overwrite: bool) -> Path:
    """Write beside ``destination`` and rename (0600: the copy holds operator data), so a
    failed backup never clobbers the last one.

    Without ``overwrite`` the finished copy is linked into place, which fails if a file
    appeared there meanwhile (no check-then-write race).
    """
    try:
        return atomic_write_with(destination, write, overwrite=overwrite)
    except FileExistsError:
        raise ConflictError(
            f"{destination} appeared while the backup was written; nothing was "
            "replaced. Pass --force to replace it"
        ) from None
