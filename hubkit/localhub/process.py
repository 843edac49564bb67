"""Running the local hub: in this process (:func:`serve`, :func:`main`) or in a subprocess
(:func:`start_local_hub`, for notebooks, the demo and benchmarks without a real hub).

>>> with start_local_hub() as hub:             # doctest: +SKIP
...     client = HubClient(hub.url, hub.token)

Serve it from a shell::

    HUBKIT_HUB_TOKEN=... python -m hubkit.localhub --port 8765 --state hub-state.json

It listens on 127.0.0.1 only unless ``--allow-remote`` is given. The token comes from
``HUBKIT_HUB_TOKEN`` or ``--token-file`` and is never printed (a subprocess gets a fresh
random one in its environment, never on its command line). ``--test-faults`` mounts the
test switches of :mod:`hubkit.localhub.faults`; nothing else does.

``start_local_hub(state_path=None)`` keeps the hub's data in a temporary folder removed on
exit; pass a path to keep it between runs. The process exits with its parent, so a
crashed notebook kernel leaves no server behind.

This is the one module of the local hub the client package (:mod:`hubkit.hub`) reaches,
and only when a hub is started: it imports the server (starlette, uvicorn) only in the
process that serves.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from hubkit.errors import HubError

# A start that fails exits at once (we poll); only a slow start waits this long (a loaded
# 2-core box took over 20 s to answer).
_START_TIMEOUT = 90.0


# --- in this process --------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _watch_parent(parent: int) -> None:
    # A test run killed hard must not leave servers behind: exit when the parent goes.
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    state_path: str | os.PathLike[str] = "hub-state.json",
    token: str = "",
    *,
    log_level: str = "warning",
    ready_file: str | os.PathLike[str] | None = None,
    allow_remote: bool = False,
    exit_with_parent: bool = False,
    test_faults: bool = False,
    latency_ms: float = 0,
    jitter_ms: float = 0,
    in_memory: bool = False,
) -> None:
    """Serve the local hub until interrupted. ``port=0`` picks a free port.

    The bound port is printed (and written to ``ready_file`` if given) once the socket
    is listening; the token never is.
    """
    # Imported here, not at the top: a notebook that only starts a hub in a subprocess
    # (start_local_hub) never loads the server, its web framework or its fault switches.
    import uvicorn

    from hubkit.localhub.app import create_app
    from hubkit.localhub.faults import install_log_filter

    if not allow_remote and not _is_loopback(host):
        raise ValueError(f"refusing to listen on {host!r}: the local hub binds loopback only")
    app = create_app(
        state_path,
        token,
        test_faults=test_faults,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        in_memory=in_memory,
    )
    install_log_filter()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say TCP,
    # and without it every answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    if ready_file is not None:
        tmp = Path(f"{ready_file}.tmp")
        tmp.write_text(str(bound), encoding="utf-8")
        os.replace(tmp, ready_file)
    print(f"local hub listening on http://{host}:{bound} (state {state_path})", flush=True)
    if exit_with_parent:
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hubkit.localhub``: 0 after an interrupt, 1 cannot start, 2 no token."""
    parser = argparse.ArgumentParser(
        prog="python -m hubkit.localhub",
        description="Serve a local AIGNE Hub admin API (loopback only) for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--state", required=True, help="JSON file keeping the hub's data")
    parser.add_argument(
        "--token-file", help="file holding the bearer token (else HUBKIT_HUB_TOKEN)"
    )
    parser.add_argument("--ready-file", help="write the bound port here once listening")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback host")
    parser.add_argument(
        "--test-faults",
        action="store_true",
        help="mount the /__test__ switches (faults, reset, stats): for test suites only",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0,
        help="wait this long before answering each request (a hub across a network)",
    )  # fmt: skip
    parser.add_argument("--jitter-ms", type=float, default=0, help="plus up to this much")
    parser.add_argument(
        "--in-memory", action="store_true",
        help="read --state at start, then keep every change in memory only (benchmarks)",
    )  # fmt: skip
    parser.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.token_file:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    else:
        token = os.environ.get("HUBKIT_HUB_TOKEN", "").strip()
    if not token:
        print(
            "set HUBKIT_HUB_TOKEN or pass --token-file: the hub needs a bearer token",
            file=sys.stderr,
        )
        return 2
    try:
        serve(
            args.host,
            args.port,
            args.state,
            token,
            log_level=args.log_level,
            ready_file=args.ready_file,
            allow_remote=args.allow_remote,
            exit_with_parent=args.exit_with_parent,
            test_faults=args.test_faults,
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            in_memory=args.in_memory,
        )
    except (ValueError, OSError) as exc:
        print(f"cannot start the local hub: {exc}", file=sys.stderr)
        return 1
    return 0


# --- in a subprocess --------------------------------------------------------------------------


class LocalHubProcess:
    """A running local hub: ``url``, ``token`` (kept out of repr), ``env()``, ``stop()``.

    Talk to it with ``hubkit.hub.HubClient(hub.url, hub.token)``: this module knows
    nothing of the client.
    """

    def __init__(
        self,
        state_path: str | os.PathLike[str] | None = None,
        *,
        test_faults: bool = False,
        latency_ms: float = 0,
        jitter_ms: float = 0,
        in_memory: bool = False,
    ) -> None:
        self._tmp: Path | None = None
        self.in_memory = in_memory
        if state_path is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="hubkit-hub-"))
            self.state_path = self._tmp / "hub.json"
        else:
            self.state_path = Path(state_path)
        self.test_faults = test_faults
        self.latency = (latency_ms, jitter_ms)
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
        cmd = [sys.executable, "-m", "hubkit.localhub", "--port", "0",
               "--state", str(self.state_path), "--ready-file", str(ready),
               "--exit-with-parent"]  # fmt: skip
        if self.test_faults:
            cmd.append("--test-faults")
        if any(self.latency):
            cmd += ["--latency-ms", str(self.latency[0]), "--jitter-ms", str(self.latency[1])]
        if self.in_memory:
            cmd.append("--in-memory")
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


def start_local_hub(
    state_path: str | os.PathLike[str] | None = None,
    *,
    test_faults: bool = False,
    latency_ms: float = 0,
    jitter_ms: float = 0,
    in_memory: bool = False,
) -> LocalHubProcess:
    """Start the local hub and wait until it answers; use as a context manager to stop it.

    ``latency_ms`` / ``jitter_ms`` make it answer like a hub across a network;
    ``in_memory`` keeps changes off the state file (read at start), so a benchmark
    measures the network and the client, not this hub's rewriting of a JSON file."""
    return LocalHubProcess(
        state_path,
        test_faults=test_faults,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        in_memory=in_memory,
    ).start()
