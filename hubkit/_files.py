"""Files hubkit writes: atomically, and private to the operator by default.

The one home of three things every writer shares:

- **atomic writes** (:func:`atomic_write_bytes` / ``_text`` / ``_with`` / ``_csv``) for every
  file a reader may look at while it is being (re)written (run summaries, CSVs, the runs
  index, plan files, the key file, database backups): the bytes go to a temporary file
  beside the target, are flushed to disk, and ``os.replace`` swaps it in (or, for a file
  that must not be clobbered, ``os.link`` puts it in place), so a reader, a concurrent index
  rebuild or a crash sees the old file or the new one, never half;
- **JSON files** (:func:`json_text`, :func:`write_json`, :func:`read_json_object`):
  Decimals as plain strings, datetimes as ISO UTC, indented, UTF-8;
- **CSV of frames** (:func:`to_csv`, :func:`plain_frame`): Decimals as plain strings;
- **run folders** under ``reports/`` (:func:`new_run_folder`, :func:`ensure_run_folder`,
  the marker, ``summary.json``): what jobs, hub plans/applies and scenario exports write
  and what the reports index and ``reports prune`` read.

Modes are set with ``fchmod``/``chmod`` on the file itself, not left to the umask: reports
and state files hold operator data (rates, parameters, the local hub's sealed keys), so they
are ``0600`` and the folders hubkit makes for them ``0700`` whatever the shell's umask.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubkit.decimals import plain

if TYPE_CHECKING:
    import pandas as pd

#: files hubkit creates: the operator only
PRIVATE_FILE = 0o600
#: folders hubkit creates (run folders, report folders): the operator only
PRIVATE_DIR = 0o700


def atomic_write_bytes(
    path: Path, data: bytes, *, mode: int = PRIVATE_FILE, fsync: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically with permission ``mode``."""

    def write(fd: int, _tmp: Path) -> None:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())

    return _replace_into(Path(path), write, mode)


def atomic_write_text(
    path: Path, text: str, *, mode: int = PRIVATE_FILE, fsync: bool = True
) -> Path:
    """Write ``text`` (UTF-8, newlines untouched) to ``path`` atomically with ``mode``."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode, fsync=fsync)


def atomic_write_with(
    path: Path,
    write: Callable[[Path], None],
    *,
    mode: int = PRIVATE_FILE,
    overwrite: bool = True,
) -> Path:
    """Let ``write(temp_path)`` fill a temp file beside ``path``, then swap it in.

    For writers that want a path (pandas ``to_csv``, nbconvert, sqlite backups, pg_dump).
    With ``overwrite=False`` the finished file is linked into place instead, which raises
    ``FileExistsError`` if a file appeared at ``path`` meanwhile (no check-then-write race);
    the temp file is removed either way.
    """

    def fill(fd: int, tmp: Path) -> None:
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())

    return _replace_into(Path(path), fill, mode, overwrite=overwrite)


def plain_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with Decimals as plain decimal strings (``0.00000035``, never ``3.5E-7``).

    Arrow decimal columns (exact amounts, e.g. a reconciliation's) too: their values read
    back as Decimal, their missing ones become empty cells.
    """
    out = frame.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if dtype == object:  # noqa: E721 (a dtype, not a type)
            out[col] = out[col].map(lambda v: plain(v) if isinstance(v, Decimal) else v)
        elif str(getattr(dtype, "pyarrow_dtype", "")).startswith("decimal"):
            values = out[col].astype(object)
            out[col] = values.map(lambda v: plain(v) if isinstance(v, Decimal) else None)
    return out


def to_csv(frame: pd.DataFrame, path: Any) -> None:
    """CSV with Decimals written as plain decimal strings (never ``8e-08``)."""
    plain_frame(frame).to_csv(path, index=False)


def atomic_write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """A frame as CSV (Decimals as plain strings, see :func:`to_csv`)."""
    return atomic_write_with(path, lambda tmp: to_csv(frame, tmp))


def private_dir(path: Path, *, exist_ok: bool = True) -> Path:
    """``mkdir`` (parents included) and chmod the folder itself ``0700``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(exist_ok=exist_ok)
    os.chmod(path, PRIVATE_DIR)
    return path


def _replace_into(
    path: Path,
    write: Callable[[int, Path], None],
    mode: int,
    *,
    overwrite: bool = True,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        # mkstemp makes 0600 already; chmod says what we want whatever the umask
        os.fchmod(fd, mode)
        write(fd, tmp)
        os.chmod(tmp, mode)  # a path writer may have recreated the file
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # FileExistsError if the name was taken meanwhile
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ---- JSON files ----------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Decimals as plain strings, datetimes as ISO UTC, paths as text; recursively."""
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def json_text(data: Any) -> str:
    """``data`` (through :func:`jsonable`) as indented JSON, non-ASCII kept, one final newline."""
    return json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n"


def write_json(path: Path, data: Any) -> Path:
    """:func:`json_text` of ``data``, written atomically (0600)."""
    return atomic_write_text(path, json_text(data))


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` if it is missing, damaged or not an object.

    For files hubkit wrote itself (summaries): a half-made or foreign run folder is
    skipped by its reader, not an error. Files people give are read by
    :func:`hubkit._readers.loads_json`, which says what is wrong instead.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):  # ValueError: bad JSON or not UTF-8
        return None
    return data if isinstance(data, dict) else None


# ---- run folders -------------------------------------------------------------------------
#: written in every run/report folder hubkit creates; ``reports prune`` deletes only those
RUN_MARKER = ".hubkit-run"
#: every run folder's summary, the one file the reports index reads
SUMMARY = "summary.json"


def run_stamp(at: datetime | None = None) -> str:
    """The UTC time that starts a run folder's name (and run id): ``20250101T020000Z``."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def new_run_folder(reports_dir: Path, kind: str, at: datetime | None = None) -> Path:
    """Create ``<reports>/<UTC time>-<kind>/`` (``-2``, ``-3``… if taken), 0700, marked.

    The marker (holding the folder's own name) is what makes a folder hubkit's to delete:
    a user folder that merely looks like a run never carries it.
    """
    base = f"{run_stamp(at)}-{kind}"
    for n in range(1, 1000):
        folder = reports_dir / (base if n == 1 else f"{base}-{n}")
        if _claim_run_folder(folder):
            return folder
    raise RuntimeError(f"cannot create a run folder for {base} in {reports_dir}")


def ensure_run_folder(folder: Path) -> Path:
    """A run folder named by its caller (the job runner): created (0700, marked) unless it
    exists already."""
    if not folder.exists():
        _claim_run_folder(folder)
    return folder


def _claim_run_folder(folder: Path) -> bool:
    """Make ``folder`` (0700, marked; its reports folder 0700 if new); False if it exists."""
    if not folder.parent.exists():
        private_dir(folder.parent)
    try:
        folder.mkdir()
    except FileExistsError:
        return False
    os.chmod(folder, PRIVATE_DIR)
    mark_run_folder(folder)
    return True


def mark_run_folder(folder: Path) -> None:
    atomic_write_text(folder / RUN_MARKER, f"{folder.name}\n", fsync=False)


def has_run_marker(folder: Path) -> bool:
    """True when ``folder`` holds hubkit's marker naming this very folder (no symlinks)."""
    marker = folder / RUN_MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        return marker.read_text(encoding="utf-8").strip() == folder.name
    except (OSError, UnicodeDecodeError):
        return False


def write_summary(folder: Path, summary: Mapping[str, Any]) -> Path:
    """``<folder>/summary.json`` (atomically: the index may be read meanwhile)."""
    return write_json(folder / SUMMARY, summary)


def read_summary(folder: Path) -> dict[str, Any] | None:
    """The folder's summary, or ``None`` while it has none (or a damaged one)."""
    return read_json_object(folder / SUMMARY)
