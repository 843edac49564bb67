"""Every ``benchmarks/bench_*.py`` runs in ``--smoke`` mode and reports a ratio.

Benchmarks measure speed against a baseline timed in the same run and print ratios; CI only
checks that they still run end to end on tiny inputs (no timing is asserted here).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("bench_*.py"))
TIMEOUT_S = 300


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[path.name for path in SCRIPTS])
def test_benchmark_smoke_run(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        cwd=BENCHMARKS.parent,  # as `make bench` runs them; outputs go to HUBKIT_REPORTS_DIR
        env=dict(os.environ),  # already isolated by the autouse _clean_env fixture
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"\bratio", output, re.IGNORECASE), output[-4000:]
