"""``python -m hubkit hub …`` through ``hubkit.cli.main`` against the local hub, exit codes,
``hub serve-local`` in a subprocess, and ``start_local_hub``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from _hubsync import KEY, PRICE, assert_no_secret, hub_rates, priced_spec, seed_store

from hubkit.cli import main
from hubkit.hub import HubClient
from hubkit.localhub.process import main as localhub_main
from hubkit.localhub.process import start_local_hub
from hubkit.store import Store

if TYPE_CHECKING:
    from hub_fixtures import HubHandle

# Faults, races or timing: `make soak` runs these under CPU load.
pytestmark = [
    pytest.mark.soak,
    pytest.mark.hub_needs("disposable", "these tests need an empty hub"),
]

REPO_ROOT = Path(__file__).resolve().parent.parent


class Run:
    """``main(["hub", *argv])``, collecting every line printed (to scan for secrets)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.seen: list[str] = []

    def __call__(self, *argv: str) -> tuple[int, str]:
        code = main(["hub", *argv])
        captured = self.capsys.readouterr()
        text = captured.out + captured.err
        self.seen.append(text)
        return code, text


@pytest.fixture
def run(
    hub: HubHandle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Run]:
    monkeypatch.setenv("HUBKIT_HUB_URL", hub.url)
    monkeypatch.setenv("HUBKIT_HUB_TOKEN", hub.token)
    monkeypatch.setenv("HUBKIT_DATABASE_URL", f"sqlite:///{tmp_path / 'hubkit.db'}")
    runner = Run(capsys)
    yield runner
    assert_no_secret("\n".join(runner.seen), "CLI output")
    assert hub.token not in "\n".join(runner.seen)


def _store() -> Store:
    return Store.open()


@pytest.mark.hub_needs("switches", "counts the hub's writes")
def test_plan_apply_pull_health_session(hub: HubHandle, run: Run, tmp_path: Path) -> None:
    with _store() as store:
        seed_store(store)
    code, out = run("plan")
    assert code == 0 and "rates: 5 create" in out and "openai/gpt-4o (chatCompletion)" in out
    saved = tmp_path / "plan.json"
    code, out = run("plan", "--json", str(saved), "--csv", str(tmp_path / "plan.csv"), "--save")
    assert code == 0 and saved.exists() and (tmp_path / "plan.csv").exists()
    assert json.loads(saved.read_text())["counts"]["rate.create"] == 5

    code, out = run("apply")  # a dry run
    assert code == 0 and "dry run: nothing was written to the hub (add --yes" in out
    assert hub.stats()["writes"] == 0
    code, out = run("apply", "--plan", str(saved), "--yes", "--concurrency", "0")
    assert code == 2 and "concurrency must be a whole number from 1 to 32" in out
    assert hub.stats()["writes"] == 0
    code, out = run("apply", "--plan", str(saved), "--yes", "--concurrency", "4")
    assert code == 0 and "8 ok; complete" in out and "report: " in out
    reports = Path(os.environ["HUBKIT_REPORTS_DIR"])
    kinds = sorted(p.name.split("-", 1)[1] for p in reports.iterdir() if p.is_dir())
    assert kinds == ["hub-apply", "hub-apply-dry-run", "hub-plan"]

    code, out = run("plan")
    assert code == 0 and "nothing to do" in out
    code, out = run("pull")
    assert code == 0 and "2 providers, 1 credentials, 5 rates" in out
    assert "sk-p****************1234" in out and "claude-3-haiku" in out
    code, out = run("pull", "--csv", str(tmp_path / "pulled"))
    assert code == 0 and (tmp_path / "pulled" / "rates.csv").read_text().count("\n") == 6
    code, out = run("health")
    assert code == 0 and "openai/main: running" in out


@pytest.mark.hub_needs("switches")
def test_hub_errors_exit_7_and_a_missing_hub_exits_2(
    hub: HubHandle, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _store() as store:
        seed_store(store)
    hub.set_faults(fail_after_writes={"writes": 2})
    code, out = run("apply", "--yes")
    assert code == 7 and "failed" in out and "Injected fault" in out
    # the push said how it went as it went: items done / total and failures
    final = [line for line in out.splitlines() if line.startswith("progress: ")][-1]
    assert re.match(r"progress: (\d+)/\1 items · [\d.,]+ items/s · done · \d+ failed$", final), (
        final
    )
    hub.set_faults(status={"code": 500, "method": "GET"})
    code, out = run("pull")
    assert code == 7 and "error: GET /api/ai-providers → 500" in out
    hub.clear_faults()
    monkeypatch.delenv("HUBKIT_HUB_URL")
    code, out = run("plan")
    assert code == 2 and "set HUBKIT_HUB_URL" in out


@pytest.mark.hub_needs("fake_keys")
def test_pull_bootstrap_fills_an_empty_store_once(hub: HubHandle, run: Run) -> None:
    with hub.client() as client:
        openai = client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
        client.create_rate_from_spec(openai.id, priced_spec("openai", "gpt-4o", "1e-6", "4e-6"))
        client.create_credential(openai.id, "main", KEY)
    code, out = run("pull", "--bootstrap")
    assert code == 0 and "bootstrapped from" in out and "1 credentials need their keys" in out
    with _store() as store:
        assert [r.model for r in store.list_rates()] == ["gpt-4o"]
    code, out = run("pull", "--bootstrap")
    assert code == 4 and "empty store" in out


@pytest.mark.hub_needs("fake_keys")
def test_apply_refuses_rates_the_hub_would_compute_differently(hub: HubHandle, run: Run) -> None:
    with _store() as store:
        seed_store(store, ("openai",))
    assert run("apply", "--yes")[0] == 0
    with _store() as store:
        store.apply_bulk_update(store.preview_bulk_update(40, PRICE))
        store.set_operator_settings(target_margin=40, credit_price=PRICE)
    code, out = run("plan", "--verify-arithmetic")
    assert code == 0 and "3 of 3 rates agree with the hub's arithmetic" in out
    code, out = run("apply", "--yes", "--verify-arithmetic", "--margin", "40")
    assert code == 0 and "complete" in out
    with _store() as store:
        rate = store.find_rate("openai", "gpt-4o", "chatCompletion")
        store.update_rate(rate.id, rate.version, output_rate="0.02")
    with hub.client() as client:
        before = hub_rates(client)
    code, out = run("apply", "--yes", "--verify-arithmetic")
    assert code == 4 and "refusing to push" in out and "hubkit 0.02 ≠ hub 0.014" in out
    with hub.client() as client:
        assert hub_rates(client) == before


# --- the local hub as a process ---------------------------------------------------------------


def test_serve_local_keeps_its_token_in_a_private_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBKIT_")}
    env["HUBKIT_DATA_DIR"] = str(tmp_path / "data")
    ready = tmp_path / "port"
    cmd = [sys.executable, "-m", "hubkit", "hub", "serve-local", "--port", "0",
           "--state", str(tmp_path / "hub.json"), "--ready-file", str(ready)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "serve-local did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{ready.read_text()}"
        token_file = tmp_path / "data" / "local-hub.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) > 20
        # listening since the ready file; the server loop may still be starting on a
        # loaded machine, hence a timeout well past httpx's default 5 s
        authorised = httpx.get(
            f"{url}/api/ai-providers", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert authorised.status_code == 200 and authorised.json() == []
        assert httpx.get(f"{url}/api/ai-providers", timeout=60).status_code == 401
        # an operator's hub has no test switches: no request can wipe it or make it fail
        wipe = httpx.post(
            f"{url}/__test__/reset", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert wipe.status_code == 404
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert "local hub listening on http://127.0.0.1:" in output
    assert f"from {token_file}" in output and token not in output


def test_start_local_hub_runs_for_the_block_and_keeps_its_state_file(tmp_path: Path) -> None:
    state = tmp_path / "hub.json"
    with start_local_hub(state) as local:
        assert local.running and local.url.startswith("http://127.0.0.1:")
        assert local.token not in repr(local)
        with HubClient(local.url, local.token) as client:
            client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
        proc = local.proc
    assert proc is not None and proc.poll() is not None
    with start_local_hub(state) as again, HubClient(again.url, again.token) as client:
        assert [p.name for p in client.list_providers()] == ["openai"]
    scratch = start_local_hub()
    folder = scratch.state_path.parent
    assert folder.exists()
    scratch.stop()
    assert not folder.exists() and not scratch.running


def test_a_local_hub_with_latency_answers_like_a_distant_one(tmp_path: Path) -> None:
    delay = 0.25
    with start_local_hub(tmp_path / "hub.json", latency_ms=delay * 1000) as local:
        assert local.latency == (delay * 1000, 0)
        with HubClient(local.url, local.token) as client:
            for _ in range(3):
                started = time.monotonic()
                assert client.list_providers() == []
                assert time.monotonic() - started >= delay  # never faster than its network
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        localhub_main(["--state", str(tmp_path / "x.json"), "--latency-ms", "abc"])
