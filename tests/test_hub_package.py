"""``hubkit.hub``'s exports for notebooks, and its submodules staying modules."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from types import ModuleType

import hubkit.hub
from hubkit.hub.apply import apply
from hubkit.hub.plan import plan
from hubkit.hub.pull import bootstrap, pull
from hubkit.hub.verify import verify_against_hub_arithmetic

SUBMODULES = ("plan", "pull", "apply", "redact", "verify", "local", "client", "models")


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
