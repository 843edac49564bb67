"""``python -m hubkit proposals …`` and ``python -m hubkit db roles`` (registered by hubkit.cli).

Rate changes as reviewed proposals (issue 14)::

    proposals create --bulk --margin 25 --credit-price 0.001 --reason "Q4 prices"
    proposals create --csv new-rates.csv --effective-at 2027-01-01T00:00:00Z --reason "list"
    proposals create --revert 12 --reason "undo Q4"
    proposals list [--state proposed] [--source bulk]
    proposals show 12                           # diff, impact, below-cost rates, events
    proposals approve 12 --hash <content hash>  # a different person than the proposer
    proposals reject 12 --reason "margin too high"
    proposals apply-due                         # what cron runs (or the job notebook)

Exit codes as hubkit.cli: 0 success; 2 bad input; 3 no such proposal; 4 refused (the
proposer approving, a hash that does not match, stale, not approved, not due; apply-due
with a proposal that expired or failed); 6 the database refused (a role without the right).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd

from hubkit.config import get_settings
from hubkit.errors import ValidationError
from hubkit.frames import plain_frame, to_csv
from hubkit.pricing import RateFilter
from hubkit.proposals import (
    Impact,
    Proposal,
    apply_due,
    changes_frame,
    events_frame,
    proposals_frame,
    propose,
    propose_bulk,
    propose_revert,
)
from hubkit.store import Store
from hubkit.store.roles import ROLES, install_roles

EXIT_CONFLICT = 4


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "proposals", help="rate changes as reviewed proposals: create, approve, apply when due"
    )
    psub = p.add_subparsers(dest="action", required=True)

    q = psub.add_parser("create", help="propose a bulk update, a CSV of rates, or a revert")
    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("--bulk", action="store_true", help="margin × credit price bulk update")
    what.add_argument("--csv", metavar="FILE", help="provider,model,type,input_rate,output_rate…")
    what.add_argument("--revert", type=int, metavar="ID", help="undo an applied proposal")
    q.add_argument("--margin", help="profit margin %% for --bulk (default: stored target)")
    q.add_argument("--credit-price", help="currency per credit for --bulk (default: stored)")
    q.add_argument("--provider", help="--bulk: comma-separated providers (default: all)")
    q.add_argument("--type", help="--bulk: comma-separated rate types")
    q.add_argument("--model", help="--bulk: glob on the model id")
    q.add_argument("--reason", help="why (shown to the approvers)")
    q.add_argument("--effective-at", help="UTC time it takes effect (default: on approval)")
    q.add_argument("--supersedes", type=int, metavar="ID", help="replace this open proposal")
    q.add_argument("--usage-file", help="usage to replay when the store holds none")
    q.add_argument("--days", type=int, default=30, help="impact window (default 30 days)")
    q.add_argument("--no-impact", action="store_true", help="skip the impact replay")
    q.add_argument("--draft", action="store_true", help="store it without proposing it yet")
    q.set_defaults(func=cmd_create)

    q = psub.add_parser("list", help="proposals, newest first")
    q.add_argument("--state", help="comma-separated: draft,proposed,approved,rejected,applied,…")
    q.add_argument("--source", help="edit, batch, bulk, catalog, revert or csv")
    q.add_argument("--limit", type=int, default=100)
    q.add_argument("--csv", help="write CSV to this file ('-' for stdout)")
    q.set_defaults(func=cmd_list)

    q = psub.add_parser("show", help="one proposal: changes, impact, below-cost rates, events")
    q.add_argument("id", type=int)
    q.add_argument("--csv", help="write its changes as CSV to this file ('-' for stdout)")
    q.set_defaults(func=cmd_show)

    q = psub.add_parser("approve", help="approve what you reviewed (not your own proposal)")
    q.add_argument("id", type=int)
    q.add_argument("--hash", required=True, help="the content hash `proposals show` printed")
    q.add_argument("--reason")
    q.set_defaults(func=cmd_approve)

    q = psub.add_parser("reject", help="reject an open proposal (a reason is required)")
    q.add_argument("id", type=int)
    q.add_argument("--reason", required=True)
    q.set_defaults(func=cmd_reject)

    q = psub.add_parser("apply-due", help="apply every approved proposal whose time has come")
    q.add_argument("--now", help=argparse.SUPPRESS)  # tests: pretend it is this UTC time
    q.set_defaults(func=cmd_apply_due)

    q = psub.add_parser("require", help="approvals a new proposal needs (default 1)")
    q.add_argument("count", type=int, help="1 or more; 0 only on a single-user SQLite store")
    q.set_defaults(func=cmd_require)

    p = sub.add_parser("db", help="database administration (PostgreSQL roles)")
    dsub = p.add_subparsers(dest="action", required=True)
    q = dsub.add_parser(
        "roles",
        help="create hubkit_operator / hubkit_approver / hubkit_finance / hubkit_job and grant "
        "them (PostgreSQL, as the owner)",
    )
    q.add_argument(
        "--login",
        action="append",
        default=[],
        metavar="NAME=ROLE",
        help="also create a login NAME, member of ROLE (repeatable)",
    )
    q.set_defaults(func=cmd_db_roles)


def _store(args: argparse.Namespace) -> Store:
    return Store.open(getattr(args, "database_url", None))


def _time(text: str | None, field: str) -> Any:
    if not text:
        return None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise ValidationError(
            f"{field}: {text!r} is not a time; use ISO 8601 UTC, e.g. 2027-01-01T00:00:00Z",
            field=field,
        ) from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def _print(frame: pd.DataFrame) -> None:
    if frame.empty:
        print("(none)")
        return
    with pd.option_context("display.max_rows", 200, "display.width", 200):
        print(plain_frame(frame).to_string(index=False))


def _print_impact(proposal: Proposal) -> None:
    impact = Impact.from_json(proposal.impact)
    if impact is None:
        print("impact: not computed")
        return
    print(f"impact over {impact.window['label']} (fingerprint {impact.fingerprint[:12]}…):")
    _print(impact.totals_frame())
    print(
        f"users newly blocked by a 402: {impact.users_newly_blocked}; "
        f"unblocked: {impact.users_unblocked}"
    )
    below = impact.below_cost_frame()
    if len(below):
        print(f"{len(below)} rate sides below cost after this proposal:")
        _print(below)


def cmd_create(args: argparse.Namespace) -> int:
    common: dict[str, Any] = {
        "reason": args.reason,
        "effective_at": _time(args.effective_at, "effective_at"),
    }
    options: dict[str, Any] = {
        "impact": not args.no_impact,
        "usage_file": args.usage_file,
        "days": args.days,
        "draft": args.draft,
        "supersedes": args.supersedes,
    }
    with _store(args) as store:
        if args.bulk:
            rate_filter = RateFilter.create(args.provider, args.type, args.model)
            proposal = propose_bulk(
                store, args.margin, args.credit_price, rate_filter, **common, **options
            )
        elif args.csv:
            from hubkit.proposals import csv_changes

            changes = csv_changes(store, args.csv)
            proposal = propose(
                store, changes, source="csv", metadata={"file": args.csv}, **common, **options
            )
        else:
            if args.supersedes or args.draft:
                raise ValidationError("--revert takes neither --supersedes nor --draft")
            proposal = propose_revert(store, args.revert, impact=not args.no_impact, **common)
        print(proposal.summary())
        print(f"content hash: {proposal.content_hash}")
        _print_impact(proposal)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    states = [s.strip() for s in args.state.split(",")] if args.state else None
    with _store(args) as store:
        found = store.list_proposals(state=states, source=args.source, limit=args.limit)
    frame = proposals_frame(found).drop(columns=["content_hash"])
    if args.csv:
        to_csv(frame, args.csv if args.csv != "-" else sys.stdout)
        return 0
    _print(frame)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        proposal = store.get_proposal(args.id)
        stale = store.proposal_staleness(args.id) if not proposal.state.closed else []
    if args.csv:
        to_csv(changes_frame(proposal), args.csv if args.csv != "-" else sys.stdout)
        return 0
    print(proposal.summary())
    print(f"reason: {proposal.reason or '—'}")
    print(f"content hash: {proposal.content_hash}")
    if not proposal.intact:
        print("WARNING: the stored changes do not match the content hash (tampered with)")
    if stale:
        print(f"STALE (re-propose): {'; '.join(stale[:10])}")
    print(f"approvals: {len(proposal.approvals)} of {proposal.required_approvals}")
    print("\nchanges:")
    _print(changes_frame(proposal))
    print()
    _print_impact(proposal)
    print("\nevents:")
    _print(events_frame(proposal))
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    with _store(args) as store:
        proposal = store.approve_proposal(args.id, args.hash.strip(), reason=args.reason)
    print(f"approved: {proposal.summary()}")
    if proposal.is_due():
        print("it is due: `python -m hubkit proposals apply-due` (or the job) applies it")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    with _store(args) as store:
        proposal = store.reject_proposal(args.id, args.reason)
    print(f"rejected: {proposal.summary()}")
    return 0


def cmd_apply_due(args: argparse.Namespace) -> int:
    with _store(args) as store:
        report = apply_due(store, now=_time(args.now, "now"))
    for line in report.lines():
        print(line)
    return EXIT_CONFLICT if report.expired or report.failed else 0


def cmd_require(args: argparse.Namespace) -> int:
    with _store(args) as store:
        count = store.set_required_approvals(args.count)
        if count == 0:
            print(
                "warning: proposals are now approved as soon as they are proposed (single-user "
                "SQLite store): no second person reviews them",
                file=sys.stderr,
            )
    print(f"new proposals need {count} approval{'s' if count != 1 else ''}")
    return 0


def cmd_db_roles(args: argparse.Namespace) -> int:
    logins: dict[str, str] = {}
    for item in args.login:
        name, sep, role = item.partition("=")
        if not sep or not name.strip() or not role.strip():
            raise ValidationError(f"--login takes NAME=ROLE, got {item!r}", field="login")
        logins[name.strip()] = role.strip()
    url = getattr(args, "database_url", None) or get_settings().database_url
    with Store.open(url) as store:
        install_roles(store.engine, logins)
    for role, what in ROLES.items():
        print(f"{role}: {what}")
    for name, role in logins.items():
        print(f"login {name} is a member of {role}")
    return 0
