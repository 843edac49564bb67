"""``hubkit.hub``'s exports for notebooks, its submodules staying modules, and the local
hub kept out of the client's import path."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import hubkit.hub
from hubkit.hub.apply import apply
from hubkit.hub.plan import plan
from hubkit.hub.pull import bootstrap, pull
from hubkit.hub.verify import verify_against_hub_arithmetic

SUBMODULES = ("plan", "pull", "apply", "redact", "verify", "client", "models")


def test_submodules_are_not_shadowed_by_exports() -> None:
    for name in SUBMODULES:
        module = importlib.import_module(f"hubkit.hub.{name}")
        assert isinstance(module, ModuleType)
        assert getattr(hubkit.hub, name) is module, name
    # no exported name may be a submodule's (it would replace it on the package)
    names = {m.name for m in pkgutil.iter_modules(hubkit.hub.__path__)}
    assert not names & set(hubkit.hub.__all__)


def test_submodules_are_modules_in_a_fresh_interpreter() -> None:
    # the package imported on its own, before anything imports a submodule by name
    code = (
        "import types, hubkit.hub as h\n"
        f"bad = [n for n in {SUBMODULES!r} if not isinstance(getattr(h, n), types.ModuleType)]\n"
        "assert not bad, bad\n"
        "import sys; assert 'starlette' not in sys.modules and 'uvicorn' not in sys.modules\n"
        "local = sorted(m for m in sys.modules if m.startswith('hubkit.localhub'))\n"
        "assert not local, local\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_notebook_exports() -> None:
    assert hubkit.hub.plan_sync is plan
    assert hubkit.hub.apply_plan is apply
    assert hubkit.hub.pull_hub is pull
    assert hubkit.hub.bootstrap is bootstrap
    assert hubkit.hub.verify_against_hub_arithmetic is verify_against_hub_arithmetic
    for name in ("HubClient", "HubState", "Plan", "PlanItem", "ApplyReport", "start_local_hub"):
        assert name in hubkit.hub.__all__ and getattr(hubkit.hub, name) is not None
    assert all(hasattr(hubkit.hub, name) for name in hubkit.hub.__all__)


def test_the_client_reaches_the_local_hub_only_through_its_process_starter() -> None:
    # in a fresh interpreter: the client's modules, then the lazy export
    code = (
        "import sys, hubkit.hub, hubkit.cli, hubkit.hub.verify, hubkit.widgets\n"
        "before = sorted(m for m in sys.modules if m.startswith('hubkit.localhub'))\n"
        "from hubkit.hub import LocalHubProcess, start_local_hub\n"
        "import hubkit.localhub.process as p\n"
        "assert start_local_hub is p.start_local_hub and LocalHubProcess is p.LocalHubProcess\n"
        "after = sorted(m for m in sys.modules if m.startswith('hubkit.localhub'))\n"
        "print(before, after, 'starlette' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    # the starter only: no app, no state, no fault switches, no web framework
    assert done.stdout.split() == ["[]", "['hubkit.localhub',", "'hubkit.localhub.process']",
                                   "False"]  # fmt: skip
    assert "LocalHubProcess" in dir(hubkit.hub)
    with pytest.raises(AttributeError, match="no attribute 'LocalHub'"):
        hubkit.hub.LocalHub  # noqa: B018
