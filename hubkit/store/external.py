"""Reading another application's PostgreSQL database, read-only (the gateway's, for import).

The SQL lives in the store layer (import-linter: ``sqlalchemy`` only here); the importer above
(:mod:`hubkit.usage.gateway`) asks for tables, counts and rows by the names it knows. Every
session is a read-only transaction (``default_transaction_read_only``, as
:func:`hubkit.store.engine.make_engine` opens a read-only store), so no statement can change
the database; names are the other application's own (quoted: Sequelize's mixed case).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from hubkit._urls import mask_url
from hubkit.errors import StorageError
from hubkit.store.engine import make_engine

__all__ = ["ReadOnlyPostgres"]


def _quoted(name: str) -> str:
    if '"' in name:
        raise StorageError(f"not a table name: {name!r}")
    return f'"{name}"'


class ReadOnlyPostgres:
    """A PostgreSQL database opened read-only: its tables, their sizes and their rows."""

    def __init__(self, url: str, *, what: str = "the database") -> None:
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        self.name = mask_url(url) or "postgresql"
        self._what = what
        self._engine = make_engine(url, read_only=True)
        try:
            self._conn = self._engine.connect()
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise StorageError(
                f"cannot connect to {what} {self.name}: {type(exc).__name__}; check the URL, "
                "that the server runs and that the user may read it"
            ) from None

    def tables(self) -> set[str]:
        return set(inspect(self._conn).get_table_names())

    def count(self, table: str) -> int:
        query = f"SELECT COUNT(*) FROM {_quoted(table)}"
        return int(self._conn.exec_driver_sql(query).scalar_one())

    #: the driver's parameter marker (psycopg: ``%s``)
    placeholder = "%s"

    def records(
        self, query: str, chunk_rows: int, params: Sequence[Any] = ()
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows of ``query`` (the caller's SQL over quoted names, ``%s`` for each of
        ``params``), ``chunk_rows`` at a time, streamed by a server-side cursor."""
        try:
            streaming = self._conn.execution_options(stream_results=True)
            result = streaming.exec_driver_sql(query, tuple(params))
            columns = list(result.keys())
            for part in result.partitions(chunk_rows):
                yield [dict(zip(columns, row, strict=True)) for row in part]
        except SQLAlchemyError as exc:
            raise StorageError(
                f"cannot read from {self._what} {self.name}: {type(exc).__name__}"
            ) from None

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()
