"""Style, types and layers are part of the build: CI fails when ruff, mypy or import-linter
would complain, or when a private name is imported across packages.

These are the checks `make lint` runs, run the same way (mypy and import-linter read their
config, strict for `hubkit/` and the contracts, from pyproject.toml).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
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


def test_import_contracts_are_kept() -> None:
    # `lint-imports` with no arguments reads [tool.importlinter], exactly as in `make lint`
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # every declared contract was checked and kept (an empty list would pass vacuously)
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    assert {c["type"] for c in contracts} >= {"layers", "forbidden", "acyclic_siblings"}
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout, result.stdout


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _package_of(path: Path) -> str:
    """The dotted package a file under the repository belongs to (``tests`` for a test)."""
    # a package's __init__ belongs to the package, a module to its parent: both the folder
    return ".".join(path.relative_to(REPO).parent.parts)


def private_imports(path: Path, package: str | None = None) -> list[str]:
    """``from hubkit.x import _name`` in ``path`` where ``_name`` is not a module and the
    file is not in hubkit.x's own package: a private name used across packages."""
    own = _package_of(path) if package is None else package
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        if node.module.split(".")[0] != "hubkit":
            continue
        source = REPO.joinpath(*node.module.split("."))
        home = node.module if source.is_dir() else node.module.rpartition(".")[0]
        for alias in node.names:
            if not _is_private(alias.name):
                continue
            target = source / alias.name
            if target.is_dir() or target.with_suffix(".py").exists():
                continue  # a private module: the private_modules contract decides
            if own != home:
                found.append(f"{path.name}:{node.lineno}: {alias.name} from {node.module}")
    return found


def test_private_names_stay_in_their_package() -> None:
    # a name shared across packages is part of an interface: make it public, or move it
    files = [p for root in ("hubkit", "tests", "benchmarks", "scripts")
             for p in sorted((REPO / root).rglob("*.py"))]  # fmt: skip
    offenders = [line for path in files for line in private_imports(path)]
    assert offenders == []


def test_the_private_name_check_can_fail(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from hubkit.domain import _bounded\n"  # a private name from another package
        "from hubkit import _files\n"  # a private module: import-linter's contract
        "from hubkit.domain import RateType\n",
        encoding="utf-8",
    )
    assert private_imports(probe, "tests") == ["probe.py:1: _bounded from hubkit.domain"]
    # the same import inside the module's own package is fine
    assert private_imports(probe, "hubkit") == []
