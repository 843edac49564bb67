"""``python -m hubkit hub …``: the local hub, pull, plan, apply, health (registered by hubkit.cli).

The hub is ``HUBKIT_HUB_URL`` with the token ``HUBKIT_HUB_TOKEN`` (environment or .env;
never an argument). Exit codes as hubkit.cli: 0 success (a dry run included), 2 bad input
or no hub configured, 4 conflict (non-empty store for --bootstrap, arithmetic mismatch),
7 hub error — including an apply where any item failed, 10 nothing matched: a plan whose
every item needs manual action, or an apply whose every item was skipped (nothing done).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit._columns import COST_COLUMNS, PRICE_COLUMNS, RATE_KEY
from hubkit.cli.exit_codes import exit_code_for
from hubkit.config import get_settings
from hubkit.decimals import plain
from hubkit.errors import NothingMatchedError
from hubkit.frames import to_csv
from hubkit.hub.apply import ItemStatus, apply
from hubkit.hub.client import HubClient
from hubkit.hub.plan import Plan, plan
from hubkit.hub.progress import PushProgress
from hubkit.hub.pull import bootstrap, pull
from hubkit.hub.redact import redact_url
from hubkit.hub.verify import verify_against_hub_arithmetic
from hubkit.store import Store

EXIT_HUB = 7
TOKEN_FILE = "local-hub.token"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hub", help="sync with an AIGNE Hub: pull, plan, apply (and a local hub)")
    hsub = p.add_subparsers(dest="action", required=True)

    q = hsub.add_parser("serve-local", help="serve the bundled local hub on 127.0.0.1")
    q.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    q.add_argument(
        "--state", help="JSON file keeping its data (default: <data dir>/local-hub.json)"
    )
    q.add_argument("--ready-file", help=argparse.SUPPRESS)
    q.set_defaults(func=cmd_serve_local)

    q = hsub.add_parser("pull", help="show the hub's providers, credentials (masked) and rates")
    q.add_argument("--bootstrap", action="store_true", help="initialise an EMPTY store from it")
    q.add_argument("--csv", metavar="DIR", help="write providers/credentials/rates CSVs here")
    q.set_defaults(func=cmd_pull)

    q = hsub.add_parser("plan", help="what it takes to make the hub match the local store")
    _plan_options(q)
    q.add_argument("--csv", metavar="FILE", help="save the plan as CSV")
    q.add_argument("--json", metavar="FILE", help="save the plan as JSON")
    q.add_argument("--save", action="store_true", help="save it into reports/<UTC>-hub-plan/")
    q.set_defaults(func=cmd_plan)

    q = hsub.add_parser("apply", help="apply a plan (a dry run unless --yes)")
    _plan_options(q)
    q.add_argument("--plan", metavar="FILE", help="a saved plan (.json or .csv); default: plan now")
    q.add_argument("--yes", action="store_true", help="really write to the hub")
    q.add_argument("--no-report", action="store_true", help="do not write reports/<UTC>-hub-apply/")
    q.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="requests in flight at once, 1 to 32 (default: HUBKIT_HUB_CONCURRENCY or 8; "
        "1 sends one at a time in plan order)",
    )
    q.set_defaults(func=cmd_apply)

    q = hsub.add_parser("health", help="the hub's health: each provider's keys running or not")
    q.set_defaults(func=cmd_health)


def _plan_options(q: argparse.ArgumentParser) -> None:
    q.add_argument(
        "--deletes",
        action="store_true",
        help="also delete hub rates/keys the store lacks (and note hub-only providers)",
    )
    q.add_argument("--provider", help="only these providers (comma-separated)")
    q.add_argument(
        "--verify-arithmetic",
        action="store_true",
        help="cross-check the rates with the hub's own arithmetic (sync dry run); "
        "refuse on any difference",
    )
    q.add_argument("--margin", help="profit margin %% for --verify-arithmetic (default: stored)")
    q.add_argument("--credit-price", help="credit price for --verify-arithmetic (default: stored)")


# ---- helpers -----------------------------------------------------------------------------------


def _client() -> HubClient:
    return HubClient.from_settings()


def _store(args: argparse.Namespace) -> Store:
    return Store.open(getattr(args, "database_url", None))


def _print_frame(frame: pd.DataFrame, empty: str = "(none)", width: int | None = None) -> None:
    if frame.empty:
        print(empty)
        return
    # Decimal's str() says 3.64E-7; operators read plain decimals, as the hub sends them
    frame = frame.map(lambda v: plain(v) if isinstance(v, Decimal) else v)
    with pd.option_context("display.max_rows", 500, "display.width", 250):
        print(frame.to_string(index=False, max_colwidth=width))


def _cross_check(args: argparse.Namespace, store: Store) -> tuple[Any, Any] | None:
    if not args.verify_arithmetic:
        return None
    settings = store.get_operator_settings()
    margin = args.margin if args.margin is not None else settings.target_margin
    price = args.credit_price if args.credit_price is not None else settings.credit_price
    return margin, price


# ---- commands ----------------------------------------------------------------------------------


def local_token(data_dir: Path) -> tuple[str, str]:
    """``(token, where)``: HUBKIT_HUB_TOKEN, else a 0600 file in the data dir (made once)."""
    env = os.environ.get("HUBKIT_HUB_TOKEN", "").strip()
    if env:
        return env, "HUBKIT_HUB_TOKEN"
    path = data_dir / TOKEN_FILE
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, str(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    token = "local-" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token, str(path)


def cmd_serve_local(args: argparse.Namespace) -> int:
    # deferred: only this command starts the bundled server; every other command (and the
    # hub client) keeps hubkit.localhub out of its import path
    from hubkit.localhub.process import serve

    settings = get_settings()
    token, where = local_token(settings.data_dir)
    state = args.state or str(settings.data_dir / "local-hub.json")
    print(f"token: from {where} (never printed); clients need HUBKIT_HUB_TOKEN set to it",
          flush=True)  # fmt: skip
    try:
        serve("127.0.0.1", args.port, state, token, ready_file=args.ready_file,
              exit_with_parent=False)  # fmt: skip
    except (ValueError, OSError) as exc:
        print(f"error: cannot start the local hub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    with _client() as client:
        state = pull(client)
    frames = state.to_frames()
    print(f"hub {state.hub}: {len(state.providers)} providers, {len(state.credentials)} "
          f"credentials, {len(state.rates)} rates")  # fmt: skip
    print("\nproviders:")
    _print_frame(frames["providers"])
    print("\ncredentials (masked; the hub never returns a key):")
    _print_frame(frames["credentials"])
    print("\nrates:")
    cols = [*RATE_KEY, *PRICE_COLUMNS, *COST_COLUMNS, "deprecated"]
    _print_frame(frames["rates"][cols])
    if args.csv:
        folder = Path(args.csv)
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            to_csv(frame, folder / f"{name}.csv")
        print(f"\nwrote providers.csv, credentials.csv, rates.csv to {folder}")
    if args.bootstrap:
        with _store(args) as store:
            result = bootstrap(store, state)
        print("\n" + result.summary())
    return 0


def _make_plan(args: argparse.Namespace, store: Store, client: HubClient) -> Any:
    if getattr(args, "plan", None):
        return Plan.load(args.plan)
    return plan(store, client, deletes=args.deletes, providers=args.provider)


def cmd_plan(args: argparse.Namespace) -> int:
    with _store(args) as store, _client() as client:
        made = _make_plan(args, store, client)
        _print_frame(made.to_frame(), "(nothing to do: the hub matches the store)", width=72)
        print(f"\n{made.summary()}")
        if made.items and not (args.json or args.csv or args.save):
            print("every field's old → new value: --json FILE, --csv FILE or --save")
        check = _cross_check(args, store)
        if check is not None:
            print(verify_against_hub_arithmetic(made, client, *check).summary())
    if args.json:
        Path(args.json).write_text(made.to_json(), encoding="utf-8")
        print(f"wrote {args.json}")
    if args.csv:
        made.to_csv(args.csv)
        print(f"wrote {args.csv}")
    if args.save:
        print(f"saved to {made.save()}/")
    if made.items and made.is_empty:
        return _nothing_done(
            f"every one of the plan's {len(made.items)} items needs manual action: apply "
            "would do nothing (see each item's reason)"
        )
    return 0


def _nothing_done(message: str) -> int:
    """Print why nothing was done and return the exit code of NothingMatchedError (10)."""
    print(f"error: {message}", file=sys.stderr)
    return exit_code_for(NothingMatchedError(message))


def cmd_apply(args: argparse.Namespace) -> int:
    with _store(args) as store, _client() as client:
        made = _make_plan(args, store, client)
        print(f"plan: {made.summary()}")
        tracker = PushProgress()
        report = apply(made, store, client, dry_run=not args.yes,
                       cross_check=_cross_check(args, store),
                       progress=tracker.printing(sys.stderr), on_result=tracker.result,
                       concurrency=args.concurrency)  # fmt: skip
    if report.cross_check is not None:
        print(report.cross_check.summary())
    if made.items:
        frame = report.to_frame()
        _print_frame(frame[["kind", "action", "target", "status", "message"]], width=90)
    print(report.summary())
    if not args.no_report and made.items:
        print(f"report: {report.save()}/")
    if report.dry_run and made.actionable:
        print("dry run: nothing was written to the hub (add --yes to apply)")
    if report.failed:
        return EXIT_HUB
    if report.results and all(r.status is ItemStatus.SKIPPED for r in report.results):
        return _nothing_done(
            f"all {len(report.results)} items were skipped: nothing was "
            + ("checked" if report.dry_run else "written")
            + "; make a fresh plan (`python -m hubkit hub plan`) and read each item's reason"
        )
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 when every key runs, 7 when one does not (or the hub does not answer)."""
    with _client() as client:
        health = client.health()
    print(f"hub {redact_url(client.base_url)} at {health.timestamp}:")
    if not health.providers:
        print("(no credentials configured)")
    for provider, creds in sorted(health.providers.items()):
        for name, running in sorted(creds.items()):
            print(f"  {provider}/{name}: {'running' if running else 'NOT running'}")
    return 0 if all(all(c.values()) for c in health.providers.values()) else EXIT_HUB
