"""A throwaway Voilà on loopback (the finance web app), as ``make app`` serves it.

``--strip_sources=True`` hides every code cell; token auth; the kernel runs in the process
group Voilà leads, so :func:`stop_voila` ends both. Recipe: ``/work/shared/design/testing.md``.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from e2e._lab import free_port, on_a_free_port, stop_process_group, wait_until_ready


@dataclass
class VoilaServer:
    process: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_voila(
    notebook: Path, env: dict[str, str], log: Path, *, timeout: float = 90
) -> VoilaServer:
    return on_a_free_port(lambda: _start_voila(notebook, env, log, timeout=timeout))


def _start_voila(notebook: Path, env: dict[str, str], log: Path, *, timeout: float) -> VoilaServer:
    token = secrets.token_hex(16)
    port = free_port()
    cmd = [
        sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
        "--Voila.ip=127.0.0.1", f"--Voila.token={token}", "--strip_sources=True",
        "--Voila.port_retries=0",  # a taken port must fail (and be retried), not move
    ]  # fmt: skip
    handle = log.open("wb")
    # Own session: the kernel it starts shares its process group, so teardown reaches it.
    process = subprocess.Popen(
        cmd, cwd=notebook.parent, env=env, stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    handle.close()
    server = VoilaServer(process, port, token, log)
    ready = f"http://127.0.0.1:{port}/voila/static/voila.js"
    wait_until_ready("Voila", process, ready, server.log_tail, timeout=timeout)
    return server


def stop_voila(server: VoilaServer) -> None:
    """Stop Voila by its pid, then whatever is left in the process group it leads."""
    stop_process_group(server.process)
