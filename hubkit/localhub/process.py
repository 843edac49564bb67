"""Run the bundled local hub in a subprocess: for notebooks and the demo without a real hub.

>>> with start_local_hub() as hub:             # doctest: +SKIP
...     client = hub.client()
...     state = pull(client)

The server (:mod:`hubkit.localhub.app`) listens on 127.0.0.1 on a free port, with a fresh
random token handed over in its environment (never on the command line, never printed).
``state_path=None`` keeps its data in a temporary folder removed on exit; pass a path to
keep the hub's data between runs. The process exits with its parent, so a crashed
notebook kernel leaves no server behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from hubkit.errors import HubError
from hubkit.hub.client import HubClient

_START_TIMEOUT = 30.0


class LocalHubProcess:
    """A running local hub: ``url``, ``token`` (kept out of repr), ``client()``, ``stop()``."""

    def __init__(self, state_path: str | os.PathLike[str] | None = None) -> None:
        self._tmp: Path | None = None
        if state_path is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="hubkit-hub-"))
            self.state_path = self._tmp / "hub.json"
        else:
            self.state_path = Path(state_path)
        self.token = "local-" + secrets.token_urlsafe(24)
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalHubProcess(url={self.url!r}, state={str(self.state_path)!r}, {state})"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> LocalHubProcess:
        if self.running:
            return self
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        ready = self.state_path.parent / f".{self.state_path.name}.{os.getpid()}.port"
        ready.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUBKIT_HUB_")}
        env["HUBKIT_HUB_TOKEN"] = self.token
        cmd = [sys.executable, "-m", "hubkit.localhub.app", "--port", "0",
               "--state", str(self.state_path), "--ready-file", str(ready),
               "--exit-with-parent"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_TIMEOUT
        try:
            while not ready.exists():
                self._check(deadline)
                time.sleep(0.05)
            self.url = f"http://127.0.0.1:{int(ready.read_text(encoding='utf-8'))}"
            while not self._healthy():
                self._check(deadline)
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        finally:
            ready.unlink(missing_ok=True)
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/ai-providers/health", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def _check(self, deadline: float) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None or time.monotonic() > deadline:
            self._log.seek(0)
            tail = self._log.read()[-2000:].decode("utf-8", "replace").replace(self.token, "***")
            raise HubError(f"the local hub did not start; its output ends with:\n{tail}")

    def client(self, **kwargs: Any) -> HubClient:
        """A :class:`~hubkit.hub.HubClient` for this hub (close it, or use ``with``)."""
        if not self.running:
            raise HubError("the local hub is not running; start it first")
        return HubClient(self.url, self.token, **kwargs)

    def env(self) -> dict[str, str]:
        """``HUBKIT_HUB_URL`` / ``HUBKIT_HUB_TOKEN`` for a child process (holds the token)."""
        return {"HUBKIT_HUB_URL": self.url, "HUBKIT_HUB_TOKEN": self.token}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> LocalHubProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_local_hub(state_path: str | os.PathLike[str] | None = None) -> LocalHubProcess:
    """Start the local hub and wait until it answers; use as a context manager to stop it."""
    return LocalHubProcess(state_path).start()
