"""Helpers shared by the proposal tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence

import hubkit.proposals as hp
from hubkit.store import Store


def two_apply_due_processes(url: str) -> list[str]:
    """Two ``proposals apply-due`` processes started together; their outputs."""
    command = [sys.executable, "-m", "hubkit", "--database-url", url, "proposals", "apply-due"]
    procs = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err
        outputs.append(out)
    return outputs


def two_apply_due_threads(
    stores: Sequence[Store], *, timeout: float = 120
) -> list[hp.ApplyDueReport]:
    """``apply_due`` on each store in its own thread, released together; their reports.
    The stores are closed afterwards."""
    barrier = threading.Barrier(len(stores))
    reports: list[hp.ApplyDueReport] = []

    def run(store: Store) -> None:
        barrier.wait()
        reports.append(hp.apply_due(store))

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    for s in stores:
        s.close()
    return reports
