"""scripts/soak.py (`make soak`): selection, failure table, the CPU hog always stopped."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def _soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_script", REPO / "scripts" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


soak = _soak()


def test_the_marker_is_registered_and_selects_the_risky_modules() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    markers = config["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("soak:") for m in markers)
    names = {p.relative_to(REPO).as_posix() for p in soak.soak_files()}
    for module in (
        "tests/test_hub_server.py", "tests/test_hub_apply.py", "tests/test_hub_client.py",
        "tests/test_jobs_lock.py", "tests/test_jobs_notebooks.py", "tests/test_distributed.py",
        "tests/e2e/test_jupyterlab.py", "tests/e2e/test_voila.py",
    ):  # fmt: skip
        assert module in names, module
    assert "tests/test_soak.py" not in names  # this file names the marker only in text


def _junit(path: Path, cases: str) -> Path:
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite>{cases}</testsuite></testsuites>')
    return path


def test_failures_are_counted_per_test_id_across_rounds(tmp_path: Path) -> None:
    flaky = (
        '<testcase classname="tests.test_hub_server" name="test_drop[True]">'
        "<failure message=\"assert b'' == b'x'&#10;more\">tb</failure></testcase>"
    )
    ok = '<testcase classname="tests.test_hub_server" name="test_drop[True]"/>'
    skipped = '<testcase classname="tests.e2e.test_voila" name="test_v"><skipped/></testcase>'
    rounds = []
    for number, cases in enumerate([flaky + skipped, ok + skipped, flaky + skipped], start=1):
        tests, skips, failed = soak.read_report(_junit(tmp_path / f"{number}.xml", cases))
        rounds.append(soak.Round(number, 10.0 * number, 1 if failed else 0, tests, skips, failed))
    assert rounds[0].failed == {
        "tests/test_hub_server.py::test_drop[True]": "failure: assert b'' == b'x'"
    }
    table = soak.summarise(rounds, 3, 61.0)
    assert "tests/test_hub_server.py::test_drop[True]  2/3" in table
    assert "tests per round: 2 (1 skipped)" in table and "min 10, mean 20, max 30" in table
    assert "total wall time: 61 s" in table
    assert soak.summarise(rounds[1:2], 1, 5.0).startswith("no failures in 1 round(s)")


def test_the_hog_is_stopped_even_when_the_rounds_raise() -> None:
    with pytest.raises(KeyboardInterrupt), soak.cpu_hog(2) as hogs:
        pids = [h.pid for h in hogs]
        assert all(h.poll() is None for h in hogs)
        raise KeyboardInterrupt
    for hog in hogs:
        assert hog.returncode is not None
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.slow
def test_the_script_runs_rounds_and_exits_0_when_all_pass(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "scripts/soak.py", "--count", "2", "--no-hog", "-k", "lost_answer"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "round 2/2: 3 tests, ok" in done.stdout
    assert "no failures in 2 round(s)" in done.stdout


def test_rounds_run_side_by_side_each_in_its_own_basetemp(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "scripts/soak.py", "--count", "2", "--parallel", "2", "--no-hog",
         "--keep", "-k", "lost_answer"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 round(s) at a time" in done.stdout
    assert "no failures in 2 round(s)" in done.stdout
    (out_dir,) = tmp_path.glob("hubkit-soak-*")
    # each round's pytest kept its temporary files apart from the other's (and from any other
    # pytest on the machine, whose numbered-dir cleanup could otherwise prune them)
    assert (out_dir / "tmp-001").is_dir() and (out_dir / "tmp-002").is_dir()
    assert {p.name for p in out_dir.glob("round-*.xml")} == {"round-001.xml", "round-002.xml"}


def test_parallel_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        soak.main(["--parallel", "0"])
