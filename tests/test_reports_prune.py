"""``reports prune`` deletes only what hubkit made: marked run folders, never symlinks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from hubkit import _files
from hubkit._files import new_run_folder, write_summary
from hubkit.cli import main
from hubkit.config import get_settings
from hubkit.jobs import prune


def _run(reports: Path, stamp: str, job: str = "bulk-rate-update") -> Path:
    folder = new_run_folder(reports, job)
    target = reports / f"{stamp}-{job}"
    folder.rename(target)
    _files.mark_run_folder(target)  # the marker names the folder it belongs to
    write_summary(target, {"run_id": target.name, "job": job, "status": "ok"})
    return target


def test_new_run_folders_are_marked_and_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = new_run_folder(tmp_path / "reports", "bulk-rate-update")
        summary = write_summary(folder, {"run_id": folder.name})
    finally:
        os.umask(old)
    assert _files.has_run_marker(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(summary.stat().st_mode) == 0o600


def test_prune_keep_0_leaves_user_folders_and_symlinks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = get_settings().reports_dir
    ours = [_run(reports, f"2025010{d}T000000Z") for d in (1, 2, 3)]
    # a user's folder that merely looks like a run, with a precious file
    user = reports / "20250101T000000Z-my-notes"
    user.mkdir()
    (user / "notes.txt").write_text("mine\n")
    # a summary naming another folder does not make a folder hubkit's
    fake = reports / "20250104T000000Z-copied"
    fake.mkdir()
    (fake / "summary.json").write_text(json.dumps({"run_id": "20250101T000000Z-other"}))
    # a symlink named like a run, sorting between hubkit's runs, pointing at user data
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    link = reports / "20250102T120000Z-link"
    link.symlink_to(outside, target_is_directory=True)

    assert main(["reports", "prune", "--keep", "0"]) == 0
    out = capsys.readouterr().out
    assert all(not p.exists() for p in ours)
    assert (user / "notes.txt").read_text() == "mine\n"
    assert fake.is_dir()
    assert link.is_symlink() and (outside / "keep.txt").exists()
    assert "skipped 20250102T120000Z-link: a symlink" in out
    assert "skipped 20250101T000000Z-my-notes" in out
    assert "removed 3 run folders" in out


def test_prune_recognises_runs_from_before_the_marker() -> None:
    reports = get_settings().reports_dir
    legacy = reports / "20240101T000000Z-bulk-rate-update"
    legacy.mkdir(parents=True)
    (legacy / "summary.json").write_text(json.dumps({"run_id": legacy.name}))
    result = prune(reports, keep=0)
    assert result.removed == (legacy,) and not legacy.exists()


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("injected: this value cannot be written")

    __repr__ = __str__


def test_a_failed_csv_write_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    import pandas as pd

    from hubkit.jobs.reports import write_changes

    folder = new_run_folder(tmp_path, "bulk-rate-update")
    good = write_changes(folder, pd.DataFrame({"model": [f"m{i}" for i in range(100)]}))
    before = good.read_bytes()
    bad = pd.DataFrame({"model": [f"m{i}" for i in range(99)] + [_Unprintable()]})
    with pytest.raises(RuntimeError, match="injected"):
        write_changes(folder, bad)
    assert good.read_bytes() == before
    assert stat.S_IMODE(good.stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []
