"""The credit ledger in Decimal: every grant, purchase, use, settlement and expiry, timed.

A roll-forward needs *when* each credit moved, exactly; the vectorised replay
(:mod:`hubkit.replay.ledger`) keeps float totals per user. This module builds one event
table, in Decimal, from either source finance has:

- :func:`replay_events` — usage replayed under the gateway's billing settings (domain.md,
  "Billing workflow"): the new-user grant at a user's first call, the 402 check, packs
  bought by the users who buy, draws and expiry. Same rules as the Decimal reference
  replay (:mod:`hubkit.replay.reference`), which the tests hold it to per user.
- :func:`file_events` — the gateway's own grants and purchases given as a ledger file
  (:func:`read_credit_ledger`, the Payment Kit keeps them; hubkit does not fetch them) and
  the calls that used credits. Every call in such records happened: nothing is refused.

**Consumption order** (domain.md, "Credits and money"): a call draws from the credit
that expires first; credit that never expires comes last; on a tie promotional credit
goes before paid credit. With the gateway's settings the only expiring credit is the
new-user grant, so promotional credit is used first. A call that costs more than what is
left (the gateway lets any positive balance through) leaves the balance below zero: that
*overdraft* is consumption funded by nothing until the next credit arrives, which settles
it first (event ``settle``).

One event per row (:data:`EVENT_COLUMNS`); the balance columns are signed changes:

=================  ==================================================================
event              promotional / paid / overdraft
=================  ==================================================================
grant              +credits / 0 / 0
purchase           0 / +credits / 0  (``money``: cash paid)
use                −promotional part / −paid part / +part funded by nothing
settle             −credits from the kind that paid / ... / −credits (overdraft repaid)
expire             −unused credits of the expiring grant (or purchase) / 0
refused            0 / 0 / 0  (a 402: nothing moved; counted for the KPIs)
=================  ==================================================================

A user's balance is promotional + paid − overdraft, and ``credits`` is the size of the
movement (always ≥ 0). Times are UTC; a grant or purchase precedes a call at the same
instant, as the gateway grants at sign-in before serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hubkit._readers import check_file, read_csv_frame
from hubkit.billing_settings import BillingSettings
from hubkit.decimals import EXACT, ZERO, quantize, to_decimal
from hubkit.errors import ValidationError
from hubkit.finance._exact import exact
from hubkit.pricing.rules import validate_credit_price
from hubkit.replay.credit_buckets import CreditBucket, draw_credits
from hubkit.replay.engine import buyer_draws
from hubkit.replay.inputs import Behaviour
from hubkit.replay.timeline import price_exact
from hubkit.usage.schema import to_ns, validate_usage

__all__ = [
    "EVENT_COLUMNS",
    "LEDGER_FILE_COLUMNS",
    "file_events",
    "read_credit_ledger",
    "replay_events",
    "validate_credit_ledger",
]

_NS_PER_DAY = 86_400 * 10**9
PROMOTIONAL = "promotional"
PAID = "paid"
_KIND_ORDER = {PROMOTIONAL: 0, PAID: 1}

#: The event table's columns (see the module docstring).
EVENT_COLUMNS = (
    "time", "user", "event", "kind", "provider", "model", "type", "credits", "promotional",
    "paid", "overdraft", "money", "provider_cost", "promotional_cost", "has_cost",
)  # fmt: skip

#: A grants/purchases ledger file: one row per credit grant or purchase.
#:
#: ==========  ========  ===============================================================
#: column      required  meaning
#: ==========  ========  ===============================================================
#: time        yes       when the credit was granted or bought (ISO 8601; UTC if no zone)
#: user        yes       the user's DID, as in the usage records
#: kind        yes       ``grant`` (promotional) or ``purchase`` (paid)
#: credits     yes       credits granted or bought (> 0)
#: amount      no        money paid for a purchase (default credits × credit price; a
#:                       grant's amount must be empty or 0)
#: expires_at  no        when unused credit expires (empty: never)
#: id          no        the Payment Kit's id of the grant (unique when given)
#: ==========  ========  ===============================================================
LEDGER_FILE_COLUMNS = ("time", "user", "kind", "credits", "amount", "expires_at", "id")
_REQUIRED = ("time", "user", "kind", "credits")
_KINDS = {"grant": PROMOTIONAL, "purchase": PAID}
_LEDGER_HINT = (
    "a credit ledger file has the columns time, user, kind (grant | purchase), credits, "
    "and optionally amount, expires_at, id (see hubkit.finance.LEDGER_FILE_COLUMNS)"
)


@dataclass
class _User:
    buyer: bool = False
    buckets: list[CreditBucket] = field(default_factory=list)
    debt: Decimal = ZERO


class _Events:
    """Rows of the event table, appended in time order per user."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def add(
        self,
        when: int,
        user: str,
        event: str,
        *,
        kind: str = "",
        credits: Decimal = ZERO,
        promotional: Decimal = ZERO,
        paid: Decimal = ZERO,
        overdraft: Decimal = ZERO,
        money: Decimal = ZERO,
        call: tuple[str, str, str] = ("", "", ""),
        cost: Decimal = ZERO,
        promo_cost: Decimal = ZERO,
        has_cost: bool = True,
    ) -> None:
        self.rows.append(
            (when, user, event, kind, *call, credits, promotional, paid, overdraft, money,
             cost, promo_cost, has_cost)
        )  # fmt: skip

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(self.rows, columns=list(EVENT_COLUMNS))
        times = np.asarray(frame["time"].to_numpy(dtype=np.int64), dtype=np.int64)
        frame["time"] = pd.to_datetime(times.view("datetime64[ns]"), utc=True)
        frame["has_cost"] = frame["has_cost"].astype(bool)
        order = _EVENT_ORDER
        rank = frame["event"].map(order).to_numpy()
        keys = np.lexsort((np.arange(len(frame)), rank, times))
        return frame.iloc[keys].reset_index(drop=True)


# grants and purchases before the calls of the same instant; expiry of a grant at t before
# the calls at t (the gateway's check is expires ≤ now)
_EVENT_ORDER = {"grant": 0, "purchase": 0, "expire": 1, "settle": 2, "use": 3, "refused": 3}


def _split(kind: str, amount: Decimal) -> tuple[Decimal, Decimal]:
    """``amount`` as a change of (promotional, paid) balance."""
    return (amount, ZERO) if kind == PROMOTIONAL else (ZERO, amount)


def _expire(state: _User, user: str, now: int, out: _Events) -> None:
    keep = []
    for bucket in state.buckets:
        if bucket.expires is not None and bucket.expires <= now:
            if bucket.remaining > 0:
                promo, paid = _split(bucket.kind, -bucket.remaining)
                out.add(
                    bucket.expires, user, "expire", kind=bucket.kind, credits=bucket.remaining,
                    promotional=promo, paid=paid,
                )  # fmt: skip
        else:
            keep.append(bucket)
    state.buckets = keep


def _settle(state: _User, user: str, now: int, bucket: CreditBucket, out: _Events) -> None:
    """New credit pays what the user owes first (the balance is credit − use)."""
    repay = min(bucket.remaining, state.debt)
    if repay <= 0:
        return
    bucket.remaining -= repay
    state.debt -= repay
    promo, paid = _split(bucket.kind, -repay)
    out.add(
        now, user, "settle", kind=bucket.kind, credits=repay, promotional=promo, paid=paid,
        overdraft=-repay,
    )  # fmt: skip


def _bucket(kind: str, credits: Decimal, expires: int | None) -> CreditBucket:
    return CreditBucket(kind, credits, expires, _KIND_ORDER[kind])


def _draw(state: _User, amount: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Take ``amount`` in the consumption order; (promotional, paid, unfunded)."""
    taken, unfunded, state.buckets = draw_credits(state.buckets, amount)
    state.debt += unfunded
    return taken.get(PROMOTIONAL, ZERO), taken.get(PAID, ZERO), unfunded


def _use(
    state: _User,
    user: str,
    now: int,
    credits: Decimal,
    cost: Decimal | None,
    call: tuple[str, str, str],
    out: _Events,
    *,
    billing: bool,
) -> None:
    spent = cost if cost is not None else ZERO
    if not billing:  # no credit system: the call is costed, no balance moves
        out.add(now, user, "use", credits=credits, call=call, cost=spent, has_cost=cost is not None)
        return
    promo, paid, unfunded = _draw(state, credits)
    promo_cost = EXACT.divide(EXACT.multiply(spent, promo), credits) if credits > 0 else ZERO
    out.add(
        now, user, "use", credits=credits, promotional=-promo, paid=-paid, overdraft=unfunded,
        call=call, cost=spent, promo_cost=promo_cost, has_cost=cost is not None,
    )  # fmt: skip


def _ns(value: Any, name: str) -> int:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)


def _call_keys(usage: pd.DataFrame) -> list[tuple[str, str, str]]:
    columns = [usage[c].astype(str).tolist() for c in ("provider", "model", "type")]
    return list(zip(*columns, strict=True))


@exact
def replay_events(
    usage: pd.DataFrame,
    timeline: pd.DataFrame,
    settings: BillingSettings,
    *,
    credit_price: Any = 1,
    behaviour: Behaviour | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """The event table of ``usage`` replayed under ``settings`` (see the module docstring).

    Calls are priced exactly at the rate in force (:func:`price_exact`); a call with no
    rate is refused by the gateway and leaves no event. ``as_of`` (default: the last
    call) ends the period: grants expiring up to it count as expired.
    """
    knobs = behaviour or Behaviour()
    price = validate_credit_price(credit_price)
    frame = validate_usage(usage)
    priced = price_exact(frame, timeline)
    when = to_ns(frame["time"])
    users = frame["user"].astype(str).to_numpy()
    order = np.lexsort((np.arange(len(frame)), when, users))
    billing = settings.credit_based_billing_enabled
    grant = settings.grant_amount
    lifetime = settings.credit_expiration_days * _NS_PER_DAY
    # credits a pack buys: money / creditPrice at the credit's precision (10 places), so a
    # pack of 10 at a price of 0.003 buys 3333.3333333333 credits, not an endless fraction
    pack = quantize(EXACT.divide(knobs.pack_amount, price)) if knobs.buy_probability else ZERO
    names = sorted(set(users.tolist()))
    draws = dict(zip(names, buyer_draws(names, knobs.seed), strict=True))
    keys = _call_keys(frame)
    credits_col = priced["credits"].tolist()
    cost_col = priced["cost"].tolist()
    out = _Events()
    states: dict[str, _User] = {}
    for i in order:
        name = str(users[i])
        now = int(when[i])
        state = states.get(name)
        if state is None:
            state = _User(buyer=bool(draws[name] < knobs.buy_probability))
            states[name] = state
            if billing and grant > 0:
                expires = now + lifetime if lifetime > 0 else None
                state.buckets.append(_bucket(PROMOTIONAL, grant, expires))
                out.add(now, name, "grant", kind=PROMOTIONAL, credits=grant, promotional=grant)
        _expire(state, name, now, out)
        credits = credits_col[i]
        if credits is None:
            continue  # unsupported: refused by the gateway, never charged
        if billing:
            balance = sum((b.remaining for b in state.buckets), ZERO) - state.debt
            if balance <= 0:
                if not (state.buyer and pack > 0):
                    out.add(now, name, "refused", call=keys[i])
                    continue
                packs = 0
                while balance + packs * pack <= 0:
                    packs += 1
                bought = EXACT.multiply(packs, pack)
                out.add(
                    now, name, "purchase", kind=PAID, credits=bought, paid=bought,
                    money=EXACT.multiply(packs, knobs.pack_amount),
                )  # fmt: skip
                bucket = _bucket(PAID, bought, None)
                _settle(state, name, now, bucket, out)
                if bucket.remaining > 0:
                    state.buckets.append(bucket)
        _use(state, name, now, credits, cost_col[i], keys[i], out, billing=billing)
    end = int(when.max()) if len(frame) else 0
    if as_of is not None:
        end = _ns(as_of, "as_of")
    for name in names:
        _expire(states[name], name, end, out)
    return out.frame()


# ---- a grants / purchases ledger file -------------------------------------------------------
def _fail_row(row: int, column: str, problem: str) -> ValidationError:
    return ValidationError(
        f"credit ledger row {row + 1}, column {column!r}: {problem}; {_LEDGER_HINT}",
        field=column,
    )


def _times(values: pd.Series, column: str, *, optional: bool) -> list[int | None]:
    out: list[int | None] = []
    for row, value in enumerate(values.tolist()):
        if (
            value is None
            or value is pd.NaT
            or (isinstance(value, float) and value != value)
            or (isinstance(value, str) and not value.strip())
        ):
            if not optional:
                raise _fail_row(row, column, "missing")
            out.append(None)
            continue
        try:
            out.append(_ns(value, column))
        except (ValueError, TypeError):
            raise _fail_row(row, column, f"{value!r} is not a time") from None
    return out


def validate_credit_ledger(frame: pd.DataFrame, *, credit_price: Any = 1) -> pd.DataFrame:
    """Check a grants/purchases table (:data:`LEDGER_FILE_COLUMNS`) and normalise it.

    Returns columns time (UTC), user, kind (``grant`` | ``purchase``), credits, amount
    (Decimal), expires_at (UTC or NaT), id, sorted by time. Every error names the row, the
    column and the expected shape; nothing is half-read.
    """
    price = validate_credit_price(credit_price)
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError("a credit ledger must be a table (DataFrame)", field="ledger")
    columns = [str(c).strip() for c in frame.columns]
    body = frame.copy()
    body.columns = columns
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise ValidationError(
            f"credit ledger is missing column(s) {missing}; {_LEDGER_HINT}", field=missing[0]
        )
    unknown = [c for c in columns if c not in LEDGER_FILE_COLUMNS]
    if unknown:
        raise ValidationError(
            f"credit ledger has unknown column(s) {unknown}; {_LEDGER_HINT}", field=unknown[0]
        )
    n = len(body)
    times = _times(body["time"], "time", optional=False)
    expires = _times(body.get("expires_at", pd.Series([None] * n)), "expires_at", optional=True)
    users, kinds, credits, amounts = [], [], [], []
    ids = [None if v is None or v == "" else str(v) for v in body.get("id", [None] * n)]
    for row in range(n):
        user = body["user"].iloc[row]
        if not isinstance(user, str) or not user.strip():
            raise _fail_row(row, "user", f"{user!r} is not a user id")
        users.append(user.strip())
        kind = str(body["kind"].iloc[row]).strip().lower()
        if kind not in _KINDS:
            raise _fail_row(row, "kind", f"{body['kind'].iloc[row]!r} is not grant or purchase")
        kinds.append(kind)
        try:
            amount_of = to_decimal(body["credits"].iloc[row], "credits")
        except ValidationError as exc:
            raise _fail_row(row, "credits", str(exc)) from None
        assert amount_of is not None
        if amount_of <= 0:
            raise _fail_row(row, "credits", f"must be > 0, got {body['credits'].iloc[row]!r}")
        credits.append(amount_of)
        raw = body["amount"].iloc[row] if "amount" in columns else None
        if raw is None or raw == "" or (isinstance(raw, float) and raw != raw):
            money = EXACT.multiply(amount_of, price) if kind == "purchase" else ZERO
        else:
            try:
                checked = to_decimal(raw, "amount")
            except ValidationError as exc:
                raise _fail_row(row, "amount", str(exc)) from None
            assert checked is not None
            money = checked
            if kind == "grant" and money != 0:
                raise _fail_row(row, "amount", "a grant is free: leave amount empty (or 0)")
        amounts.append(money)
        start, end = times[row], expires[row]
        if end is not None and start is not None and end <= start:
            raise _fail_row(row, "expires_at", "must be after time")
    given = [i for i in ids if i is not None]
    if len(given) != len(set(given)):
        dup = next(i for i in given if given.count(i) > 1)
        raise ValidationError(
            f"credit ledger id {dup!r} appears more than once (each grant or purchase once); "
            f"{_LEDGER_HINT}",
            field="id",
        )
    out = pd.DataFrame(
        {
            "time": pd.to_datetime(
                np.array(times, dtype=np.int64).view("datetime64[ns]"), utc=True
            ),
            "user": users,
            "kind": kinds,
            "credits": pd.Series(credits, dtype=object),
            "amount": pd.Series(amounts, dtype=object),
            "expires_at": pd.to_datetime(
                np.array(
                    [np.iinfo(np.int64).min if e is None else e for e in expires], dtype=np.int64
                ).view("datetime64[ns]"),
                utc=True,
            ),
            "id": pd.Series(ids, dtype=object),
        }
    )
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def read_credit_ledger(path: str | Path, *, credit_price: Any = 1) -> pd.DataFrame:
    """Read and validate a grants/purchases ledger CSV (or Parquet) file."""
    file = check_file(path, "credit ledger", hint=_LEDGER_HINT)
    if file.suffix.lower() in (".parquet", ".pq"):
        try:
            raw = pd.read_parquet(file)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise ValidationError(
                f"cannot read {file.name} as Parquet: {exc}; {_LEDGER_HINT}", field="path"
            ) from None
    else:
        raw = read_csv_frame(
            file, "credit ledger", hint=_LEDGER_HINT, dtype=str, keep_default_na=False,
            na_values=[],
        )  # fmt: skip
    return validate_credit_ledger(raw, credit_price=credit_price)


def _charged(usage: pd.DataFrame, timeline: pd.DataFrame) -> tuple[list[Any], list[Any]]:
    """Credits per call: what the gateway stored when it did, else the exact re-pricing."""
    priced = price_exact(usage, timeline)
    credits = priced["credits"].tolist()
    if "stored_credits" in usage.columns:
        stored = usage["stored_credits"].tolist()
        credits = [
            quantize(Decimal(s)) if s is not None and s == s else c
            for s, c in zip(stored, credits, strict=True)
        ]
    return credits, priced["cost"].tolist()


@exact
def file_events(
    usage: pd.DataFrame,
    timeline: pd.DataFrame,
    ledger: pd.DataFrame,
    *,
    credit_price: Any = 1,
    as_of: Any = None,
) -> pd.DataFrame:
    """The event table from a grants/purchases ledger and the calls that used credit.

    Every call in ``usage`` was served (they are the gateway's records); each uses what it
    was charged (``stored_credits`` when the usage has them, else the exact re-pricing) in
    the consumption order. A call neither stored nor priceable is left out.
    """
    credit_ledger = validate_credit_ledger(ledger, credit_price=credit_price)
    frame = validate_usage(usage)
    credits_col, cost_col = _charged(frame, timeline)
    when = to_ns(frame["time"])
    users = frame["user"].astype(str).tolist()
    keys = _call_keys(frame)
    # one timeline of credit arrivals and calls, arrivals first at the same instant
    items: list[tuple[int, int, int, Any]] = []
    for j, entry in enumerate(credit_ledger.itertuples(index=False)):
        arrived: Any = entry.time
        items.append((int(pd.Timestamp(arrived).value), 0, j, entry))
    for i in range(len(frame)):
        items.append((int(when[i]), 1, i, None))
    items.sort(key=lambda t: (t[0], t[1], t[2]))
    states: dict[str, _User] = {}
    out = _Events()
    for now, is_call, idx, entry in items:
        name = users[idx] if is_call else str(entry.user)
        state = states.setdefault(name, _User())
        _expire(state, name, now, out)
        if not is_call:
            kind = _KINDS[entry.kind]
            expires = (
                None if pd.isna(entry.expires_at) else int(pd.Timestamp(entry.expires_at).value)
            )
            bucket = _bucket(kind, entry.credits, expires)
            promo, paid = _split(kind, entry.credits)
            out.add(
                now, name, entry.kind, kind=kind, credits=entry.credits, money=entry.amount,
                promotional=promo, paid=paid,
            )  # fmt: skip
            _settle(state, name, now, bucket, out)
            if bucket.remaining > 0:
                state.buckets.append(bucket)
            continue
        credits = credits_col[idx]
        if credits is None:
            continue
        _use(state, name, now, credits, cost_col[idx], keys[idx], out, billing=True)
    end = max((t[0] for t in items), default=0)
    if as_of is not None:
        end = _ns(as_of, "as_of")
    for name, state in states.items():
        _expire(state, name, end, out)
    return out.frame()
