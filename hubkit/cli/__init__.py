"""``python -m hubkit``: the store's operations for a shell user — the top layer.

Every command lives in this package: the store's here, ``hub …`` in :mod:`hubkit.cli.hub`,
``job …`` / ``reports …`` in :mod:`hubkit.cli.jobs`, ``proposals …`` / ``db roles`` in
:mod:`hubkit.cli.proposals`. Nothing below imports the CLI, so a
command may use any layer. Exit codes: :mod:`hubkit.cli.exit_codes` (0 success, a dry run
included; 1 any other hubkit error; 2 bad input; 3 not found; 4 conflict; 5 secret key;
6 database; 7 hub; 8 guardrail; 9 push partly failed; 10 nothing matched; 75 lock held).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hubkit import errors
from hubkit.catalog import load_catalog, shipped_catalog_path
from hubkit.cli import hub as hub_commands
from hubkit.cli import jobs as job_commands
from hubkit.cli import proposals as proposal_commands
from hubkit.cli.exit_codes import EXIT_CODES, exit_code_for
from hubkit.config import get_settings
from hubkit.crypto import generate_key
from hubkit.decimals import plain
from hubkit.demo import run_demo
from hubkit.domain import ProviderSpec, RateSpec
from hubkit.frames import (
    credentials_frame,
    history_frame,
    plain_frame,
    preview_frame,
    providers_frame,
    rates_frame,
    skipped_frame,
    to_csv,
)
from hubkit.pricing import RateFilter, SkipReason, check_zero_rates, plausible_credit_price
from hubkit.store import Store

__all__ = ["EXIT_CODES", "build_parser", "exit_code_for", "main"]


def _open_store(args: argparse.Namespace) -> Store:
    return Store.open(getattr(args, "database_url", None))


def _show(frame: pd.DataFrame, csv: str | None) -> None:
    if csv:
        to_csv(frame, csv if csv != "-" else sys.stdout)
        if csv != "-":
            print(f"wrote {len(frame)} rows to {csv}")
        return
    if frame.empty:
        print("(none)")
        return
    with pd.option_context("display.max_rows", 500, "display.width", 200):
        print(plain_frame(frame).to_string(index=False))


# ---- commands --------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    settings = get_settings()
    with _open_store(args) as store:
        current = store.get_operator_settings()
    print(f"store ready: {store.engine.url.render_as_string(hide_password=True)}")
    print(f"secret key: {settings.key_file if not settings.secret_key else 'HUBKIT_SECRET_KEY'}")
    print(f"settings: currency={current.currency} credit_price={plain(current.credit_price)} "
          f"target_margin={plain(current.target_margin)}%")  # fmt: skip
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        if args.currency or args.credit_price or args.target_margin:
            store.set_operator_settings(
                currency=args.currency,
                credit_price=args.credit_price,
                target_margin=args.target_margin,
            )
        s = store.get_operator_settings()
    print(f"currency={s.currency} credit_price={plain(s.credit_price)} "
          f"target_margin={plain(s.target_margin)}%")  # fmt: skip
    return 0


def cmd_providers(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        if args.action == "add":
            spec = ProviderSpec.create(
                args.name,
                args.display_name,
                base_url=args.base_url,
                region=args.region,
                enabled=not args.disabled,
                custom=args.custom,
            )
            store.add_provider(spec)
            print(f"added provider {spec.name}")
        elif args.action == "delete":
            store.delete_provider(args.name)
            print(f"deleted provider {args.name}")
        _show(providers_frame(store.list_providers()), getattr(args, "csv", None))
    return 0


def _read_secret(args: argparse.Namespace) -> str:
    # Never from argv: it would land in shell history and `ps` output.
    if args.value_stdin:
        value = sys.stdin.readline().rstrip("\n")
    else:
        value = getpass.getpass("secret value (not echoed): ")
    if not value.strip():
        raise errors.ValidationError("Credential cannot be empty", field="value")
    return value


def cmd_credentials(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        if args.action == "add":
            value: Any = _read_secret(args)
            if args.type == "access_key_pair":
                value = {"access_key_id": args.access_key_id, "secret_access_key": value}
            elif args.type == "custom":
                value = {args.field: value}
            info = store.add_credential(
                args.provider, args.name, value, credential_type=args.type, weight=args.weight
            )
            print(f"added credential {info.provider}/{info.name}: {info.display_text}")
        elif args.action == "rotate-key":
            info = store.rotate_credential(args.provider, args.name, _read_secret(args))
            print(f"rotated credential {info.provider}/{info.name}: {info.display_text}")
        elif args.action in ("enable", "disable"):
            store.update_credential(args.provider, args.name, active=args.action == "enable")
        elif args.action == "delete":
            store.delete_credential(args.provider, args.name)
        frame = credentials_frame(store.list_credentials(getattr(args, "provider", None)))
        cols = ["provider", "name", "credential_type", "display_text", "active", "weight"]
        _show(frame[cols] if not frame.empty else frame, getattr(args, "csv", None))
    return 0


def _filter(args: argparse.Namespace) -> RateFilter:
    return RateFilter.create(args.provider, args.type, args.model)


def cmd_rates(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        if args.action == "list":
            rates = store.list_rates(_filter(args), include_deprecated=not args.active_only)
            _show(rates_frame(rates, _listing_price(store)), args.csv)
            return 0
        if args.action == "set":
            return _rates_set(store, args)
        if args.action == "delete":
            store.delete_rate(args.id, reason=args.reason)
            print(f"deleted rate {args.id}")
            return 0
        if args.action == "import":
            return _rates_import(store, args)
        if args.action == "bulk-update":
            return _rates_bulk(store, args)
    raise AssertionError(args.action)


def _listing_price(store: Store) -> Any:
    """The stored credit price for markup columns; a list must show even if it is bad."""
    try:
        return plausible_credit_price(store.get_operator_settings().credit_price)
    except errors.ValidationError as exc:
        print(
            f"warning: stored settings: {exc}; markup and below-cost columns left blank "
            "— fix it with `python -m hubkit settings --credit-price …`",
            file=sys.stderr,
        )
        return None  # fmt: skip


def _rates_set(store: Store, args: argparse.Namespace) -> int:
    costs = None
    if args.unit_cost_input is not None or args.unit_cost_output is not None:
        costs = {"input": args.unit_cost_input or "0", "output": args.unit_cost_output or "0"}
    try:
        current = store.find_rate(args.rate_provider, args.model_id, args.rate_type)
    except errors.NotFoundError:
        current = None
    if current is None:
        missing = [f"--{n.replace('_', '-')}" for n in ("input_rate", "output_rate")
                   if getattr(args, n) is None]  # fmt: skip
        if missing:
            # a default of 0 would create the model free without anyone having said so
            raise errors.ValidationError(
                f"a new rate needs {' and '.join(missing)} (credits per unit; give 0 "
                "explicitly for a free side)",
                field=missing[0].lstrip("-").replace("-", "_"),
            )
        providers = args.also or []
        spec = RateSpec.create(
            args.rate_provider,
            args.model_id,
            args.rate_type,
            input_rate=args.input_rate,
            output_rate=args.output_rate,
            model_display=args.display,
            unit_costs=costs,
            description=args.description,
        )
        if providers:
            made = store.create_rates_batch(spec, [spec.provider, *providers], reason=args.reason)
        else:
            made = [store.create_rate(spec, reason=args.reason)]
        _show(rates_frame(made), None)
        return 0
    changes: dict[str, Any] = {}
    for name in ("input_rate", "output_rate", "description"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.display is not None:
        changes["model_display"] = args.display
    if costs is not None:
        changes["unit_costs"] = costs
    version = args.expected_version if args.expected_version is not None else current.version
    rate = store.update_rate(current.id, version, reason=args.reason, **changes)
    _show(rates_frame([rate]), None)
    return 0


def _rates_import(store: Store, args: argparse.Namespace) -> int:
    path = Path(args.file) if args.file else shipped_catalog_path()
    catalog = load_catalog(path, currency=args.currency, exchange_rate=args.exchange_rate)
    result = store.import_catalog(
        catalog,
        create_missing=args.create_missing,
        providers=[p.strip() for p in args.provider.split(",")] if args.provider else None,
        profit_margin=args.margin,
        credit_price=args.credit_price,
        rederive_rates=args.rederive,
        reason=args.reason,
    )
    print(
        f"catalog {path.name}: {len(catalog.entries)} entries, {len(catalog.unmapped)} unmapped; "
        f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}, "
        f"not in store {result.not_in_store}, drift > threshold {len(result.drifted)}"
    )
    return 0


def _rates_bulk(store: Store, args: argparse.Namespace) -> int:
    rate_filter = _filter(args).check_providers(p.name for p in store.list_providers())
    preview = store.preview_bulk_update(args.margin, args.credit_price, rate_filter)
    if not rate_filter.is_empty and not (preview.changes or preview.skipped):
        raise errors.NothingMatchedError(
            f"the filter ({rate_filter.describe()}) matches no rate: nothing to update; "
            "check it with `python -m hubkit rates list` and the same options"
        )
    _show(preview_frame(preview), args.csv)
    print(
        f"\n{len(preview.changed)} rates change, {len(preview.unchanged)} unchanged, "
        f"{len(preview.skipped)} skipped ({SkipReason.summary()})"
    )
    if args.show_skipped and preview.skipped:
        _show(skipped_frame(preview), None)
    if not args.apply:
        try:
            check_zero_rates(preview, allow_zero_rates=args.allow_zero_rates)
        except errors.ValidationError as exc:
            # a look, not a write: exit 0, but an --apply of it would be refused
            print(f"warning: {exc}".replace("refused: ", "--apply would refuse this: ", 1),
                  file=sys.stderr)  # fmt: skip
        print("dry run: nothing written (add --apply to write these numbers)")
        return 0
    check_zero_rates(preview, allow_zero_rates=args.allow_zero_rates)
    result = store.apply_bulk_update(preview, reason=args.reason)
    print(f"applied: {result.updated} rates updated, {len(result.history_ids)} history rows")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        if args.revert is not None:
            store.revert(args.revert, force=args.force, reason=args.reason)
            print(f"reverted history entry {args.revert}")
        entries = store.history(
            rate_id=args.rate_id, provider=args.provider, model=args.model,
            job_run_id=args.job_run, limit=args.limit,
        )  # fmt: skip
        frame = history_frame(entries)
        cols = ["id", "changed_at", "provider", "model", "type", "change_type",
                "previous_input_rate", "current_input_rate", "previous_output_rate",
                "current_output_rate", "actor", "reason", "job_run_id", "proposal_id"]  # fmt: skip
        _show(frame if args.csv or frame.empty else frame[cols], args.csv)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    if args.action == "generate":
        # Printed on purpose: this is how an operator gets a key for HUBKIT_SECRET_KEY.
        print(generate_key())
        return 0
    with _open_store(args) as store:
        if args.action == "rotate":
            n = store.rotate_keys()
            print(f"re-encrypted {n} credentials with the newest key; old keys still readable")
            print("run `python -m hubkit keys drop-old` once backups no longer need them")
        else:
            store.drop_old_keys()
            print("old keys dropped: only the newest key remains")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    settings = get_settings()
    with _open_store(args) as store:
        path = store.backup(Path(args.destination), overwrite=args.force)
    where = "HUBKIT_SECRET_KEY" if settings.secret_key else str(settings.key_file)
    print(f"backup written to {path}")
    print(f"the credentials in it are encrypted: keep the key ({where}) safe and apart, "
          "without it the backup's credentials cannot be decrypted")  # fmt: skip
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo()


# ---- parser ----------------------------------------------------------------------------
def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", help="comma-separated provider names (default: all)")
    p.add_argument("--type", help="comma-separated rate types (default: all)")
    p.add_argument("--model", help="glob on the model id, e.g. 'gpt-4o*'")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hubkit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", help="overrides HUBKIT_DATABASE_URL")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="create/migrate the store and its key").set_defaults(func=cmd_init)
    sub.add_parser("demo", help="the main job on the embedded default").set_defaults(func=cmd_demo)

    p = sub.add_parser("settings", help="show or set currency, credit price, target margin")
    p.add_argument("--currency")
    p.add_argument("--credit-price")
    p.add_argument("--target-margin")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("providers", help="list/add/delete providers")
    p.add_argument("action", choices=["list", "add", "delete"])
    p.add_argument("name", nargs="?")
    p.add_argument("--display-name")
    p.add_argument("--base-url")
    p.add_argument("--region")
    p.add_argument("--disabled", action="store_true")
    p.add_argument("--custom", action="store_true", help="a provider the hub doesn't know")
    p.add_argument("--csv")
    p.set_defaults(func=cmd_providers)

    p = sub.add_parser("credentials", help="list/add/rotate-key/enable/disable/delete")
    p.add_argument("action", choices=["list", "add", "rotate-key", "enable", "disable", "delete"])
    p.add_argument("provider", nargs="?")
    p.add_argument("name", nargs="?")
    p.add_argument("--type", default="api_key", choices=["api_key", "access_key_pair", "custom"])
    p.add_argument("--access-key-id", help="for access_key_pair (the secret is prompted)")
    p.add_argument("--field", default="token", help="field name for a custom credential")
    p.add_argument("--weight", type=int, default=100)
    p.add_argument("--value-stdin", action="store_true", help="read the secret from stdin")
    p.add_argument("--csv")
    p.set_defaults(func=cmd_credentials)

    p = sub.add_parser("rates", help="list/set/delete/import/bulk-update model rates")
    rsub = p.add_subparsers(dest="action", required=True)
    q = rsub.add_parser("list")
    _add_filters(q)
    q.add_argument("--active-only", action="store_true", help="hide deprecated rates")
    q.add_argument("--csv", help="write CSV to this file ('-' for stdout)")
    q = rsub.add_parser("set", help="create a rate, or update it (optimistic locking)")
    q.add_argument("rate_provider", metavar="provider")
    q.add_argument("model_id", metavar="model")
    q.add_argument("rate_type", metavar="type")
    q.add_argument("--input-rate")
    q.add_argument("--output-rate")
    q.add_argument("--unit-cost-input")
    q.add_argument("--unit-cost-output")
    q.add_argument("--display")
    q.add_argument("--description")
    q.add_argument("--also", nargs="+", help="create the same rate for these providers too")
    q.add_argument("--expected-version", type=int, help="fail if the rate is not at it")
    q.add_argument("--reason")
    q = rsub.add_parser("delete")
    q.add_argument("id", type=int)
    q.add_argument("--reason")
    q = rsub.add_parser("import", help="unit costs from a LiteLLM JSON or CSV price catalog")
    q.add_argument("file", nargs="?", help="default: the shipped sample catalog")
    q.add_argument("--provider", help="only these providers (comma-separated)")
    q.add_argument("--create-missing", action="store_true")
    q.add_argument("--rederive", action="store_true", help="recompute rates with the margin")
    q.add_argument("--margin")
    q.add_argument("--credit-price")
    q.add_argument("--currency", default="USD")
    q.add_argument("--exchange-rate", help="currency per USD, required if currency != USD")
    q.add_argument("--reason")
    q = rsub.add_parser("bulk-update", help="margin-mode bulk update (dry run unless --apply)")
    _add_filters(q)
    q.add_argument("--margin", help="profit margin %% (default: stored target)")
    q.add_argument("--credit-price", help="currency per credit (default: stored)")
    q.add_argument("--apply", action="store_true", help="write the previewed numbers")
    q.add_argument("--dry-run", action="store_true", help="the default; for explicitness")
    q.add_argument("--show-skipped", action="store_true")
    q.add_argument(
        "--allow-zero-rates", action="store_true",
        help="confirm an update that makes a priced rate 0 (free) or rounds one to 0",
    )  # fmt: skip
    q.add_argument("--reason")
    q.add_argument("--csv")
    p.set_defaults(func=cmd_rates)

    p = sub.add_parser("history", help="rate history; --revert ID undoes one change")
    p.add_argument("--rate-id", type=int)
    p.add_argument("--provider")
    p.add_argument("--model")
    p.add_argument("--job-run")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--revert", type=int, metavar="HISTORY_ID")
    p.add_argument("--force", action="store_true")
    p.add_argument("--reason")
    p.add_argument("--csv")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("keys", help="generate / rotate / drop-old encryption keys")
    p.add_argument("action", choices=["generate", "rotate", "drop-old"])
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("backup", help="consistent copy of the database")
    p.add_argument("destination")
    p.add_argument(
        "--force", action="store_true", help="replace an existing file (never the live database)"
    )
    p.set_defaults(func=cmd_backup)

    job_commands.register(sub)
    hub_commands.register(sub)
    proposal_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    if args.command in ("providers", "credentials") and args.action != "list":
        if not args.name and args.action != "list":
            parser.error(f"{args.command} {args.action} needs a name")
    try:
        return int(args.func(args) or 0)
    except errors.HubkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except BrokenPipeError:
        return 0


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str, sort_keys=True)
