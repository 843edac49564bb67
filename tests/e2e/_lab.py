"""A throwaway JupyterLab on loopback, and the chromium flags that work here.

Recipe and pitfalls: ``/work/shared/design/testing.md`` ("JupyterLab (and Voila) in a real
browser"). The server gets a temporary root with copies of the notebooks (JupyterLab
autosaves outputs into them), and fresh Jupyter config/data/runtime/settings/workspace
folders so nothing of the machine's own Jupyter setup leaks in.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

# JS (argument: the notebook's path): that notebook is the current widget and its kernel is
# connected and idle (not just the toolbar saying so).
KERNEL_READY_JS = """(path) => {
  const app = window.jupyterapp;
  const widget = app && app.shell.currentWidget;
  if (!widget || !widget.context || widget.context.path !== path) return false;
  const ctx = widget.sessionContext;
  const kernel = ctx && ctx.session && ctx.session.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""

#: The news prompt is off by the project's own lab defaults (jupyter/labconfig, which
#: `make lab` and `make app` put on JUPYTER_CONFIG_PATH, as :func:`jupyter_env` does).
_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True},
}
PROJECT_JUPYTER_CONFIG = Path(__file__).resolve().parents[2] / "jupyter"


@dataclass
class LabServer:
    process: subprocess.Popen[bytes]
    port: int
    token: str
    root: Path
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium with the project's flags, driven by Playwright; closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_page(width: int, height: int, *, timeout_ms: float | None = None) -> Iterator[Any]:
    """A page of ``width`` × ``height`` in :func:`chromium`; ``timeout_ms`` for every wait
    and every ``expect`` (a loaded machine needs more than Playwright's 5 s)."""
    from playwright.sync_api import expect

    with chromium() as browser:
        page = browser.new_page(viewport={"width": width, "height": height})
        if timeout_ms is not None:
            page.set_default_timeout(timeout_ms)
            expect.set_options(timeout=timeout_ms)
        yield page


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_root(workdir: Path, notebooks: list[Path]) -> Path:
    root = workdir / "root"
    root.mkdir()
    for nb in notebooks:
        shutil.copy2(nb, root / nb.name)
    return root


def jupyter_env(workdir: Path, base: dict[str, str]) -> dict[str, str]:
    """``base`` plus fresh, private Jupyter folders and lab settings for this run."""
    env = dict(base)
    for var, name in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
        ("IPYTHONDIR", "ipython"),
    ):
        folder = workdir / name
        folder.mkdir(exist_ok=True)
        env[var] = str(folder)
    for rel, values in _SETTINGS.items():
        path = workdir / "lab-settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env["JUPYTER_PLATFORM_DIRS"] = "1"  # silences the platformdirs migration warning
    env["JUPYTER_CONFIG_PATH"] = str(PROJECT_JUPYTER_CONFIG)
    return env


class PortTaken(RuntimeError):
    """The server exited because its port was taken between :func:`free_port` and its bind."""


#: A port is picked free, then bound by the server: another process may win it in between.
PORT_ATTEMPTS = 5
_Server = TypeVar("_Server")


def on_a_free_port(start: Callable[[], _Server]) -> _Server:
    """``start()`` again (it picks a new port) while its server lost the port race."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return start()
        except PortTaken:
            if attempt == PORT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def start_lab(root: Path, env: dict[str, str], log: Path, *, timeout: float = 90) -> LabServer:
    """Start ``python -m jupyterlab`` (this venv's) and wait until its API answers."""
    return on_a_free_port(lambda: _start_lab(root, env, log, timeout=timeout))


def _start_lab(root: Path, env: dict[str, str], log: Path, *, timeout: float) -> LabServer:
    token = secrets.token_hex(16)
    port = free_port()
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        f"--IdentityProvider.token={token}", "--ServerApp.ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    handle = log.open("wb")
    # Own session: the kernels it starts share its process group, so teardown can reach them.
    process = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    server = LabServer(process, port, token, root, log)
    wait_until_ready(
        "JupyterLab", process, server.url("api/status"), server.log_tail, timeout=timeout
    )
    return server


def wait_until_ready(
    name: str,
    process: subprocess.Popen[bytes],
    ready_url: str,
    log_tail: Callable[[], str],
    *,
    timeout: float,
) -> None:
    """Poll ``ready_url`` until it answers 200; stop the process and raise if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_tail()
            if "already in use" in tail:  # lost the race for the port: the caller retries
                stop_process_group(process)
                raise PortTaken(f"{name} found its port taken:\n{tail}")
            raise RuntimeError(f"{name} exited ({process.returncode}):\n{tail}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_process_group(process)
    raise RuntimeError(f"{name} did not answer within {timeout} s:\n{log_tail()}")


def stop_lab(server: LabServer) -> None:
    """Stop the server by its pid, then whatever it left in its own process group."""
    stop_process_group(server.process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server by its pid, then SIGKILL the process group it leads (its kernels)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the group we created: its kernels only
    except ProcessLookupError:
        pass


@contextmanager
def seeded_lab(
    workdir: Path, notebooks: list[Path], *, unset: tuple[str, ...] = ()
) -> Iterator[LabServer]:
    """JupyterLab over copies of ``notebooks``, the test's store seeded with the sample data
    (HUBKIT_DATA_DIR is the test's own, tests/conftest.py); ``unset`` drops variables."""
    import pytest

    from hubkit.store import Store
    from hubkit.widgets import seed_sample_data

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash scripts/install-system-deps.sh` (as root)",
            pytrace=False,
        )
    with Store.open() as store:
        assert seed_sample_data(store)
    root = prepare_root(workdir, notebooks)
    env = jupyter_env(workdir, dict(os.environ))
    for name in unset:
        env.pop(name, None)
    server = start_lab(root, env, workdir / "lab.log")
    try:
        yield server
    finally:
        stop_lab(server)


def open_and_run(page: Any, lab: LabServer, notebook: str, app_class: str) -> Any:
    """Open ``notebook``, wait for its kernel, Run All Cells; the app's locator."""
    page.goto(lab.url(f"lab/tree/{notebook}"))
    # The toolbar says "idle" before the kernel is connected: wait for the real thing.
    page.wait_for_function(KERNEL_READY_JS, arg=notebook, timeout=90_000)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    page.wait_for_selector(f".{app_class}, .jp-Dialog")
    if page.locator(".jp-Dialog").count():  # "Select Kernel" despite the wait
        page.locator(".jp-Dialog button.jp-mod-accept").click()
    return page.locator(f".jp-NotebookPanel:not(.lm-mod-hidden) .{app_class}")
