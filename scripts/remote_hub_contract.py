"""Run the hub contract tests against a stand-in for a real hub, and count what runs.

    python scripts/remote_hub_contract.py            # both modes against a stand-in hub
    python scripts/remote_hub_contract.py --local    # and the normal run (bundled hub) too
    python scripts/remote_hub_contract.py -k margin  # extra arguments go to pytest

The stand-in is the bundled local hub started *without* ``--test-faults``, as an operator's
``hub serve-local`` runs: the gateway's API and nothing else, no ``/__test__`` switches.
Each mode gets a fresh, empty stand-in and one ``python -m pytest`` over every test module
that uses the ``hub`` (or ``local_hub``) fixture, with

- ``remote``: ``HUBKIT_TEST_HUB_URL`` / ``HUBKIT_TEST_HUB_TOKEN`` pointing at it: the tests
  may only create (tracked) things there and delete what they created;
- ``disposable``: the same and ``HUBKIT_TEST_HUB_DISPOSABLE=1``: the hub may be changed
  and wiped, so the tests that need an empty hub run too;
- ``local`` (with ``--local``): no variables, the bundled hub with its switches, as the
  normal suite runs (slowest: the fault tests run).

At the end a table gives passed / skipped / failed per mode and the skips per kind (the
skip reason's opening words, see tests/hub_fixtures.py). The exit status is 1 if any test
failed or errored in any mode. ``make test-remote-hub`` runs this.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
HUB_FIXTURES = {"hub", "local_hub"}
# The three kinds of skip against a hub given by URL (tests/hub_fixtures.py), and the rest.
KINDS = ("local hub's switches only", "local hub itself only", "disposable hub only")


def hub_test_files(tests: Path = TESTS) -> list[Path]:
    """Test modules with a function (test or fixture) taking the ``hub``/``local_hub`` fixture."""
    found = []
    for path in sorted(tests.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if HUB_FIXTURES & {a.arg for a in node.args.args + node.args.kwonlyargs}:
                    found.append(path)
                    break
    return found


@dataclass
class Outcome:
    mode: str
    #: test id → (``passed`` / ``skipped`` / ``failed``, the skip's kind or "")
    results: dict[str, tuple[str, str]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def counts(self) -> Counter[str]:
        return Counter(status for status, _ in self.results.values())

    @property
    def kinds(self) -> Counter[str]:
        return Counter(kind for status, kind in self.results.values() if status == "skipped")

    @property
    def failures(self) -> list[str]:
        return [name for name, (status, _) in self.results.items() if status == "failed"]


def skip_kind(message: str) -> str:
    """The kind a skip reason opens with (``other`` for skips that are not about the hub)."""
    text = message.removeprefix("Skipped: ")
    return next((kind for kind in KINDS if text.startswith(kind)), "other")


def read_junit(path: Path, mode: str) -> Outcome:
    """A JUnit report read: each test's outcome (ids as ``tests/x.py::name[param]``)."""
    outcome = Outcome(mode)
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        outcome.seconds += float(suite.get("time", 0))
    for case in root.iter("testcase"):
        module = case.get("classname", "").replace(".", "/")  # tests.test_x: no classes here
        test_id = f"{module}.py::{case.get('name')}"
        if (skipped := case.find("skipped")) is not None:
            outcome.results[test_id] = ("skipped", skip_kind(skipped.get("message", "")))
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome.results[test_id] = ("failed", "")
        else:
            outcome.results[test_id] = ("passed", "")
    return outcome


def run_mode(mode: str, files: Sequence[Path], pytest_args: Sequence[str], tmp: Path) -> Outcome:
    from hubkit.localhub.process import start_local_hub

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBKIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    report = tmp / f"{mode}.xml"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
           f"--junitxml={report}", f"--basetemp={tmp / mode}",
           *(str(f.relative_to(REPO)) for f in files), *pytest_args]  # fmt: skip
    print(f"== {mode}: {' '.join(cmd[1:])}", flush=True)
    if mode == "local":
        subprocess.run(cmd, env=env, cwd=REPO, check=False)
    else:
        with start_local_hub(tmp / f"{mode}-hub.json") as standin:  # no --test-faults
            env["HUBKIT_TEST_HUB_URL"] = standin.url
            env["HUBKIT_TEST_HUB_TOKEN"] = standin.token
            if mode == "disposable":
                env["HUBKIT_TEST_HUB_DISPOSABLE"] = "1"
            subprocess.run(cmd, env=env, cwd=REPO, check=False)
    if not report.exists():
        raise SystemExit(f"{mode}: pytest wrote no report (see its output above)")
    return read_junit(report, mode)


def table(outcomes: Sequence[Outcome]) -> str:
    columns = ["passed", "skipped", "failed", *KINDS, "other"]
    head = ["mode", *columns, "seconds"]
    rows = [
        [o.mode, *(str(o.counts[c]) for c in columns[:3]), *(str(o.kinds[k]) for k in columns[3:]),
         f"{o.seconds:.0f}"]
        for o in outcomes
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                  enumerate(zip(row, widths, strict=True)))
        for row in [head, *rows]
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    if str(REPO) not in sys.path:  # this checkout's hubkit, whatever the venv points at
        sys.path.insert(0, str(REPO))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--local", action="store_true", help="also run against the bundled hub")
    args, pytest_args = parser.parse_known_args(argv)
    files = hub_test_files()
    modes = ["remote", "disposable", *(["local"] if args.local else [])]
    with tempfile.TemporaryDirectory(prefix="hubkit-remote-hub-") as tmp:
        outcomes = [run_mode(mode, files, pytest_args, Path(tmp)) for mode in modes]
    print(f"\n{len(files)} test modules use the hub fixture: {', '.join(f.name for f in files)}")
    print(table(outcomes))
    failed = [(o.mode, name) for o in outcomes for name in o.failures]
    for mode, name in failed:
        print(f"FAILED ({mode}) {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
