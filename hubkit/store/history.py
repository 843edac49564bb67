"""Rate history: queries, the rate in force at a time, the timeline for replay, revert."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hubkit._columns import TIMELINE_COLUMNS
from hubkit.domain import ChangeType, RateType, UnitCosts
from hubkit.errors import ConflictError, NotFoundError, ValidationError
from hubkit.store.base import StoreBase, history_dict, history_value, unit_costs_of
from hubkit.store.proposals import ProposalAction, ProposedChange, scheduled_changes_in
from hubkit.store.rates import (
    deprecation_from_snapshot,
    insert_history,
    rate_triple,
    spec_columns,
    spec_from_snapshot,
)
from hubkit.store.schema import ProviderRow, RateHistoryRow, RateRow
from hubkit.store.types import utcnow
from hubkit.store.values import HistoryEntry, HubPush, RateAt

_NEVER_REVERTIBLE = {ChangeType.REVERT.value, ChangeType.HUB_PUSH.value}
# Rows that record where a rate went, not a change of its value: no new period of prices.
_NOT_A_PRICE_CHANGE = (ChangeType.HUB_PUSH.value,)


class _RevertFields(TypedDict):
    """The history_dict arguments every row a revert writes shares (passed as ``**``)."""

    provider: str
    model: str
    type: str
    change_type: str
    changed_at: datetime
    actor: str
    reason: str | None
    metadata: dict[str, Any] | None


class HistoryOps(StoreBase):
    def history(
        self,
        *,
        rate_id: int | None = None,
        provider: str | None = None,
        model: str | None = None,
        type: Any = None,
        job_run_id: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[HistoryEntry]:
        """History rows, newest first, filtered by any of the arguments."""
        stmt = select(RateHistoryRow).order_by(
            RateHistoryRow.changed_at.desc(), RateHistoryRow.id.desc()
        )
        if rate_id is not None:
            stmt = stmt.where(RateHistoryRow.rate_id == rate_id)
        if provider:
            stmt = stmt.where(RateHistoryRow.provider == provider.lower())
        if model:
            stmt = stmt.where(RateHistoryRow.model == model)
        if type is not None:
            stmt = stmt.where(RateHistoryRow.type == RateType.parse(type).value)
        if job_run_id:
            stmt = stmt.where(RateHistoryRow.job_run_id == job_run_id)
        if since is not None:
            stmt = stmt.where(RateHistoryRow.changed_at >= since)
        if limit:
            stmt = stmt.limit(limit)
        with self._unit() as session:
            return [history_value(r) for r in session.scalars(stmt)]

    def record_hub_push(
        self,
        *,
        provider: str,
        model: str,
        type: Any,
        rate_id: int | None,
        before: tuple[Any, Any, UnitCosts | None] | None,
        after: tuple[Any, Any, UnitCosts | None] | None,
        rate_version: int | None = None,
        source: str | None = None,
        reason: str | None = None,
        metadata: dict[str, Any] | None = None,
        job_run_id: str | None = None,
    ) -> HistoryEntry:
        """Record that a rate was pushed to the hub (``hub_push``; never revertible).

        ``before`` is what the hub had (None: it had no such rate), ``after`` what it has
        now (None: deleted there), each as (input rate, output rate, unit costs).
        """
        push = HubPush(provider, model, type, rate_id, before, after, rate_version, source,
                       reason, metadata, job_run_id)  # fmt: skip
        (entry,) = self.record_hub_pushes([push])
        return entry

    def record_hub_pushes(self, pushes: Sequence[HubPush]) -> list[HistoryEntry]:
        """Several ``hub_push`` rows in one transaction (all or none), in the given order.

        One commit for many pushes: ``apply`` with several requests in flight records the
        rates that finished together at once instead of waiting on a commit for each.
        """
        changed_at = utcnow()
        rows = [
            history_dict(
                rate_id=p.rate_id,
                provider=p.provider.lower(),
                model=p.model,
                type=RateType.parse(p.type).value,
                change_type=ChangeType.HUB_PUSH,
                before=p.before,
                after=p.after,
                changed_at=changed_at,
                actor=self.actor,
                rate_version=p.rate_version,
                source=p.source,
                reason=p.reason,
                job_run_id=p.job_run_id,
                metadata=p.metadata,
            )
            for p in pushes
        ]
        if not rows:
            return []
        with self._unit(write=True) as session:
            ids = insert_history(session, rows)
            return [history_value(session.get_one(RateHistoryRow, i)) for i in ids]

    def rate_at(
        self, provider: str, model: str, type: Any, at: datetime, *, scheduled: bool = True
    ) -> RateAt | None:
        """The rate of (provider, model, type) in force at ``at``; None if none was.

        With ``scheduled`` (the default) an approved rate proposal that takes effect by
        ``at`` and is not applied yet counts too: the answer is flagged ``scheduled`` and
        names the proposal (so next month's prices can be looked up today).
        """
        if at.tzinfo is None:
            raise ValidationError("at must be timezone-aware (UTC)", field="at", value=at)
        rtype = RateType.parse(type)
        with self._unit() as session:
            row = session.scalars(
                select(RateHistoryRow)
                .where(
                    RateHistoryRow.provider == provider.lower(),
                    RateHistoryRow.model == model,
                    RateHistoryRow.type == rtype.value,
                    RateHistoryRow.changed_at <= at,
                    RateHistoryRow.change_type.not_in(_NOT_A_PRICE_CHANGE),
                )
                .order_by(RateHistoryRow.changed_at.desc(), RateHistoryRow.id.desc())
                .limit(1)
            ).first()
            pending = scheduled_changes_in(session) if scheduled else []
        key = (provider.lower(), model, rtype.value)
        due = [(when, pid, c) for when, pid, c in pending if c.key == key and when <= at]
        if due and (row is None or due[-1][0] > row.changed_at):
            when, pid, change = due[-1]
            if change.after is None:  # a scheduled delete
                return None
            after = change.after
            return RateAt(
                provider=key[0],
                model=model,
                type=rtype,
                input_rate=Decimal(after["input_rate"]),
                output_rate=Decimal(after["output_rate"]),
                unit_costs=_costs(after),
                since=when,
                history_id=None,
                scheduled=True,
                proposal_id=pid,
            )
        if row is None or row.current_input_rate is None or row.current_output_rate is None:
            return None
        return RateAt(
            provider=row.provider,
            model=row.model,
            type=rtype,
            input_rate=row.current_input_rate,
            output_rate=row.current_output_rate,
            unit_costs=unit_costs_of(row.current_unit_cost_input, row.current_unit_cost_output),
            since=row.changed_at,
            history_id=row.id,
        )

    def rate_timeline(self, *, backfill: bool = True, scheduled: bool = True) -> pd.DataFrame:
        """Rates in force over time, for the billing replay (one row per period).

        Columns: provider, model, type, input_rate, output_rate, cache_read_rate,
        cache_write_rate, unit_cost_input, unit_cost_output, valid_from, valid_to
        (NaT = open), then ``scheduled`` (bool) and ``proposal_id``. History does not track
        cache rates: the current ones apply to every period. With ``backfill`` the first
        recorded values also price calls made before hubkit first saw the rate (the gateway
        may be older than its hubkit store). With ``scheduled`` (the default) approved rate
        proposals with an effective time, not applied yet, add their periods from that time
        on (``scheduled`` True, ``proposal_id`` set): a replay of this month's usage shifted
        into next month prices it at next month's rates.
        """
        with self._unit() as session:
            hist = session.execute(
                select(
                    RateHistoryRow.provider,
                    RateHistoryRow.model,
                    RateHistoryRow.type,
                    RateHistoryRow.current_input_rate,
                    RateHistoryRow.current_output_rate,
                    RateHistoryRow.current_unit_cost_input,
                    RateHistoryRow.current_unit_cost_output,
                    RateHistoryRow.changed_at,
                )
                .where(RateHistoryRow.change_type.not_in(_NOT_A_PRICE_CHANGE))
                .order_by(
                    RateHistoryRow.provider,
                    RateHistoryRow.model,
                    RateHistoryRow.type,
                    RateHistoryRow.changed_at,
                    RateHistoryRow.id,
                )
            ).all()
            caching = {
                (pname, r.model, r.type): (r.cache_read_rate, r.cache_write_rate)
                for r, pname in session.execute(select(RateRow, ProviderRow.name).join(ProviderRow))
            }
            pending = scheduled_changes_in(session) if scheduled else []
        records: list[dict[str, Any]] = []
        previous_key = None
        for h in hist:
            key = (h.provider, h.model, h.type)
            if records and previous_key == key and pd.isna(records[-1]["valid_to"]):
                records[-1]["valid_to"] = pd.Timestamp(h.changed_at)
            first = previous_key != key
            previous_key = key
            if h.current_input_rate is None:  # a delete ends the previous period
                continue
            read, write = caching.get(key, (None, None))
            records.append(
                {
                    "provider": h.provider,
                    "model": h.model,
                    "type": h.type,
                    "input_rate": h.current_input_rate,
                    "output_rate": h.current_output_rate,
                    "cache_read_rate": read,
                    "cache_write_rate": write,
                    "unit_cost_input": h.current_unit_cost_input,
                    "unit_cost_output": h.current_unit_cost_output,
                    "valid_from": pd.NaT if (first and backfill) else pd.Timestamp(h.changed_at),
                    "valid_to": pd.NaT,
                    "scheduled": False,
                    "proposal_id": None,
                }
            )
        _add_scheduled(records, pending)
        records.sort(key=_period_order)
        frame = pd.DataFrame.from_records(
            records, columns=[*TIMELINE_COLUMNS, "scheduled", "proposal_id"]
        )
        frame["scheduled"] = frame["scheduled"].astype(bool)
        for col in ("valid_from", "valid_to"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame

    def revert(
        self, history_id: int, *, force: bool = False, reason: str | None = None
    ) -> list[HistoryEntry]:
        """Undo one recorded change (see :meth:`revert_changes`)."""
        return self.revert_changes([history_id], force=force, reason=reason)

    def revert_job_run(
        self, job_run_id: str, *, force: bool = False, reason: str | None = None
    ) -> list[HistoryEntry]:
        """Undo every change a job run made, as one unit."""
        with self._unit() as session:
            ids = session.scalars(
                select(RateHistoryRow.id).where(
                    RateHistoryRow.job_run_id == job_run_id,
                    RateHistoryRow.change_type.not_in(_NEVER_REVERTIBLE),
                )
            ).all()
        if not ids:
            raise NotFoundError(f"job run {job_run_id!r} changed no rates; nothing to revert")
        return self.revert_changes(list(ids), force=force, reason=reason or f"revert {job_run_id}")

    def revert_changes(
        self, history_ids: Iterable[int], *, force: bool = False, reason: str | None = None
    ) -> list[HistoryEntry]:
        """Put rates back as they were before the given changes, in one transaction.

        Refused with ConflictError when a rate changed again since (its values now differ
        from what the change left), unless ``force``.
        """
        with self._unit(write=True) as session:
            entries = list(
                session.scalars(
                    select(RateHistoryRow)
                    .where(RateHistoryRow.id.in_(list(history_ids)))
                    .order_by(RateHistoryRow.changed_at.desc(), RateHistoryRow.id.desc())
                )
            )
            if not entries:
                raise NotFoundError("no such history entries; list them with `hubkit history`")
            now = utcnow()
            written: list[dict[str, Any]] = []
            conflicts: list[str] = []
            for entry in entries:
                if entry.change_type in _NEVER_REVERTIBLE:
                    raise ValidationError(
                        f"history entry {entry.id} is a {entry.change_type}: revert the "
                        "original change instead",
                        field="history_id",
                    )
                row = self._current_row(session, entry)
                problem = _revert_conflict(entry, row)
                if problem and not force:
                    conflicts.append(f"{entry.provider}/{entry.model}: {problem}")
                    continue
                written.append(self._undo(session, entry, row, now, reason))
            if conflicts:
                raise ConflictError(
                    "cannot revert, the rates changed again since: "
                    + "; ".join(conflicts[:10])
                    + " — pass force=True (--force) to overwrite those later changes"
                )
            ids = insert_history(session, written)
            rows = session.scalars(select(RateHistoryRow).where(RateHistoryRow.id.in_(ids)))
            return [history_value(r) for r in rows]

    def _current_row(self, session: Session, entry: RateHistoryRow) -> RateRow | None:
        return session.scalars(
            select(RateRow)
            .join(ProviderRow)
            .where(
                ProviderRow.name == entry.provider,
                RateRow.model == entry.model,
                RateRow.type == entry.type,
            )
        ).first()

    def _undo(
        self,
        session: Session,
        entry: RateHistoryRow,
        row: RateRow | None,
        now: datetime,
        reason: str | None,
    ) -> dict[str, Any]:
        common: _RevertFields = {
            "provider": entry.provider,
            "model": entry.model,
            "type": entry.type,
            "change_type": ChangeType.REVERT,
            "changed_at": now,
            "actor": self.actor,
            "reason": reason,
            "metadata": {"reverts": entry.id},
        }
        if entry.change_type == ChangeType.DELETE.value:
            if row is not None:  # forced over a re-created rate: replace its values
                session.delete(row)
                session.flush()
            snapshot = (entry.extra or {})["snapshot"]
            spec = spec_from_snapshot(snapshot)
            provider = session.scalars(
                select(ProviderRow).where(ProviderRow.name == entry.provider)
            ).one()
            new = RateRow(
                provider=provider,
                created_at=now,
                updated_at=now,
                **spec_columns(spec),
                **deprecation_from_snapshot(snapshot),
            )
            session.add(new)
            session.flush()
            return history_dict(
                rate_id=new.id,
                before=None,
                after=rate_triple(new),
                rate_version=new.version,
                **common,
            )
        if row is None:
            raise ConflictError(
                f"{entry.provider}/{entry.model} was deleted since; revert the delete first"
            )
        before = rate_triple(row)
        if entry.previous_input_rate is None:  # a create: undo by deleting
            session.delete(row)
            return history_dict(rate_id=row.id, before=before, after=None, **common)
        row.input_rate = entry.previous_input_rate
        # only a create (handled above) has no previous rates: both are set or neither
        row.output_rate = entry.previous_output_rate  # type: ignore[assignment]
        row.unit_cost_input = entry.previous_unit_cost_input
        row.unit_cost_output = entry.previous_unit_cost_output
        row.updated_at = now
        session.flush()
        return history_dict(
            rate_id=row.id,
            before=before,
            after=rate_triple(row),
            rate_version=row.version,
            **common,
        )


def _revert_conflict(entry: RateHistoryRow, row: RateRow | None) -> str | None:
    """Why reverting ``entry`` would overwrite a later change (None if it would not)."""
    if entry.change_type == ChangeType.DELETE.value:
        return "it was re-created since" if row is not None else None
    if row is None:
        return "it was deleted since"
    left = (
        entry.current_input_rate,
        entry.current_output_rate,
        unit_costs_of(entry.current_unit_cost_input, entry.current_unit_cost_output),
    )
    if rate_triple(row) != left:
        return f"now {row.input_rate}/{row.output_rate}, the change left {left[0]}/{left[1]}"
    return None


def _costs(snapshot: Mapping[str, Any]) -> UnitCosts | None:
    cin, cout = snapshot.get("unit_cost_input"), snapshot.get("unit_cost_output")
    return unit_costs_of(
        None if cin is None else Decimal(cin), None if cout is None else Decimal(cout)
    )


def _opt(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


_NEVER = pd.Timestamp.min.tz_localize("UTC")


def _period_order(record: Mapping[str, Any]) -> tuple[str, str, str, pd.Timestamp]:
    start = record["valid_from"]
    return (
        record["provider"], record["model"], record["type"],
        _NEVER if pd.isna(start) else pd.Timestamp(start),
    )  # fmt: skip


def _add_scheduled(
    records: list[dict[str, Any]],
    pending: Sequence[tuple[datetime, int, ProposedChange]],
) -> None:
    """Close each key's open period at a scheduled change's time and open the new one."""
    for when, proposal_id, change in pending:
        start = pd.Timestamp(when)
        open_ = [
            r for r in records
            if (r["provider"], r["model"], r["type"]) == change.key and pd.isna(r["valid_to"])
        ]  # fmt: skip
        if open_:
            last = open_[-1]
            if not pd.isna(last["valid_from"]) and pd.Timestamp(last["valid_from"]) >= start:
                continue  # already superseded by a later recorded change
            last["valid_to"] = start
        if change.action is ProposalAction.DELETE or change.after is None:
            continue
        after = change.after
        records.append(
            {
                "provider": change.provider,
                "model": change.model,
                "type": change.type.value,
                "input_rate": Decimal(after["input_rate"]),
                "output_rate": Decimal(after["output_rate"]),
                "cache_read_rate": _opt(after.get("cache_read_rate")),
                "cache_write_rate": _opt(after.get("cache_write_rate")),
                "unit_cost_input": _opt(after.get("unit_cost_input")),
                "unit_cost_output": _opt(after.get("unit_cost_output")),
                "valid_from": start,
                "valid_to": pd.NaT,
                "scheduled": True,
                "proposal_id": proposal_id,
            }
        )
