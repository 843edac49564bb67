"""How a job run ended, and the one table mapping that to a process exit code.

=====  ================  =================================================================
code   status            meaning
=====  ================  =================================================================
0      dry_run           previewed only (nothing written); no guardrail would trip
0      applied           rates written (and pushed, if asked) in one transaction
0      unchanged         nothing to change: the store already holds these numbers
0      reported          a report job (finance-month) wrote its report; it changes nothing
2      invalid           a parameter was refused, or the provider filter names a provider
                         the store does not have (nothing ran)
8      guardrail         a guardrail refused the change set: nothing was written
9      push_partial      committed locally, but the push to the hub did not finish
10     nothing_matched   the filter selected no rate: nothing was done
75     lock_held         another run holds the job lock (EX_TEMPFAIL: retry later)
1      failed            any other error: everything of the run was rolled back
1      interrupted       found ``running`` with no live lease: its process died; the rate
                         history (by job run id) shows whether it had committed
=====  ================  =================================================================

``hubkit.cli.EXIT_CODES`` maps the matching exceptions (GuardrailError → 8,
LockHeldError → 75) the same way for commands that raise instead of reporting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any


class JobStatus(StrEnum):
    """The final (or current) state of a job run, as written to summary.json and job_runs."""

    RUNNING = "running"
    DRY_RUN = "dry_run"
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REPORTED = "reported"
    INVALID = "invalid"
    GUARDRAIL = "guardrail"
    PUSH_PARTIAL = "push_partial"
    LOCK_HELD = "lock_held"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    NOTHING_MATCHED = "nothing_matched"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @classmethod
    def parse(cls, value: object) -> JobStatus:
        """A status read back from a file or row; anything unknown counts as failed."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.FAILED


_EXIT_CODES: dict[JobStatus, int] = {
    JobStatus.DRY_RUN: 0,
    JobStatus.APPLIED: 0,
    JobStatus.UNCHANGED: 0,
    JobStatus.REPORTED: 0,
    JobStatus.INVALID: 2,
    JobStatus.GUARDRAIL: 8,
    JobStatus.PUSH_PARTIAL: 9,
    JobStatus.LOCK_HELD: 75,
    # a run still "running" when its process is gone died without saying why
    JobStatus.RUNNING: 1,
    JobStatus.FAILED: 1,
    JobStatus.INTERRUPTED: 1,
    JobStatus.NOTHING_MATCHED: 10,
}


@dataclass(frozen=True, eq=False)
class FinishedRun:
    """What every ended run reports, however it was run (in a notebook or by the runner)."""

    job: str
    run_id: str
    status: JobStatus
    reason: str
    run_dir: Path
    summary: Mapping[str, Any]

    @property
    def exit_code(self) -> int:
        return self.status.exit_code
