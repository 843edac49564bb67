"""Helpers shared by the proposal tests."""

from __future__ import annotations

import os
import subprocess
import sys


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
