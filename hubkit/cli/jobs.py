"""``python -m hubkit job …`` and ``python -m hubkit reports …`` (registered by hubkit.cli).

Exit codes of ``job run`` come from :class:`hubkit.jobs.status.JobStatus` (0 success or
dry run, 2 bad parameter, 8 guardrail, 9 push partial, 75 lock held, 1 other failure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hubkit.config import get_settings
from hubkit.jobs.lock import LeaseInfo
from hubkit.jobs.reports import prune, rebuild_index
from hubkit.jobs.runner import JOBS, cli_value, job_name, run_job
from hubkit.jobs.runs import list_runs, mark_interrupted, note_revert
from hubkit.store import Store
from hubkit.store.types import utcnow


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("job", help="run, list and revert scheduled rate jobs (papermill)")
    jsub = p.add_subparsers(dest="action", required=True)
    q = jsub.add_parser("run", help="run a job notebook into reports/<UTC time>-<job>/")
    q.add_argument(
        "job",
        type=job_name,
        choices=sorted(JOBS),
        help="the job (finance_month and finance-month both name finance-month)",
    )
    q.add_argument(
        "-p", "--parameter", nargs="+", action="append", default=[], metavar="NAME VALUE",
        help="a notebook parameter: -p profit_margin 25 -p dry_run false (or -p month=2026-11)",
    )  # fmt: skip
    q.add_argument("--wait", action="store_true", help="queue behind a running job")
    q.add_argument("--wait-timeout", type=float, help="give up waiting after SECONDS (exit 75)")
    q.add_argument("--timeout", type=float, help="per-cell execution timeout in seconds")
    q.set_defaults(func=cmd_job_run)
    q = jsub.add_parser("revert", help="undo every rate change of a run, as one unit")
    q.add_argument("run_id")
    q.add_argument("--force", action="store_true", help="overwrite rates changed since the run")
    q.add_argument("--reason")
    q.set_defaults(func=cmd_job_revert)
    q = jsub.add_parser("list", help="recent job runs recorded in the store")
    q.add_argument("--limit", type=int, default=30)
    q.set_defaults(func=cmd_job_list)

    p = sub.add_parser("reports", help="the reports/ folder: rebuild its index, prune old runs")
    rsub = p.add_subparsers(dest="action", required=True)
    q = rsub.add_parser("prune", help="keep the N newest run folders, delete the rest")
    q.add_argument("--keep", type=int, required=True)
    q.set_defaults(func=cmd_reports_prune)
    q = rsub.add_parser("index", help="rebuild reports/index.html and reports/runs.csv")
    q.set_defaults(func=cmd_reports_index)


def _announce_wait(holder: LeaseInfo) -> None:
    print(f"waiting for the lock: held by {holder.describe()}", file=sys.stderr, flush=True)


def cmd_job_run(args: argparse.Namespace) -> int:
    parameters: dict[str, Any] = {}
    for given in args.parameter:
        if len(given) == 1 and "=" in given[0]:
            given = given[0].split("=", 1)
        if len(given) != 2:
            print(f"error: -p takes NAME VALUE (or NAME=VALUE), got {' '.join(given)!r}",
                  file=sys.stderr)  # fmt: skip
            return 2
        name, value = given
        parameters[name] = cli_value(value)
    outcome = run_job(
        args.job,
        parameters,
        wait=args.wait,
        wait_timeout=args.wait_timeout,
        on_wait=_announce_wait,
        database_url=getattr(args, "database_url", None),
        execution_timeout=args.timeout,
    )
    counts = outcome.summary.get("counts") or {}
    print(f"run:      {outcome.run_id} ({outcome.job})")
    print(f"status:   {outcome.status.value} (exit {outcome.exit_code})")
    if counts:
        print("counts:   " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"report:   {_relative(outcome.run_dir)}/")
    if outcome.exit_code == 0:
        print(f"          {outcome.reason}")
    else:
        print(f"error: {outcome.status.value}: {outcome.reason}", file=sys.stderr)
    return outcome.exit_code


def cmd_job_revert(args: argparse.Namespace) -> int:
    with Store.open(getattr(args, "database_url", None)) as store:
        entries = store.revert_job_run(args.run_id, force=args.force, reason=args.reason)
        note_revert(
            store,
            args.run_id,
            {"at": utcnow(), "by": store.actor, "history_rows": len(entries),
             "forced": args.force},
        )  # fmt: skip
    print(f"reverted run {args.run_id}: {len(entries)} rates put back (history change_type revert)")
    return 0


def cmd_job_list(args: argparse.Namespace) -> int:
    with Store.open(getattr(args, "database_url", None)) as store:
        for run_id in mark_interrupted(store):
            print(f"run {run_id} was still 'running' with no live lease: marked interrupted",
                  file=sys.stderr)  # fmt: skip
        runs = list_runs(store, limit=args.limit)
    if not runs:
        print("(no job runs recorded)")
        return 0
    for r in runs:
        counts = r.summary.get("counts") or {}
        reverted = " reverted" if r.summary.get("reverted") else ""
        print(
            f"{r.id:<48} {r.status.value:<13}{reverted} changed={counts.get('changed', '-')} "
            f"applied={counts.get('applied', '-')} by {r.actor} at {r.started_at:%Y-%m-%d %H:%M}Z"
        )
    return 0


def cmd_reports_prune(args: argparse.Namespace) -> int:
    reports_dir = get_settings().reports_dir
    result = prune(reports_dir, args.keep)
    for path, why in result.skipped:
        print(f"skipped {path.name}: {why}")
    print(
        f"removed {len(result.removed)} run folders from {reports_dir}, "
        f"kept the {len(result.kept)} newest"
    )
    return 0


def cmd_reports_index(args: argparse.Namespace) -> int:
    csv_path, html_path = rebuild_index(get_settings().reports_dir)
    print(f"wrote {html_path} and {csv_path}")
    return 0


def _relative(path: Any) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
