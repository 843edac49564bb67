"""Run the fault, concurrency, lock, browser and job tests N times under CPU load.

    python scripts/soak.py                 # 20 rounds, every core kept busy meanwhile
    python scripts/soak.py --count 5 -k drop --no-hog
    python scripts/soak.py --parallel 2   # two rounds at a time: more load, less wall time

The selection is every test marked ``soak`` (``pytest.mark.soak``, registered in
pyproject.toml): modules that inject faults or race threads/processes mark themselves
with ``pytestmark``. Each round is a fresh ``python -m pytest`` process writing a JUnit
report into a temporary folder, with its own ``--basetemp`` (so no round, and no other pytest
on the machine, prunes another's temporary files), and no state leaks from one round into
the next. While the rounds run, one busy process per core loads the machine (a loaded CI box
is where timing assumptions break); the hog is always stopped, on Ctrl-C too. ``--parallel K``
runs K rounds at once on top of the hog: a harsher load in less wall time, since the rounds
together get a larger share of the CPUs the hog competes for.

At the end a table lists every test that failed in any round (failures/N) with its first
failure line, and the wall time per round; the exit status is 1 if anything failed. A
flaky test is fixed, never retried: there is deliberately no rerun option.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
MARKER = "soak"
# A module opts in with ``pytest.mark.soak`` somewhere in its text (pytestmark or a decorator).
_MARK_RE = re.compile(rf"\bmark\.{MARKER}\b")
# Each hog exits by itself once its parent (this script) is gone, even after a SIGKILL.
_HOG_CODE = (
    "import os\n"
    "parent = os.getppid()\n"
    "while os.getppid() == parent:\n"
    "    for _ in range(200_000):\n"
    "        pass\n"
)


@dataclass
class Round:
    number: int
    seconds: float
    returncode: int
    tests: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # test id → first failure line
    log: Path | None = None


def soak_files(tests_dir: Path = TESTS) -> list[Path]:
    """Test modules that carry the ``soak`` marker, in a stable order."""
    found = []
    for path in sorted(tests_dir.rglob("test_*.py")):
        if _MARK_RE.search(path.read_text(encoding="utf-8")):
            found.append(path)
    return found


def _test_id(case: ET.Element) -> str:
    # junit classname is "tests.e2e.test_voila" (or "...test_x.TestClass"): back to a node id
    classname = case.get("classname", "")
    name = case.get("name", "?")
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = REPO.joinpath(*parts[:cut]).with_suffix(".py")
        if candidate.is_file():
            rel = candidate.relative_to(REPO).as_posix()
            return "::".join([rel, *parts[cut:], name])
    return f"{classname}::{name}"


def read_report(path: Path) -> tuple[int, int, dict[str, str]]:
    """(tests, skipped, {failed test id: first line of its failure}) from a JUnit file."""
    root = ET.parse(path).getroot()
    tests = skipped = 0
    failed: dict[str, str] = {}
    for case in root.iter("testcase"):
        tests += 1
        if case.find("skipped") is not None:
            skipped += 1
        for kind in ("failure", "error"):
            problem = case.find(kind)
            if problem is not None:
                message = (problem.get("message") or problem.text or kind).strip()
                failed.setdefault(_test_id(case), f"{kind}: {message.splitlines()[0][:160]}")
    return tests, skipped, failed


@contextmanager
def cpu_hog(processes: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``processes`` busy Python processes, stopped (by their own pid) on the way out."""
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(processes):
            hogs.append(subprocess.Popen([sys.executable, "-c", _HOG_CODE]))
        yield hogs
    finally:
        for hog in hogs:
            if hog.poll() is None:
                hog.kill()
        for hog in hogs:
            hog.wait()


def _sigterm_as_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Running:
    """The pytest processes of the rounds under way, so an interrupt can stop every one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self.stopping = False

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.add(proc)
            stop = self.stopping
        if stop:  # started just as the interrupt came: stop it too
            _interrupt(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def interrupt_all(self) -> None:
        with self._lock:
            self.stopping = True
            procs = list(self._procs)
        for proc in procs:
            _interrupt(proc)


def run_round(
    number: int,
    files: Sequence[Path],
    out_dir: Path,
    pytest_args: Sequence[str],
    running: Running | None = None,
) -> Round:
    report = out_dir / f"round-{number:03d}.xml"
    log = out_dir / f"round-{number:03d}.log"
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "-m", MARKER, f"--junitxml={report}", f"--basetemp={out_dir / f'tmp-{number:03d}'}",
        *pytest_args, *(str(f.relative_to(REPO)) for f in files),
    ]  # fmt: skip
    started = time.monotonic()
    running = running or Running()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        running.add(proc)
        try:
            returncode = proc.wait()
        except KeyboardInterrupt:
            _interrupt(proc)
            raise
        finally:
            running.discard(proc)
    result = Round(number, time.monotonic() - started, returncode, log=log)
    if report.is_file():
        result.tests, result.skipped, result.failed = read_report(report)
    if returncode not in (0, 1) or (returncode == 1 and not result.failed):
        # pytest itself broke (collection error, crash, interrupted): that is a failure too
        result.failed.setdefault(f"<round {number}: pytest exited {returncode}>", f"see {log}")
    return result


def _interrupt(proc: subprocess.Popen[bytes]) -> None:
    # SIGINT, as Ctrl-C would: pytest then runs its fixtures' teardown (servers, PostgreSQL)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def summarise(rounds: Sequence[Round], count: int, wall: float) -> str:
    failures: Counter[str] = Counter()
    first_line: dict[str, str] = {}
    for r in rounds:
        for test_id, line in r.failed.items():
            failures[test_id] += 1
            first_line.setdefault(test_id, line)
    lines = []
    done = len(rounds)
    if failures:
        width = max(len(t) for t in failures)
        lines.append(f"{'test':<{width}}  failures/{done}")
        for test_id, n in sorted(failures.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"{test_id:<{width}}  {n}/{done}")
            lines.append(f"{'':<{width}}    {first_line[test_id]}")
    else:
        lines.append(f"no failures in {done} round(s)")
    if rounds:
        times = [r.seconds for r in rounds]
        lines.append(
            f"rounds: {done}/{count}, tests per round: {rounds[-1].tests} "
            f"({rounds[-1].skipped} skipped); seconds per round: min {min(times):.0f}, "
            f"mean {sum(times) / done:.0f}, max {max(times):.0f}"
        )
    lines.append(f"total wall time: {wall:.0f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", "-n", type=int, default=20, help="rounds (default 20)")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression, passed through")
    parser.add_argument("--no-hog", action="store_true", help="do not load the CPUs")
    parser.add_argument(
        "--hogs", type=int, default=os.cpu_count() or 1, help="busy processes (default: cores)"
    )
    parser.add_argument(
        "--parallel", type=int, default=1, help="rounds at once, on top of the hog (default 1)"
    )
    parser.add_argument("--timeout", type=int, default=900, help="pytest-timeout per test")
    parser.add_argument("--keep", action="store_true", help="keep the reports and logs")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.parallel < 1:
        parser.error("--parallel must be at least 1")
    files = soak_files()
    if not files:
        print(f"no test module is marked {MARKER!r}", file=sys.stderr)
        return 2
    pytest_args = [f"--timeout={args.timeout}"]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    hogs = 0 if args.no_hog else args.hogs
    out_dir = Path(tempfile.mkdtemp(prefix="hubkit-soak-"))
    print(
        f"soak: {args.count} round(s) of {len(files)} module(s), {hogs} CPU hog(s), "
        f"{args.parallel} round(s) at a time",
        flush=True,
    )
    for f in files:
        print(f"  {f.relative_to(REPO)}", flush=True)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    rounds: list[Round] = []
    started = time.monotonic()
    interrupted = False
    running = Running()
    pool = ThreadPoolExecutor(max_workers=args.parallel)
    try:
        with cpu_hog(hogs):
            futures = [
                pool.submit(run_round, number, files, out_dir, pytest_args, running)
                for number in range(1, args.count + 1)
            ]
            for future in as_completed(futures):
                r = future.result()
                rounds.append(r)
                status = "ok" if not r.failed else f"{len(r.failed)} FAILED"
                print(
                    f"round {r.number}/{args.count}: {r.tests} tests, {status}, {r.seconds:.0f} s",
                    flush=True,
                )
                for test_id in r.failed:
                    print(f"    {test_id}", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        running.interrupt_all()
        print("\ninterrupted: the hog is stopped; summary of the finished rounds", flush=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    rounds.sort(key=lambda r: r.number)
    print()
    print(summarise(rounds, args.count, time.monotonic() - started))
    failed = interrupted or any(r.failed for r in rounds)
    if failed or args.keep:
        print(f"reports and logs kept in {out_dir}")
    else:
        shutil.rmtree(out_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
