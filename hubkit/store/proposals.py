"""Rate proposals in the store: frozen, content-hashed rate changes, reviewed before they apply.

A proposal is one immutable ``rate_proposals`` row (its changes as JSON, their SHA-256, who
proposed it, why, when it takes effect, the impact the reviewers saw) and the append-only
``rate_proposal_events`` that move it along::

    draft ──proposed──▶ proposed ──approved (× required)──▶ approved ──applied──▶ applied
                           │  └──rejected──▶ rejected            │
                           └──superseded / expired ◀─────────────┘

The state is derived from the events, never stored; neither table is ever updated (the
database refuses it, see migration 0004). Approving needs another person than the proposer,
the hash the approver reviewed, and base versions that have not moved (else the proposal is
*stale*: re-propose). Applying writes every change in one transaction through the store's
rate write paths, history rows carrying the proposal id, with the ``applied`` event in the
same transaction: a due proposal is applied exactly once however many job runs race for it.

Who acts: on PostgreSQL the database login (``session_user``; the server fills it in, so a
client cannot claim to be someone else); on SQLite the OS user (``HUBKIT_ACTOR``), which is
a convention, not a control.

The value types live here (the store persists and applies them); :mod:`hubkit.proposals`
builds proposals from every change path and computes their impact.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hubkit.decimals import plain
from hubkit.domain import ChangeType, RateType
from hubkit.errors import (
    ConflictError,
    NotFoundError,
    StaleVersionError,
    ValidationError,
)
from hubkit.store.base import write_settings
from hubkit.store.rates import RateOps, spec_from_snapshot
from hubkit.store.schema import (
    ProviderRow,
    RateProposalEventRow,
    RateProposalRow,
    RateRow,
    SettingRow,
)
from hubkit.store.types import utcnow

__all__ = [
    "APPLY_LOCK_KEY",
    "ProposalAction",
    "ProposalApplyResult",
    "ProposalEvent",
    "ProposalOps",
    "ProposalSource",
    "ProposalState",
    "ProposedChange",
    "Proposal",
    "check_effective_at",
    "content_hash",
]

#: The first key of the advisory lock a PostgreSQL apply takes (the second is the id).
APPLY_LOCK_KEY = zlib.crc32(b"hubkit-proposal-apply") & 0x7FFFFFFF
#: Operator setting: approvals a new proposal requires (default 1; 0 only on SQLite).
REQUIRED_APPROVALS_SETTING = "required_approvals"
#: How far in the past an effective time may lie when proposed (clock skew, typing time).
_PAST_GRACE = timedelta(minutes=5)


class ProposalState(StrEnum):
    """Where a proposal stands (derived from its events)."""

    DRAFT = "draft"
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"

    @property
    def closed(self) -> bool:
        return self in _CLOSED


_CLOSED = frozenset(
    {ProposalState.REJECTED, ProposalState.APPLIED, ProposalState.SUPERSEDED, ProposalState.EXPIRED}
)


class ProposalSource(StrEnum):
    """The change path a proposal was made from."""

    EDIT = "edit"
    BATCH = "batch"
    BULK = "bulk"
    CATALOG = "catalog"
    REVERT = "revert"
    CSV = "csv"


class ProposalAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


#: The keys of a rate snapshot (``before`` / ``after``), as :func:`rate_snapshot` gives them.
SNAPSHOT_KEYS = (
    "provider", "model", "model_display", "type", "input_rate", "output_rate",
    "unit_cost_input", "unit_cost_output", "cache_read_rate", "cache_write_rate",
    "model_metadata", "description", "deprecated", "deprecated_at", "deprecated_reason",
)  # fmt: skip
_DECIMAL_KEYS = frozenset(
    {"input_rate", "output_rate", "unit_cost_input", "unit_cost_output", "cache_read_rate",
     "cache_write_rate"}
)  # fmt: skip


def _snapshot(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A snapshot as canonical JSON values: decimals as plain text, lower-case provider."""
    if values is None:
        return None
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in _DECIMAL_KEYS and value is not None:
            out[key] = plain(Decimal(str(value)))
        elif key == "provider":
            out[key] = str(value).strip().lower()
        elif key == "type":
            out[key] = RateType.parse(value).value
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class ProposedChange:
    """One rate change of a proposal.

    ``before`` is the rate as the proposer saw it (None for a create), ``after`` what it
    becomes (None for a delete); both are rate snapshots (:func:`hubkit.store.rates.
    rate_snapshot`: decimals as plain text). ``base_version`` is the rate's version then
    (None for a create): if it moved, the proposal is stale.
    """

    action: ProposalAction
    provider: str
    model: str
    type: RateType
    rate_id: int | None = None
    base_version: int | None = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        action = ProposalAction(self.action)
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "provider", self.provider.strip().lower())
        object.__setattr__(self, "type", RateType.parse(self.type))
        object.__setattr__(self, "before", _snapshot(self.before))
        object.__setattr__(self, "after", _snapshot(self.after))
        if action is ProposalAction.CREATE:
            if self.after is None or self.before is not None or self.rate_id is not None:
                raise ValidationError("a create has an `after` snapshot only", field="after")
        elif self.rate_id is None or self.base_version is None or self.before is None:
            raise ValidationError(
                f"an {action.value} names the rate id, its base version and `before`",
                field="base_version",
            )
        if action is ProposalAction.UPDATE and self.after is None:
            raise ValidationError("an update needs an `after` snapshot", field="after")
        if action is ProposalAction.DELETE and self.after is not None:
            raise ValidationError("a delete has no `after` snapshot", field="after")
        if self.after is not None:
            spec_from_snapshot({"provider": self.provider, **self.after})  # validates it

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.provider, self.model, self.type.value)

    def value(self, side: str, name: str) -> Decimal | None:
        """A decimal of ``before`` or ``after`` (None when absent)."""
        snap = self.before if side == "before" else self.after
        raw = None if snap is None else snap.get(name)
        return None if raw is None else Decimal(raw)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "provider": self.provider,
            "model": self.model,
            "type": self.type.value,
            "rate_id": self.rate_id,
            "base_version": self.base_version,
            "before": None if self.before is None else dict(self.before),
            "after": None if self.after is None else dict(self.after),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, trusted: bool = False) -> ProposedChange:
        """A change from its JSON; ``trusted`` (read back from the store, where it was
        checked when proposed and its hash is checked before use) skips re-validation:
        a 10,000-rate proposal is read in milliseconds, and every write path re-checks."""
        if not trusted:
            return cls(
                action=ProposalAction(data["action"]),
                provider=data["provider"],
                model=data["model"],
                type=RateType.parse(data["type"]),
                rate_id=data.get("rate_id"),
                base_version=data.get("base_version"),
                before=data.get("before"),
                after=data.get("after"),
            )
        change = object.__new__(cls)
        values = {
            "action": ProposalAction(data["action"]),
            "provider": data["provider"],
            "model": data["model"],
            "type": RateType.parse(data["type"]),
            "rate_id": data.get("rate_id"),
            "base_version": data.get("base_version"),
            "before": data.get("before"),
            "after": data.get("after"),
        }
        for name, value in values.items():
            object.__setattr__(change, name, value)
        return change

    @property
    def rates_only(self) -> bool:
        """An update that changes nothing but the input and output rates (the bulk update's
        kind of change: applied set-based)."""
        if self.action is not ProposalAction.UPDATE or self.before is None or self.after is None:
            return False
        keys = set(self.before) | set(self.after)
        return all(
            self.before.get(k) == self.after.get(k)
            for k in keys
            if k not in ("input_rate", "output_rate")
        )


def content_hash(
    changes: Sequence[ProposedChange],
    effective_at: datetime | None,
    source: str,
    catalog_source: str | None = None,
    catalog_version: str | None = None,
) -> str:
    """SHA-256 of the canonical JSON of what a proposal would do (what an approver signs)."""
    document = {
        "changes": [c.to_json() for c in changes],
        "effective_at": None if effective_at is None else _utc_text(effective_at),
        "source": {
            "kind": str(source),
            "catalog_source": catalog_source,
            "catalog_version": catalog_version,
        },
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_effective_at(effective_at: datetime | None) -> None:
    """None (on approval), or a timezone-aware time not in the past."""
    if effective_at is None:
        return
    _utc_text(effective_at)
    if effective_at < utcnow() - _PAST_GRACE:
        raise ValidationError(
            f"effective_at {_utc_text(effective_at)} is in the past; give a future UTC time, "
            "or none for 'on approval'",
            field="effective_at",
        )


def _utc_text(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValidationError("effective_at must be timezone-aware (UTC)", field="effective_at")
    return at.astimezone(utcnow().tzinfo).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class ProposalEvent:
    id: int
    event: str
    actor: str
    reason: str | None
    content_hash: str
    at: datetime
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Proposal:
    """A stored proposal with its events and derived state."""

    id: int
    content_hash: str
    state: ProposalState
    proposer: str
    reason: str | None
    source: ProposalSource
    changes: tuple[ProposedChange, ...]
    effective_at: datetime | None
    created_at: datetime
    required_approvals: int
    catalog_source: str | None = None
    catalog_version: str | None = None
    supersedes: int | None = None
    reverts: int | None = None
    impact: Mapping[str, Any] | None = None
    usage_fingerprint: str | None = None
    metadata: Mapping[str, Any] | None = None
    events: tuple[ProposalEvent, ...] = ()
    #: whether the stored hash is the hash of the stored content (False: tampered with)
    intact: bool = True

    @property
    def approvals(self) -> tuple[str, ...]:
        """Distinct approvers of this content so far, in order."""
        return tuple(
            dict.fromkeys(
                e.actor
                for e in self.events
                if e.event == "approved" and e.content_hash == self.content_hash
            )
        )

    @property
    def applied_at(self) -> datetime | None:
        return next((e.at for e in self.events if e.event == "applied"), None)

    def is_due(self, now: datetime | None = None) -> bool:
        """Approved and its time has come (None = on approval)."""
        if self.state is not ProposalState.APPROVED:
            return False
        return self.effective_at is None or self.effective_at <= (now or utcnow())

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for change in self.changes:
            counts[change.action.value] = counts.get(change.action.value, 0) + 1
        parts = ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "no changes"
        when = "on approval" if self.effective_at is None else _utc_text(self.effective_at)
        return (
            f"proposal {self.id} ({self.source.value}, {self.state.value}): {parts}; "
            f"effective {when}; by {self.proposer}"
        )


@dataclass(frozen=True, slots=True)
class ProposalApplyResult:
    """What applying one proposal did."""

    proposal_id: int
    applied: bool  # False: it had already been applied (by another run): nothing written
    created: int = 0
    updated: int = 0
    deleted: int = 0
    history_ids: tuple[int, ...] = ()
    at: datetime | None = None


def _member(enum: Any, value: Any, field: str) -> Any:
    """``enum(value)``, or a ValidationError naming the choices."""
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise ValidationError(
            f"{field} {value!r} is not one of: {choices}", field=field, value=value
        ) from None


def _state(row: RateProposalRow, events: Sequence[RateProposalEventRow]) -> ProposalState:
    kinds = [e.event for e in events]
    for closing in ("applied", "rejected", "superseded", "expired"):
        if closing in kinds:
            return ProposalState(closing)
    if "proposed" not in kinds:
        return ProposalState.DRAFT
    # an approval counts only for the content it approved (its hash is this proposal's)
    approvers = {
        e.actor for e in events if e.event == "approved" and e.content_hash == row.content_hash
    }
    if len(approvers) >= row.required_approvals:
        return ProposalState.APPROVED
    return ProposalState.PROPOSED


def _event_value(e: RateProposalEventRow) -> ProposalEvent:
    return ProposalEvent(e.id, e.event, e.actor, e.reason, e.content_hash, e.at, e.detail)


def _proposal_value(row: RateProposalRow, events: Sequence[RateProposalEventRow]) -> Proposal:
    changes = tuple(ProposedChange.from_json(c, trusted=True) for c in row.changes)
    recomputed = content_hash(
        changes, row.effective_at, row.source, row.catalog_source, row.catalog_version
    )
    return Proposal(
        id=row.id,
        content_hash=row.content_hash,
        state=_state(row, events),
        proposer=row.proposer,
        reason=row.reason,
        source=ProposalSource(row.source),
        changes=changes,
        effective_at=row.effective_at,
        created_at=row.created_at,
        required_approvals=row.required_approvals,
        catalog_source=row.catalog_source,
        catalog_version=row.catalog_version,
        supersedes=row.supersedes,
        reverts=row.reverts,
        impact=row.impact,
        usage_fingerprint=row.usage_fingerprint,
        metadata=row.extra,
        events=tuple(_event_value(e) for e in events),
        intact=recomputed == row.content_hash,
    )


_CHANGE_TYPES = {
    (ProposalSource.BULK, ProposalAction.UPDATE): ChangeType.BULK_UPDATE,
    (ProposalSource.CATALOG, ProposalAction.UPDATE): ChangeType.CATALOG_IMPORT,
    (ProposalSource.BATCH, ProposalAction.CREATE): ChangeType.BULK_CREATE,
}


def _change_type(source: ProposalSource, action: ProposalAction) -> ChangeType:
    default = {
        ProposalAction.CREATE: ChangeType.CREATE,
        ProposalAction.UPDATE: ChangeType.MANUAL_UPDATE,
        ProposalAction.DELETE: ChangeType.DELETE,
    }[action]
    return _CHANGE_TYPES.get((source, action), default)


def _update_fields(after: Mapping[str, Any]) -> dict[str, Any]:
    """The update_row arguments that set a rate to an ``after`` snapshot."""
    costs = None
    if after.get("unit_cost_input") is not None or after.get("unit_cost_output") is not None:
        costs = {
            "input": after.get("unit_cost_input") or "0",
            "output": after.get("unit_cost_output") or "0",
        }
    caching = None
    if after.get("cache_read_rate") is not None or after.get("cache_write_rate") is not None:
        caching = {
            "readRate": after.get("cache_read_rate"),
            "writeRate": after.get("cache_write_rate"),
        }
    fields: dict[str, Any] = {
        "input_rate": after["input_rate"],
        "output_rate": after["output_rate"],
        "unit_costs": costs,
        "caching": caching,
    }
    for name in ("model_display", "description", "model_metadata"):
        if name in after:
            fields[name] = after[name]
    return fields


class ProposalOps(RateOps):
    """Rate proposals: create, read, approve, reject, supersede, expire, apply."""

    # ---- who acts ----------------------------------------------------------------------
    def current_actor(self) -> str:
        """Who the store records as acting: the PostgreSQL login, else HUBKIT_ACTOR / OS user."""
        if self.engine.dialect.name == "postgresql":
            with self._unit() as session:
                # the login, as the triggers record it (SET ROLE changes current_user only)
                return str(session.scalar(text("SELECT session_user")))
        return self.actor

    @property
    def enforces_identity(self) -> bool:
        """True where the database itself names the actor (PostgreSQL); on SQLite the
        second approver is a convention, not a control."""
        return self.engine.dialect.name == "postgresql"

    def required_approvals(self) -> int:
        """The operator setting new proposals copy (default 1)."""
        with self._unit() as session:
            row = session.get(SettingRow, REQUIRED_APPROVALS_SETTING)
        return 1 if row is None else int(row.value)

    def set_required_approvals(self, count: int) -> int:
        """Approvals a new proposal needs: ≥ 1, or 0 on a single-user SQLite store (then a
        proposal is approved as soon as it is proposed: no second person looks at it)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0 or count > 10:
            raise ValidationError(
                f"required approvals must be a whole number 0 to 10, got {count!r}",
                field="required_approvals",
            )
        if count == 0 and self.enforces_identity:
            raise ValidationError(
                "0 required approvals is allowed only on a single-user SQLite store; a "
                "PostgreSQL store needs at least 1",
                field="required_approvals",
            )
        with self._unit(write=True) as session:
            write_settings(session, {REQUIRED_APPROVALS_SETTING: str(count)})
        return count

    # ---- reading -----------------------------------------------------------------------
    def get_proposal(self, proposal_id: int) -> Proposal:
        with self._unit() as session:
            return self._proposal(session, proposal_id)

    def list_proposals(
        self,
        *,
        state: Iterable[str] | str | None = None,
        source: str | None = None,
        proposer: str | None = None,
        limit: int | None = None,
    ) -> list[Proposal]:
        """Proposals, newest first, filtered by state(s), source kind or proposer."""
        wanted = None
        if state is not None:
            names = [state] if isinstance(state, str) else list(state)
            wanted = {_member(ProposalState, s, "state") for s in names}
        with self._unit() as session:
            stmt = select(RateProposalRow).order_by(RateProposalRow.id.desc())
            if source:
                kind = _member(ProposalSource, source, "source")
                stmt = stmt.where(RateProposalRow.source == kind.value)
            if proposer:
                stmt = stmt.where(RateProposalRow.proposer == proposer)
            rows = list(session.scalars(stmt))
            events = self._events(session, [r.id for r in rows])
        out = []
        for row in rows:
            value = _proposal_value(row, events.get(row.id, []))
            if wanted is None or value.state in wanted:
                out.append(value)
                if limit and len(out) >= limit:
                    break
        return out

    def proposal_staleness(self, proposal_id: int) -> list[str]:
        """Why the proposal's base versions no longer hold (empty: it is not stale)."""
        with self._unit() as session:
            proposal = self._proposal(session, proposal_id)
            return self._stale(session, proposal.changes)

    def rate_snapshots(
        self, rate_ids: Iterable[int] | None = None
    ) -> dict[int, tuple[int, dict[str, Any]]]:
        """Rate id → (version, snapshot) for ``rate_ids`` (default: every rate); the
        snapshot is what a proposal records as ``before`` (see :func:`rate_snapshot`)."""
        wanted = None if rate_ids is None else list(dict.fromkeys(rate_ids))
        columns = [RateRow.id, RateRow.version, ProviderRow.name.label("provider")] + [
            getattr(RateRow, name) for name in SNAPSHOT_KEYS if name != "provider"
        ]
        out: dict[int, tuple[int, dict[str, Any]]] = {}
        with self._unit() as session:
            chunks = [None] if wanted is None else [
                wanted[i : i + 1000] for i in range(0, len(wanted), 1000)
            ]  # fmt: skip
            for chunk in chunks:
                stmt = select(*columns).join(ProviderRow)
                if chunk is not None:
                    stmt = stmt.where(RateRow.id.in_(chunk))
                for row in session.execute(stmt):
                    values = row._mapping
                    snap = {name: values[name] for name in SNAPSHOT_KEYS}
                    out[values["id"]] = (values["version"], _snapshot(snap) or {})
        if wanted is not None:
            missing = [i for i in wanted if i not in out]
            if missing:
                raise NotFoundError(f"no model rate with id {', '.join(map(str, missing[:5]))}")
        return out

    def scheduled_changes(self, *, after: datetime | None = None) -> list[Proposal]:
        """Approved proposals with a future effective time, not applied yet, by time."""
        moment = after or utcnow()
        found = [
            p
            for p in self.list_proposals(state=ProposalState.APPROVED)
            if p.effective_at is not None and p.effective_at > moment
        ]
        return sorted(found, key=lambda p: (p.effective_at or moment, p.id))

    # ---- writing -----------------------------------------------------------------------
    def create_proposal(
        self,
        changes: Sequence[ProposedChange],
        *,
        source: str,
        reason: str | None = None,
        effective_at: datetime | None = None,
        catalog_source: str | None = None,
        catalog_version: str | None = None,
        supersedes: int | None = None,
        reverts: int | None = None,
        impact: Mapping[str, Any] | None = None,
        usage_fingerprint: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        draft: bool = False,
    ) -> Proposal:
        """Store a proposal (and, unless ``draft``, its ``proposed`` event) in one transaction.

        ``supersedes`` closes that open proposal (``superseded`` event) in the same
        transaction. A proposal with nothing to change is refused.
        """
        kind = _member(ProposalSource, source, "source")
        items = tuple(changes)
        if not items:
            raise ValidationError(
                "the proposal changes nothing; nothing was stored", field="changes"
            )
        keys = [c.key for c in items]
        if len(set(keys)) != len(keys):
            raise ValidationError(
                "a proposal changes each (provider, model, type) at most once", field="changes"
            )
        check_effective_at(effective_at)
        digest = content_hash(items, effective_at, kind, catalog_source, catalog_version)
        actor = self.current_actor()
        with self._unit(write=True) as session:
            required = self._required(session)
            stale = self._stale(session, items)
            if stale:
                raise StaleVersionError(
                    f"{len(stale)} rates changed since this proposal was made "
                    f"({'; '.join(stale[:5])}); nothing was stored — make it again"
                )
            if supersedes is not None:
                old = self._proposal(session, supersedes)
                if old.state.closed:
                    raise ConflictError(
                        f"proposal {supersedes} is {old.state.value}: only an open one can be "
                        "superseded"
                    )
            now = utcnow()
            row = RateProposalRow(
                content_hash=digest,
                changes=[c.to_json() for c in items],
                source=kind.value,
                catalog_source=catalog_source,
                catalog_version=catalog_version,
                effective_at=effective_at,
                proposer=actor,
                reason=reason,
                required_approvals=required,
                supersedes=supersedes,
                reverts=reverts,
                impact=dict(impact) if impact is not None else None,
                usage_fingerprint=usage_fingerprint,
                extra=dict(metadata) if metadata is not None else None,
                created_at=now,
            )
            session.add(row)
            session.flush()
            if not draft:
                self._event(session, row.id, "proposed", digest, actor, reason, now)
            if supersedes is not None:
                old_row = session.get_one(RateProposalRow, supersedes)
                self._event(
                    session, supersedes, "superseded", old_row.content_hash, actor,
                    f"superseded by proposal {row.id}", now, {"by": row.id},
                )  # fmt: skip
            session.flush()
            return self._proposal(session, row.id)

    def submit_proposal(self, proposal_id: int) -> Proposal:
        """A draft becomes proposed (reviewers see it)."""
        actor = self.current_actor()
        with self._unit(write=True) as session:
            proposal = self._proposal(session, proposal_id)
            if proposal.state is not ProposalState.DRAFT:
                raise ConflictError(
                    f"proposal {proposal_id} is {proposal.state.value}, not a draft"
                )
            self._event(session, proposal_id, "proposed", proposal.content_hash, actor, None)
            return self._proposal(session, proposal_id)

    def approve_proposal(
        self, proposal_id: int, content_hash: str, *, reason: str | None = None
    ) -> Proposal:
        """Approve what you reviewed: ``content_hash`` must be the proposal's.

        Refused for the proposer (maker ≠ checker), a hash that does not match (the
        proposal is not what was reviewed), a stale proposal (re-propose), a closed one,
        and a second approval by the same person.
        """
        actor = self.current_actor()
        with self._unit(write=True) as session:
            proposal = self._proposal(session, proposal_id)
            self._check_reviewable(proposal, content_hash)
            if proposal.state is not ProposalState.PROPOSED:
                raise ConflictError(
                    f"proposal {proposal_id} is {proposal.state.value}: only a proposed one "
                    "can be approved"
                )
            if actor == proposal.proposer:
                raise ConflictError(
                    f"{actor} proposed proposal {proposal_id}: another person must approve it "
                    "(maker ≠ checker)"
                )
            if actor in proposal.approvals:
                raise ConflictError(f"{actor} has already approved proposal {proposal_id}")
            stale = self._stale(session, proposal.changes)
            if stale:
                raise StaleVersionError(
                    f"proposal {proposal_id} is stale: {'; '.join(stale[:5])}; it cannot be "
                    "approved — re-propose it from the current rates"
                )
            self._event(session, proposal_id, "approved", content_hash, actor, reason)
            return self._proposal(session, proposal_id)

    def reject_proposal(
        self, proposal_id: int, reason: str, *, content_hash: str | None = None
    ) -> Proposal:
        """Reject an open proposal; a reason is required."""
        if not reason or not reason.strip():
            raise ValidationError("say why the proposal is rejected", field="reason")
        actor = self.current_actor()
        with self._unit(write=True) as session:
            proposal = self._proposal(session, proposal_id)
            if content_hash is not None:
                self._check_reviewable(proposal, content_hash)
            if proposal.state.closed:
                raise ConflictError(f"proposal {proposal_id} is already {proposal.state.value}")
            self._event(
                session, proposal_id, "rejected", proposal.content_hash, actor, reason.strip()
            )
            return self._proposal(session, proposal_id)

    def expire_proposal(self, proposal_id: int, reason: str) -> Proposal:
        """Close an open proposal that can no longer apply (stale, or past its time)."""
        actor = self.current_actor()
        with self._unit(write=True) as session:
            proposal = self._proposal(session, proposal_id)
            if proposal.state.closed:
                raise ConflictError(f"proposal {proposal_id} is already {proposal.state.value}")
            self._event(session, proposal_id, "expired", proposal.content_hash, actor, reason)
            return self._proposal(session, proposal_id)

    def apply_proposal(
        self,
        proposal_id: int,
        *,
        now: datetime | None = None,
        job_run_id: str | None = None,
        content_hash: str | None = None,
    ) -> ProposalApplyResult:
        """Apply an approved, due proposal in one transaction (idempotent).

        Already applied (say, by a concurrent job run): nothing is written and
        ``applied=False``. Not approved, not due, tampered with, or stale: refused, nothing
        written. Every change goes through the rate write paths (versions checked),
        history rows carry the proposal id, and the ``applied`` event is written in the
        same transaction.
        """
        moment = now or utcnow()
        actor = self.current_actor()
        with self._unit(write=True) as session:
            if self.engine.dialect.name == "postgresql":
                # one applier per proposal at a time; the next one then sees it applied
                session.execute(
                    text("SELECT pg_advisory_xact_lock(:k, :id)"),
                    {"k": APPLY_LOCK_KEY, "id": proposal_id},
                )
            proposal = self._proposal(session, proposal_id)
            if proposal.state is ProposalState.APPLIED:
                return ProposalApplyResult(proposal_id, applied=False, at=proposal.applied_at)
            if content_hash is not None and content_hash != proposal.content_hash:
                raise ConflictError(
                    f"proposal {proposal_id} has content hash {proposal.content_hash[:12]}…, "
                    f"not {content_hash[:12]}…: it is not what was reviewed; nothing applied"
                )
            if not proposal.intact:
                raise ConflictError(
                    f"proposal {proposal_id} was tampered with (its changes no longer match "
                    "its content hash); nothing applied — re-propose it"
                )
            if proposal.state is not ProposalState.APPROVED:
                raise ConflictError(
                    f"proposal {proposal_id} is {proposal.state.value}: only an approved "
                    f"proposal is applied ({len(proposal.approvals)} of "
                    f"{proposal.required_approvals} approvals)"
                )
            if proposal.effective_at is not None and proposal.effective_at > moment:
                raise ConflictError(
                    f"proposal {proposal_id} takes effect at "
                    f"{_utc_text(proposal.effective_at)}; it is not due yet"
                )
            stale = self._stale(session, proposal.changes)
            if stale:
                raise StaleVersionError(
                    f"proposal {proposal_id} is stale: {'; '.join(stale[:5])}; nothing was "
                    "applied — re-propose it from the current rates"
                )
            counts = {a: 0 for a in ProposalAction}
            history: list[int] = []
            source = f"proposal {proposal_id}"
            staged = [c for c in proposal.changes if c.rates_only]
            if staged:
                # the bulk update's set-based write: 10,000 rates in one statement each
                history.extend(
                    self.write_staged_rates(
                        session,
                        [
                            (
                                c.rate_id or 0,
                                c.base_version or 0,
                                c.value("after", "input_rate") or Decimal(0),
                                c.value("after", "output_rate") or Decimal(0),
                            )
                            for c in staged
                        ],
                        change_type=_change_type(proposal.source, ProposalAction.UPDATE),
                        source=source,
                        reason=proposal.reason,
                        job_run_id=job_run_id,
                        proposal_id=proposal_id,
                        actor=actor,
                    )  # fmt: skip
                )
                counts[ProposalAction.UPDATE] += len(staged)
            for change in proposal.changes:
                if change.rates_only:
                    continue
                change_type = _change_type(proposal.source, change.action)
                if change.action is ProposalAction.CREATE:
                    assert change.after is not None
                    spec = spec_from_snapshot({"provider": change.provider, **change.after})
                    _, ids = self.create_rows(
                        session, spec, [change.provider], change_type=change_type,
                        job_run_id=job_run_id, reason=proposal.reason, source=source,
                        proposal_id=proposal_id, actor=actor,
                    )  # fmt: skip
                    history.extend(ids)
                elif change.action is ProposalAction.UPDATE:
                    assert change.after is not None and change.rate_id is not None
                    assert change.base_version is not None
                    _, hid = self.update_row(
                        session, change.rate_id, change.base_version,
                        _update_fields(change.after), change_type=change_type,
                        job_run_id=job_run_id, reason=proposal.reason, source=source,
                        proposal_id=proposal_id, actor=actor,
                    )  # fmt: skip
                    if hid is not None:
                        history.append(hid)
                else:
                    assert change.rate_id is not None
                    history.append(
                        self.delete_row(
                            session,
                            change.rate_id,
                            change.base_version,
                            reason=proposal.reason,
                            source=source,
                            proposal_id=proposal_id,
                            actor=actor,
                        )  # fmt: skip
                    )
                counts[change.action] += 1
            session.flush()
            detail = {"history_ids": history, "job_run_id": job_run_id}
            self._event(
                session, proposal_id, "applied", proposal.content_hash, actor, None, None, detail
            )
            return ProposalApplyResult(
                proposal_id,
                applied=True,
                created=counts[ProposalAction.CREATE],
                updated=counts[ProposalAction.UPDATE],
                deleted=counts[ProposalAction.DELETE],
                history_ids=tuple(history),
                at=utcnow(),
            )

    def due_proposals(self, now: datetime | None = None) -> list[Proposal]:
        """Approved proposals whose time has come, oldest first."""
        moment = now or utcnow()
        due = [p for p in self.list_proposals(state=ProposalState.APPROVED) if p.is_due(moment)]
        return sorted(due, key=lambda p: (p.effective_at or p.created_at, p.id))

    # ---- helpers -----------------------------------------------------------------------
    def _required(self, session: Session) -> int:
        row = session.get(SettingRow, REQUIRED_APPROVALS_SETTING)
        count = 1 if row is None else int(row.value)
        if count < 1 and self.enforces_identity:
            count = 1
        return count

    def _check_reviewable(self, proposal: Proposal, digest: str) -> None:
        if digest != proposal.content_hash or not proposal.intact:
            raise ConflictError(
                f"proposal {proposal.id}'s content hash does not match what was reviewed "
                f"({digest[:12]}… vs {proposal.content_hash[:12]}…"
                + ("" if proposal.intact else "; its stored changes were altered")
                + "): review it again"
            )

    def _proposal(self, session: Session, proposal_id: int) -> Proposal:
        row = session.get(RateProposalRow, proposal_id)
        if row is None:
            raise NotFoundError(
                f"no rate proposal {proposal_id}; list them with `python -m hubkit proposals list`"
            )
        events = self._events(session, [proposal_id]).get(proposal_id, [])
        return _proposal_value(row, events)

    def _events(
        self, session: Session, ids: Sequence[int]
    ) -> dict[int, list[RateProposalEventRow]]:
        out: dict[int, list[RateProposalEventRow]] = {}
        if not ids:
            return out
        stmt = select(RateProposalEventRow).order_by(RateProposalEventRow.id)
        if len(ids) < 500:
            stmt = stmt.where(RateProposalEventRow.proposal_id.in_(list(ids)))
        for event in session.scalars(stmt):
            out.setdefault(event.proposal_id, []).append(event)
        return out

    def _event(
        self,
        session: Session,
        proposal_id: int,
        event: str,
        digest: str,
        actor: str,
        reason: str | None,
        at: datetime | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        session.add(
            RateProposalEventRow(
                proposal_id=proposal_id,
                event=event,
                actor=actor,
                reason=reason,
                content_hash=digest,
                at=at or utcnow(),
                detail=detail,
            )
        )
        session.flush()

    def _stale(self, session: Session, changes: Sequence[ProposedChange]) -> list[str]:
        """Changes whose base no longer holds, described (empty: none)."""
        ids = [c.rate_id for c in changes if c.rate_id is not None]
        versions: dict[int, int] = {}
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            versions.update(
                session.execute(
                    select(RateRow.id, RateRow.version).where(RateRow.id.in_(chunk))
                ).all()
            )
        creates = [c for c in changes if c.action is ProposalAction.CREATE]
        existing: set[tuple[str, str, str]] = set()
        if creates:
            models = sorted({c.model for c in creates})
            for start in range(0, len(models), 1000):
                rows = session.execute(
                    select(ProviderRow.name, RateRow.model, RateRow.type)
                    .join(ProviderRow)
                    .where(RateRow.model.in_(models[start : start + 1000]))
                )
                existing.update((p, m, t) for p, m, t in rows)
        problems = []
        for change in changes:
            label = f"{change.provider}/{change.model} ({change.type.value})"
            if change.action is ProposalAction.CREATE:
                if change.key in existing:
                    problems.append(f"{label} exists now")
                continue
            assert change.rate_id is not None
            now = versions.get(change.rate_id)
            if now is None:
                problems.append(f"{label} was deleted")
            elif now != change.base_version:
                problems.append(f"{label} v{change.base_version}→v{now}")
        return problems


def scheduled_changes_in(
    session: Session,
) -> list[tuple[datetime, int, ProposedChange]]:
    """(effective time, proposal id, change) of every approved proposal with an effective
    time that is not applied yet, by time: what ``rate_at`` and the replay timeline add as
    *scheduled* changes."""
    closed = (
        select(RateProposalEventRow.id)
        .where(
            RateProposalEventRow.proposal_id == RateProposalRow.id,
            RateProposalEventRow.event.in_([s.value for s in _CLOSED]),
        )
        .exists()
    )
    rows = list(
        session.scalars(
            select(RateProposalRow).where(RateProposalRow.effective_at.is_not(None), ~closed)
        )
    )
    if not rows:
        return []
    ids = [r.id for r in rows]
    events: dict[int, list[RateProposalEventRow]] = {}
    for event in session.scalars(
        select(RateProposalEventRow)
        .where(RateProposalEventRow.proposal_id.in_(ids))
        .order_by(RateProposalEventRow.id)
    ):
        events.setdefault(event.proposal_id, []).append(event)
    out: list[tuple[datetime, int, ProposedChange]] = []
    for row in rows:
        if _state(row, events.get(row.id, [])) is not ProposalState.APPROVED:
            continue
        assert row.effective_at is not None
        out.extend(
            (row.effective_at, row.id, ProposedChange.from_json(c, trusted=True))
            for c in row.changes
        )
    out.sort(key=lambda item: (item[0], item[1]))
    return out
