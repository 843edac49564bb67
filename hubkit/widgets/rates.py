"""Rate editor state: filter, sort, edit one rate (optimistic locking), batch-create, revert.

:class:`RateEditorState` holds everything and does every action through the store; the
ipywidgets view is :class:`hubkit.widgets.rates_view.RateEditorApp`. Implied markup is a
*markup on cost* at the stored credit price (domain.md), never called a margin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import pandas as pd

from hubkit._columns import COST_COLUMNS, PRICE_COLUMNS
from hubkit.decimals import plain, to_decimal
from hubkit.domain import Rate, RateSpec, RateType
from hubkit.errors import StaleVersionError, ValidationError
from hubkit.frames import history_frame, rates_frame
from hubkit.pricing import RateFilter
from hubkit.proposals import Proposal, batch_create_changes, edit_change, propose
from hubkit.store import HistoryEntry, Store
from hubkit.widgets._common import AppState, Message
from hubkit.widgets._propose import parse_effective_at, proposed_message

#: The rate table's columns and their labels, in order.
RATE_COLUMNS = {
    "id": "id",
    "provider": "provider",
    "model": "model",
    "model_display": "display",
    "type": "type",
    "input_rate": "input rate",
    "output_rate": "output rate",
    "unit_cost_input": "unit cost in",
    "unit_cost_output": "unit cost out",
    "input_markup_pct": "input markup on cost %",
    "output_markup_pct": "output markup on cost %",
    "below_cost": "below cost",
    "version": "version",
}
SORTABLE = tuple(RATE_COLUMNS)

HISTORY_COLUMNS = {
    "id": "history id",
    "changed_at": "when (UTC)",
    "change_type": "change",
    "previous_input_rate": "input before",
    "current_input_rate": "input after",
    "previous_output_rate": "output before",
    "current_output_rate": "output after",
    "actor": "who",
    "reason": "why",
    "job_run_id": "job run",
}

#: The edit form's number fields (exact decimals; costs optional).
NUMBER_FIELDS = (*PRICE_COLUMNS, *COST_COLUMNS)
#: The edit form's fields, as :meth:`RateEditorState.form_values` returns them.
EDIT_FIELDS = (*NUMBER_FIELDS, "model_display", "description")

#: Form field of each validation ``field`` name the domain uses.
_FORM_FIELD = {
    "inputRate": "input_rate",
    "outputRate": "output_rate",
    "unitCosts.input": "unit_cost_input",
    "unitCosts.output": "unit_cost_output",
    "unitCosts": "unit_cost_input",
    "modelDisplay": "model_display",
    "description": "description",
    "model": "model",
    "type": "type",
    "provider": "providers",
    "providers": "providers",
}


class RateEditorState(AppState):
    """The rates of the store, one selected for editing, and what the last action said.

    ``errors`` maps a form field (``input_rate``, ``unit_cost_output``, ``model``...) to
    its validation message; ``stale`` is True after an edit lost to someone else's (the
    view then offers "reload").
    """

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.rate_filter = RateFilter()
        self.sort_by = "provider"
        self.ascending = True
        self.selected: Rate | None = None
        self.errors: dict[str, str] = {}
        self.stale = False
        self.credit_price = Decimal(1)
        self.provider_names: list[str] = []
        self._rates: list[Rate] = []
        #: the last proposal made here (:meth:`propose_edit`, :meth:`propose_batch_create`)
        self.proposal: Proposal | None = None
        self.refresh()

    # ---- reading -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read rates, providers and the credit price; keep the selection if it exists."""
        self.credit_price = self.store.get_operator_settings().credit_price
        self.provider_names = [p.name for p in self.store.list_providers()]
        self._rates = self.store.list_rates()
        if self.selected is not None:
            self.selected = next((r for r in self._rates if r.id == self.selected.id), None)
        self.stale = False

    def set_filter(
        self,
        providers: Iterable[str] | str | None = None,
        types: Iterable[str] | str | None = None,
        model_pattern: str | None = None,
    ) -> bool:
        ok, flt = self._attempt(lambda: RateFilter.create(providers, types, model_pattern))
        if ok and flt is not None:
            self.rate_filter = flt
        return ok

    def set_sort(self, column: str, ascending: bool = True) -> None:
        if column not in SORTABLE:
            raise ValidationError(f"cannot sort by {column!r}; choose one of {SORTABLE}")
        self.sort_by, self.ascending = column, ascending

    def table(self) -> pd.DataFrame:
        """The filtered rates, sorted, with markup on cost and the below-cost flag."""
        frame = rates_frame(
            [r for r in self._rates if self.rate_filter.matches(r)], self.credit_price
        )
        if frame.empty:
            return frame
        # Python's sort, not pandas': Decimal columns hold None for "no unit cost".
        values = list(frame[self.sort_by])
        present = sorted((i for i, v in enumerate(values) if v is not None),
                         key=lambda i: values[i], reverse=not self.ascending)  # fmt: skip
        missing = [i for i, v in enumerate(values) if v is None]
        return frame.iloc[present + missing].reset_index(drop=True)

    def visible_ids(self) -> list[int]:
        return [int(i) for i in self.table()["id"]] if self._rates else []

    def rate(self, rate_id: int) -> Rate | None:
        return next((r for r in self._rates if r.id == rate_id), None)

    def select(self, rate_id: int | None) -> None:
        """Select a rate for editing; its version now is the one an edit must still match."""
        self.selected = None if rate_id is None else self.rate(rate_id)
        self.errors = {}
        self.stale = False

    def form_values(self) -> dict[str, str]:
        """The selected rate as the edit form's texts (plain decimals, blank = none)."""
        r = self.selected
        if r is None:
            return dict.fromkeys(EDIT_FIELDS, "")
        costs = r.unit_costs
        return {
            "input_rate": _text(r.input_rate),
            "output_rate": _text(r.output_rate),
            "unit_cost_input": _text(costs.input if costs else None),
            "unit_cost_output": _text(costs.output if costs else None),
            "model_display": r.model_display,
            "description": r.description or "",
        }

    # ---- edit one rate -------------------------------------------------------------------
    def save(
        self,
        *,
        input_rate: str,
        output_rate: str,
        unit_cost_input: str = "",
        unit_cost_output: str = "",
        model_display: str = "",
        description: str = "",
        reason: str = "",
    ) -> bool:
        """Write the edit if the rate is still at the version read; else StaleVersionError."""
        rate = self.selected
        if rate is None:
            self._fail(ValidationError("select a rate to edit first", field="rate"))
            return False
        numbers = self._numbers(
            input_rate=input_rate, output_rate=output_rate,
            unit_cost_input=unit_cost_input, unit_cost_output=unit_cost_output,
        )  # fmt: skip
        if numbers is None:
            return False
        ok, updated = self._attempt(
            lambda: self.store.update_rate(
                rate.id,
                rate.version,
                input_rate=numbers["input_rate"],
                output_rate=numbers["output_rate"],
                unit_costs=_costs(numbers),
                model_display=model_display.strip() or None,
                description=description.strip() or None,
                reason=reason.strip() or None,
            )
        )
        if not ok or updated is None:
            self._field_errors()
            self.stale = isinstance(self.error, StaleVersionError)
            return False
        self._replace(updated)
        changed = updated.version != rate.version
        self._say(Message.success(
            f"saved {updated.provider}/{updated.model} (version {updated.version})" if changed
            else "nothing changed"))  # fmt: skip
        return True

    def reload(self) -> None:
        """After a stale-version error: re-read the rate (and all rates) at their new version."""
        selected = self.selected.id if self.selected else None
        self.refresh()
        self.select(selected)
        self._say(Message.info("reloaded: the form shows the stored values; edit again"))

    # ---- batch create --------------------------------------------------------------------
    def batch_create(
        self,
        providers: Iterable[str],
        model: str,
        type: str,
        *,
        input_rate: str,
        output_rate: str,
        unit_cost_input: str = "",
        unit_cost_output: str = "",
        model_display: str = "",
        description: str = "",
        reason: str = "",
    ) -> bool:
        """One rate for several providers: all created or none (conflicts listed)."""
        inputs = self._batch_inputs(
            providers, input_rate=input_rate, output_rate=output_rate,
            unit_cost_input=unit_cost_input, unit_cost_output=unit_cost_output,
        )  # fmt: skip
        if inputs is None:
            return False
        names, numbers = inputs

        def create() -> list[Rate]:
            spec = _batch_spec(names, model, type, numbers, model_display, description)
            return self.store.create_rates_batch(spec, names, reason=reason.strip() or None)

        ok, created = self._attempt(create)
        if not ok or not created:
            self._field_errors()
            return False
        self.refresh()
        self._say(Message.success(
            f"created {model} ({RateType.parse(type).value}) for {', '.join(names)}"))  # fmt: skip
        return True

    # ---- propose instead of writing ------------------------------------------------------
    def propose_edit(
        self,
        *,
        input_rate: str,
        output_rate: str,
        unit_cost_input: str = "",
        unit_cost_output: str = "",
        model_display: str = "",
        description: str = "",
        reason: str = "",
        effective_at: str = "",
    ) -> bool:
        """The edit as a proposal (with its impact) for another person to approve; no rate
        is written. Refused at once if the rate moved since it was read (stale)."""
        rate = self.selected
        if rate is None:
            self._fail(ValidationError("select a rate to propose a change to", field="rate"))
            return False
        numbers = self._numbers(
            input_rate=input_rate, output_rate=output_rate,
            unit_cost_input=unit_cost_input, unit_cost_output=unit_cost_output,
        )  # fmt: skip
        if numbers is None or not self._proposal_inputs(reason, effective_at):
            return False
        when = parse_effective_at(effective_at)

        def make() -> Proposal:
            change = edit_change(
                self.store, rate.id, expected_version=rate.version,
                input_rate=numbers["input_rate"], output_rate=numbers["output_rate"],
                unit_costs=_costs(numbers), model_display=model_display.strip() or None,
                description=description.strip() or None,
            )  # fmt: skip
            if change.before == change.after:
                raise ValidationError("nothing to propose: the form holds the stored values")
            return propose(self.store, [change], source="edit", reason=reason.strip(),
                           effective_at=when)  # fmt: skip

        return self._proposed(make)

    def propose_batch_create(
        self,
        providers: Iterable[str],
        model: str,
        type: str,
        *,
        input_rate: str,
        output_rate: str,
        unit_cost_input: str = "",
        unit_cost_output: str = "",
        model_display: str = "",
        description: str = "",
        reason: str = "",
        effective_at: str = "",
    ) -> bool:
        """One new rate for several providers, as a proposal (nothing is created yet)."""
        inputs = self._batch_inputs(
            providers, input_rate=input_rate, output_rate=output_rate,
            unit_cost_input=unit_cost_input, unit_cost_output=unit_cost_output,
        )  # fmt: skip
        if inputs is None or not self._proposal_inputs(reason, effective_at):
            return False
        names, numbers = inputs
        when = parse_effective_at(effective_at)

        def make() -> Proposal:
            spec = _batch_spec(names, model, type, numbers, model_display, description)
            keys = {(r.provider, r.model, r.type) for r in self.store.list_rates()}
            existing = [n for n in names if (n.lower(), spec.model, spec.type) in keys]
            if existing:
                raise ValidationError(
                    f"{spec.model} ({spec.type.value}) exists already for {', '.join(existing)}; "
                    "propose an edit of it instead", field="providers",
                )  # fmt: skip
            return propose(self.store, batch_create_changes(spec, names), source="batch",
                           reason=reason.strip(), effective_at=when)  # fmt: skip

        return self._proposed(make)

    def _batch_inputs(
        self, providers: Iterable[str], **texts: str
    ) -> tuple[list[str], dict[str, Decimal | None]] | None:
        """The providers picked and the form's numbers, or None (the errors said)."""
        names = [p for p in providers if p]
        numbers = self._numbers(**texts)
        if numbers is None:
            return None
        if not names:
            self.errors = {"providers": "pick at least one provider"}
            self._fail(ValidationError("pick at least one provider", field="providers"))
            return None
        return names, numbers

    def _proposal_inputs(self, reason: str, effective_at: str) -> bool:
        """A reason (the approver reads it) and a valid effective time; else say which."""
        if not reason.strip():
            self.errors = {"reason": "a reason is required: the approver reads it"}
            self._fail(ValidationError(
                "nothing was proposed: type a reason (the approver reads it)", field="reason"
            ))  # fmt: skip
            return False
        try:
            parse_effective_at(effective_at)
        except ValidationError as exc:
            self.errors = {"effective_at": str(exc)}
            self._fail(exc)
            return False
        return True

    def _proposed(self, make: Any) -> bool:
        ok, made = self._attempt(make)
        if not ok or made is None:
            self._field_errors()
            self.stale = isinstance(self.error, StaleVersionError)
            return False
        self.proposal = made
        self._say(proposed_message(made))
        return True

    # ---- history -------------------------------------------------------------------------
    def history_entries(self) -> list[HistoryEntry]:
        if self.selected is None:
            return []
        return self.store.history(rate_id=self.selected.id)

    def history(self) -> pd.DataFrame:
        return history_frame(self.history_entries())

    def revert_blocker(self, history_id: int | None) -> str | None:
        """Why Revert cannot run now, in the screen's words (None: it can)."""
        if self.selected is None:
            return "pick a rate above to see its changes"
        if history_id is None:
            return "pick the change to revert"
        return None

    def revert(self, history_id: int | None, *, force: bool = False, reason: str = "") -> bool:
        """Undo one change of the selected rate; refused if it changed again, unless forced."""
        why = self.revert_blocker(history_id)
        if why is not None or history_id is None:
            self._fail(ValidationError(f"nothing was reverted: {why}", field="change"))
            return False
        ok, written = self._attempt(
            lambda: self.store.revert(history_id, force=force, reason=reason.strip() or None)
        )
        if not ok or written is None:
            return False
        selected = self.selected.id if self.selected else None
        self.refresh()
        self.select(next((e.rate_id for e in written if e.rate_id is not None), selected))
        forced = " (forced over later changes)" if force else ""
        self._say(Message.success(f"reverted change {history_id}{forced}"))
        return True

    # ---- helpers -------------------------------------------------------------------------
    def _numbers(self, **texts: str) -> dict[str, Decimal | None] | None:
        """Parse every numeric field, collecting all errors at once (nothing is written)."""
        self.errors = {}
        out: dict[str, Decimal | None] = {}
        for name, text in texts.items():
            optional = name.startswith("unit_cost")
            try:
                value = text if text.strip() or not optional else None
                out[name] = to_decimal(value, name.replace("_", " "), allow_none=optional)
            except ValidationError as exc:
                self.errors[name] = str(exc)
        if self.errors:
            self._fail(ValidationError("fix the fields marked in red; nothing was written"))
            return None
        return out

    def _field_errors(self) -> None:
        exc = self.error
        field = getattr(exc, "field", None) if isinstance(exc, ValidationError) else None
        self.errors = {_FORM_FIELD.get(field, field): str(exc)} if field else {}

    def _replace(self, rate: Rate) -> None:
        self._rates = [rate if r.id == rate.id else r for r in self._rates]
        self.selected = rate
        self.errors = {}
        self.stale = False


def _text(value: Decimal | None) -> str:
    return "" if value is None else plain(value) or "0"


def _batch_spec(
    names: list[str], model: str, type: str, numbers: Mapping[str, Decimal | None],
    model_display: str, description: str,
) -> RateSpec:  # fmt: skip
    """The batch form as one rate spec (for the first provider; the batch names the rest)."""
    return RateSpec.create(
        names[0],
        model,
        type,
        input_rate=numbers["input_rate"],
        output_rate=numbers["output_rate"],
        unit_costs=_costs(numbers),
        model_display=model_display.strip() or None,
        description=description.strip() or None,
    )


def _costs(numbers: Mapping[str, Decimal | None]) -> dict[str, Any] | None:
    """Both unit-cost fields blank = no unit costs; one blank = 0 on that side."""
    cin, cout = numbers.get("unit_cost_input"), numbers.get("unit_cost_output")
    if cin is None and cout is None:
        return None
    return {"input": cin or Decimal(0), "output": cout or Decimal(0)}
