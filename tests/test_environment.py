"""The environment `make venv` builds is exactly the lock: nothing newer, nothing extra.

A fresh clone's `make test` must test the versions the lock names (requirements/lock.txt),
not whatever PyPI serves that day. This reads what is installed in the interpreter running
the tests (the project's .venv under `make test`) and compares it with the lock.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements" / "lock.txt"
UV_LOCK = REPO / "requirements" / "uv.txt"
# Not in the lock on purpose: the venv's own pip (bootstraps uv) and hubkit itself (editable).
_OUTSIDE_LOCK = {"pip", "hubkit"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            pins[_normalise(match[1])] = match[2]
    return pins


def _installed() -> dict[str, str]:
    return {_normalise(d.metadata["Name"]): d.version for d in metadata.distributions()}


def _lock_hashes(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            current = _normalise(match[1])
            counts[current] = 0
        elif current and line.strip().startswith("--hash=sha256:"):
            counts[current] += 1
    return counts


def test_every_locked_package_has_hashes_and_uv_agrees_in_both_files() -> None:
    hashes = _lock_hashes(LOCK)
    assert len(hashes) > 100, "the lock should hold the whole dependency set"
    assert [name for name, n in hashes.items() if n == 0] == []
    assert _pins(UV_LOCK) == {"uv": _pins(LOCK)["uv"]}


def test_every_direct_dependency_of_pyproject_is_locked() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in ("dev", "postgres", "scale"):
        wanted += project["optional-dependencies"][extra]
    names = {_normalise(re.split(r"[\[<>=!~ ;]", spec, maxsplit=1)[0]) for spec in wanted}
    assert names - set(_pins(LOCK)) == set()


@pytest.mark.skipif(
    Path(sys.prefix).resolve() != (REPO / ".venv").resolve(),
    reason="compares the project's .venv with the lock; this interpreter is another environment",
)
def test_the_venv_holds_exactly_the_locked_versions() -> None:
    locked = _pins(LOCK)
    installed = _installed()
    wrong = {
        name: (version, installed.get(name))
        for name, version in locked.items()
        if installed.get(name) != version
    }
    extra = sorted(set(installed) - set(locked) - _OUTSIDE_LOCK)
    assert wrong == {}, "locked version != installed version; run `make venv`"
    assert extra == [], "installed but not locked; run `make venv` (it syncs .venv to the lock)"
