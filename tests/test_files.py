"""``hubkit._files``: the one atomic-write, JSON and run-folder helper every writer uses."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from hubkit import _files


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_writes_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        text = _files.atomic_write_text(tmp_path / "a.txt", "ä\n")
        with_writer = _files.atomic_write_with(tmp_path / "b.txt", lambda p: p.write_text("b"))
    finally:
        os.umask(old)
    assert text.read_bytes() == "ä\n".encode() and with_writer.read_text() == "b"
    for path in (text, with_writer):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _hidden(tmp_path) == []  # no temp file left beside them


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = _files.atomic_write_text(tmp_path / "keep.txt", "old")

    def half(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _files.atomic_write_with(target, half)
    assert target.read_text() == "old" and _hidden(tmp_path) == []


def test_without_overwrite_a_file_that_appeared_meanwhile_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "backup.db"

    def racing(path: Path) -> None:
        path.write_text("ours")
        target.write_text("theirs")  # someone else takes the name while we write

    with pytest.raises(FileExistsError):
        _files.atomic_write_with(target, racing, overwrite=False)
    assert target.read_text() == "theirs" and _hidden(tmp_path) == []
    fresh = _files.atomic_write_with(tmp_path / "new.db", lambda p: p.write_text("x"),
                                     overwrite=False)  # fmt: skip
    assert fresh.read_text() == "x" and stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_json_files_carry_exact_decimals_and_utc_times(tmp_path: Path) -> None:
    at = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)
    path = _files.write_json(
        tmp_path / "s.json", {"rate": Decimal("8E-8"), "at": at, "where": tmp_path, "n": (1, 2)}
    )
    assert path.read_text(encoding="utf-8").endswith("}\n")
    assert _files.read_json_object(path) == {
        "rate": "0.00000008", "at": "2025-01-01T02:00:00Z", "where": str(tmp_path), "n": [1, 2],
    }  # fmt: skip
    assert _files.json_text({"name": "café"}) == '{\n  "name": "café"\n}\n'


@pytest.mark.parametrize("body", [None, b"{half", b"\xff\xfe", b"[1, 2]"])
def test_a_missing_damaged_or_foreign_json_file_reads_as_none(
    tmp_path: Path, body: bytes | None
) -> None:
    path = tmp_path / "summary.json"
    if body is not None:
        path.write_bytes(body)
    assert _files.read_json_object(path) is None


def test_run_folders_are_stamped_numbered_marked_and_private(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    at = datetime(2025, 1, 1, 2, 0, tzinfo=UTC)
    first = _files.new_run_folder(reports, "hub-plan", at)
    second = _files.new_run_folder(reports, "hub-plan", at)
    assert (first.name, second.name) == ("20250101T020000Z-hub-plan", "20250101T020000Z-hub-plan-2")
    for folder in (reports, first, second):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert _files.has_run_marker(first) and _files.has_run_marker(second)
    _files.write_summary(first, {"run_id": first.name})
    assert _files.read_summary(first) == {"run_id": first.name}
    assert _files.read_summary(second) is None


def test_ensure_run_folder_makes_a_named_folder_once(tmp_path: Path) -> None:
    folder = tmp_path / "reports" / "20250101T020000Z-bulk-rate-update"
    assert _files.ensure_run_folder(folder) == folder
    assert _files.has_run_marker(folder) and stat.S_IMODE(folder.stat().st_mode) == 0o700
    (folder / "notebook.ipynb").write_text("{}")
    assert _files.ensure_run_folder(folder) == folder  # an existing one is left as it is
    assert (folder / "notebook.ipynb").exists()
