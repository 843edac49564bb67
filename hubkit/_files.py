"""Files hubkit writes: atomically, and private to the operator by default.

One helper for every file a reader may look at while it is being (re)written (run
summaries, CSVs, the runs index, plan files, the local hub's state): the bytes go to a
temporary file beside the target, are flushed to disk, and ``os.replace`` swaps it in, so a
reader, a concurrent index rebuild or a crash sees the old file or the new one, never half.

Modes are set with ``fchmod``/``chmod`` on the file itself, not left to the umask: reports
and state files hold operator data (rates, parameters, the local hub's sealed keys), so they
are ``0600`` and the folders hubkit makes for them ``0700`` whatever the shell's umask.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

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
    path: Path, write: Callable[[Path], None], *, mode: int = PRIVATE_FILE
) -> Path:
    """Let ``write(temp_path)`` fill a temp file beside ``path``, then swap it in.

    For writers that want a path (pandas ``to_csv``, nbconvert, sqlite backups).
    """

    def fill(fd: int, tmp: Path) -> None:
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())

    return _replace_into(Path(path), fill, mode)


def atomic_write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """A frame as CSV (Decimals as plain strings, see :func:`hubkit.frames.to_csv`)."""
    from hubkit.frames import to_csv

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
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        # mkstemp makes 0600 already; chmod says what we want whatever the umask
        os.fchmod(fd, mode)
        write(fd, tmp)
        os.chmod(tmp, mode)  # a path writer may have recreated the file
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ---- run folders -------------------------------------------------------------------------
#: written in every run/report folder hubkit creates; ``reports prune`` deletes only those
RUN_MARKER = ".hubkit-run"


def new_run_folder(reports_dir: Path, base: str) -> Path:
    """Create ``<reports>/<base>/`` (``-2``, ``-3``… if taken), 0700, with the marker.

    The marker (holding the folder's own name) is what makes a folder hubkit's to delete:
    a user folder that merely looks like a run never carries it.
    """
    if not reports_dir.exists():
        private_dir(reports_dir)
    for n in range(1, 1000):
        folder = reports_dir / (base if n == 1 else f"{base}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        os.chmod(folder, PRIVATE_DIR)
        mark_run_folder(folder)
        return folder
    raise RuntimeError(f"cannot create a run folder for {base} in {reports_dir}")


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
