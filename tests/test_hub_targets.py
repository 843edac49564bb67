"""The hubs the contract tests can run against (tests/hub_fixtures.py), checked end to end.

A second local hub started *without* ``--test-faults`` stands in for a real gateway: the
admin API and nothing else. Against it:

- a disposable hub is wiped through the gateway's public API only, a shared one never
  loses anything the tests did not create;
- ``HUBKIT_TEST_HUB_DISPOSABLE`` is read strictly, and a bad value stops the session first;
- a pytest run in a subprocess over one test of each kind shows which run and which skip,
  with which kind of reason, with and without ``HUBKIT_TEST_HUB_DISPOSABLE=1``.

The full count over every hub test module is ``make test-remote-hub``
(scripts/remote_hub_contract.py: about a minute per mode, too slow to run here).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from hub_fixtures import (
    DISPOSABLE_SKIP,
    LOCAL_HUB_SKIP,
    SWITCHES_SKIP,
    RemoteHub,
    disposable_setting,
)

from hubkit.domain import UnitCosts
from hubkit.hub import HubClient, LocalHubProcess, SyncUpdate, start_local_hub

REPO = Path(__file__).resolve().parent.parent
BASE = "/api/ai-providers"


@functools.cache
def _script() -> ModuleType:
    """scripts/remote_hub_contract.py (``make test-remote-hub``), imported."""
    spec = importlib.util.spec_from_file_location(
        "remote_hub_contract", REPO / "scripts" / "remote_hub_contract.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[LocalHubProcess]:
    """A fresh local hub without the test switches: what a real gateway offers."""
    with start_local_hub(tmp_path / "standin.json") as hub:
        yield hub


def _fill(standin: LocalHubProcess) -> None:
    """Two providers, a live and a deprecated rate, a credential: what a used hub holds."""
    with HubClient(standin.url, standin.token) as client:
        openai = client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
        client.create_provider("xai", "xAI", base_url="https://api.x.ai/v1")
        costs = {"input": "0.000001", "output": "0.000002"}
        for model in ("kept", "retired"):
            client.create_rate(
                openai.id, model=model, type="chatCompletion", input_rate=1, output_rate=1,
                unit_costs=costs,
            )  # fmt: skip
        client.create_credential(openai.id, "main", "sk-proj-standinabcdefghij1234")
        kept = SyncUpdate("openai", "kept", UnitCosts(Decimal("0.000001"), Decimal("0.000002")))
        client.sync_rates([kept], dry_run=False, deprecate_unmatched=True)
        assert [r.model for r in client.list_rates(openai.id, include_deprecated=True)
                if r.deprecated] == ["retired"]  # fmt: skip


def _contents(standin: LocalHubProcess) -> tuple[list[str], int, int]:
    """(provider names, rates with deprecated ones, credentials) on the hub."""
    with HubClient(standin.url, standin.token) as client:
        providers = client.list_providers()
        rates = client.list_rates_page(page_size=1, include_deprecated=True).count
    return [p.name for p in providers], rates, sum(len(p.credentials) for p in providers)


# --- the setting --------------------------------------------------------------------------------


def test_disposable_is_1_0_or_empty_and_needs_a_url() -> None:
    url = "http://127.0.0.1:9"
    assert disposable_setting("1", url) is True
    for off in (None, "", "0", " 0 "):
        assert disposable_setting(off, url) is False
        assert disposable_setting(off, None) is False  # nothing asked, nothing to check
    for bad in ("yes", "true", "2", "01"):
        with pytest.raises(pytest.UsageError, match=f"HUBKIT_TEST_HUB_DISPOSABLE='{bad}'"):
            disposable_setting(bad, url)
    with pytest.raises(pytest.UsageError, match="HUBKIT_TEST_HUB_URL is not set"):
        disposable_setting("1", None)


# --- reset on a hub given by URL ------------------------------------------------------------------


def test_a_shared_hub_loses_only_what_the_tests_tracked(standin: LocalHubProcess) -> None:
    _fill(standin)
    shared = RemoteHub(standin.url, standin.token)
    created = shared.provider("deepseek")  # new: tracked
    assert shared.provider("openai").name == "openai"  # already there: not tracked
    shared.reset()
    assert _contents(standin) == (["openai", "xai"], 2, 1)
    assert created.name == "deepseek"
    with pytest.raises(RuntimeError, match="not disposable"):
        shared.wipe()
    shared.stop()  # the session's end leaves a shared hub alone too
    assert _contents(standin) == (["openai", "xai"], 2, 1)


def test_a_disposable_hub_is_wiped_through_the_gateway_api(standin: LocalHubProcess) -> None:
    _fill(standin)
    # the stand-in has no test switches: the wipe can only have used the admin API
    switch = httpx.post(
        f"{standin.url}/__test__/reset", headers={"Authorization": f"Bearer {standin.token}"}
    )
    assert switch.status_code == 404
    disposable = RemoteHub(standin.url, standin.token, disposable=True)
    assert "disposable=True" in repr(disposable) and standin.token not in repr(disposable)
    disposable.reset()
    assert _contents(standin) == ([], 0, 0)
    disposable.provider("openai")
    disposable.stop()  # the session's end wipes it again
    assert _contents(standin) == ([], 0, 0)


# --- whole sessions in a subprocess -------------------------------------------------------------


def _pytest(
    tmp_path: Path, env_extra: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBKIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(env_extra)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
           f"--basetemp={tmp_path / 'inner'}", *args]  # fmt: skip
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # a pytest session in a subprocess
def test_a_bad_setting_stops_the_session_before_any_test(tmp_path: Path) -> None:
    run = _pytest(
        tmp_path, {"HUBKIT_TEST_HUB_DISPOSABLE": "1"}, "tests/test_hub_server.py::test_health"
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "HUBKIT_TEST_HUB_URL is not set" in run.stderr
    assert "passed" not in run.stdout and "skipped" not in run.stdout


#: One test of each kind: test id → (outcome on a shared hub, outcome on a disposable one),
#: an outcome being "passed" or the kind of skip reason.
KINDS_OF_TEST = {
    # any hub: creates only tracked things
    "tests/test_hub_server.py::test_duplicate_provider_name_is_409": ("passed", "passed"),
    # needs an empty hub (exact counts), said in the test
    "tests/test_hub_server.py::test_paged_list_filters_orders_and_caps_page_size": (
        DISPOSABLE_SKIP, "passed",
    ),
    # needs an empty hub, said by the module's hub_needs mark
    "tests/test_hub_plan.py::test_an_empty_store_against_an_empty_hub_plans_nothing": (
        DISPOSABLE_SKIP, "passed",
    ),
    # a test's own mark (switches) overrides its module's (disposable)
    "tests/test_hub_plan.py::test_bootstrap_fills_an_empty_store_and_then_the_plan_is_empty": (
        SWITCHES_SKIP, SWITCHES_SKIP,
    ),
    "tests/test_hub_server.py::test_status_faults_hit_matching_requests_only_and_are_counted": (
        SWITCHES_SKIP, SWITCHES_SKIP,
    ),
    "tests/test_hub_server.py::test_a_bad_key_is_refused_and_nothing_is_stored": (
        LOCAL_HUB_SKIP, LOCAL_HUB_SKIP,
    ),
}  # fmt: skip


def _outcomes(tmp_path: Path, standin: LocalHubProcess, mode: str) -> dict[str, str]:
    report = tmp_path / f"{mode}.xml"
    env = {"HUBKIT_TEST_HUB_URL": standin.url, "HUBKIT_TEST_HUB_TOKEN": standin.token}
    if mode == "disposable":
        env["HUBKIT_TEST_HUB_DISPOSABLE"] = "1"
    run = _pytest(tmp_path, env, f"--junitxml={report}", *KINDS_OF_TEST)
    assert run.returncode == 0, run.stdout + run.stderr
    results = _script().read_junit(report, mode).results
    return {test: kind or status for test, (status, kind) in results.items()}


@pytest.mark.slow  # a pytest session in a subprocess
def test_each_kind_runs_or_skips_as_its_hub_allows(
    tmp_path: Path, standin: LocalHubProcess
) -> None:
    _fill(standin)  # somebody's data, on a hub shared with them
    shared = _outcomes(tmp_path, standin, "shared")
    assert shared == {test: on_shared for test, (on_shared, _) in KINDS_OF_TEST.items()}
    assert _contents(standin) == (["openai", "xai"], 2, 1)  # all still there, nothing added

    disposable = _outcomes(tmp_path, standin, "disposable")
    assert disposable == {test: on_disposable for test, (_, on_disposable) in KINDS_OF_TEST.items()}
    assert _contents(standin) == ([], 0, 0)  # wiped, and left empty


def test_the_count_script_finds_every_module_that_uses_the_hub() -> None:
    found = {p.name for p in _script().hub_test_files()}
    assert {"test_hub_client.py", "test_hub_server.py", "test_hub_apply.py", "test_hub_plan.py",
            "test_hub_cli.py", "test_bounds_hub.py", "test_jobs_push.py",
            "test_widgets_hub_sync.py", "test_localhub_rules.py"} <= found  # fmt: skip
    assert "test_hub_targets.py" not in found  # no hub fixture here: it starts its own
    assert _script().skip_kind(f"Skipped: {SWITCHES_SKIP}: x") == SWITCHES_SKIP
    assert _script().skip_kind("Skipped: PostgreSQL is missing") == "other"
