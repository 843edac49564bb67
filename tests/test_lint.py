"""Style and types are part of the build: CI fails when ruff or mypy would complain.

These are the checks `make lint` runs, run the same way (mypy reads its config, strict for
`hubkit/`, from pyproject.toml).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TARGETS = [str(REPO / name) for name in ("hubkit", "tests", "benchmarks", "scripts")]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *TARGETS],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_ruff_check_is_clean() -> None:
    result = _ruff("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _ruff("format", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # about a minute with a cold .mypy_cache, seconds with a warm one
def test_mypy_strict_is_clean() -> None:
    # no arguments: `files` and `strict` come from [tool.mypy], exactly as in `make lint`
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # and it checked every module of the package (a narrowed `files` would pass vacuously)
    modules = len(list((REPO / "hubkit").rglob("*.py")))
    assert f"no issues found in {modules} source files" in result.stdout, result.stdout
