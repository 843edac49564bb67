"""Job parameters: parsed and checked before anything runs (papermill's first cell).

Values arrive as papermill injects them: Python literals from a notebook, or text from
``python -m hubkit job run -p name value`` / ``papermill -p``. Numbers are read exactly
(``"0.001"`` and ``0.001`` both mean ``Decimal("0.001")``); lists are comma-separated
strings, empty meaning "all". Every error names the parameter, the value and the fix.
Store URL, hub token and keys never come from here: they are read from the environment.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from hubkit.catalog import shipped_catalog_path
from hubkit.config import get_settings
from hubkit.decimals import plain, to_decimal
from hubkit.domain import parse_csv_list, validate_provider_name
from hubkit.errors import ValidationError
from hubkit.pricing import RateFilter, plausible_credit_price, plausible_margin

T = TypeVar("T")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
_NONE = {"", "none", "null"}


def _fail(name: str, value: Any, message: str) -> ValidationError:
    return ValidationError(f"parameter {name}={value!r}: {message}", field=name, value=value)


def _checked(name: str, value: Any, check: Callable[[], T]) -> T:
    """Run ``check`` and re-label its ValidationError with the notebook parameter's name."""
    try:
        return check()
    except ValidationError as exc:
        raise _fail(name, value, str(exc)) from None


def parse_bool(name: str, value: Any) -> bool:
    """True/False, or text such as ``true``/``false``/``yes``/``no``/``1``/``0``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _fail(name, value, "must be True or False")


def parse_decimal(
    name: str, value: Any, *, optional: bool = True, check: Callable[[Any], Decimal] | None = None
) -> Decimal | None:
    """A finite Decimal ≥ 0 (``check`` may add rules); None/"" → None when ``optional``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        if optional:
            return None
        raise _fail(name, value, "a number is required")
    number = _checked(name, value, lambda: to_decimal(value, name))
    return _checked(name, value, lambda: check(number)) if check else number


def parse_text(name: str, value: Any, *, max_len: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(name, value, "must be text (a string)")
    text = value.strip()
    if len(text) > max_len:
        raise _fail(name, value, f"must be at most {max_len} characters")
    return text


def parse_filter(providers: Any, types: Any, model_pattern: Any) -> RateFilter:
    """Which rates a job touches: comma-separated providers and types, a glob on the model."""
    names = _checked("providers", providers, lambda: parse_csv_list(providers or ""))
    for pname in names:
        _checked("providers", providers, partial(validate_provider_name, pname, custom=True))
    pattern = parse_text("model_pattern", model_pattern, max_len=100)
    return _checked(
        "types", types, lambda: RateFilter.create(names, parse_csv_list(types or ""), pattern)
    )


def _require_hub() -> None:
    settings = get_settings()
    if not settings.hub_url or not settings.hub_token:
        raise _fail(
            "push_to_hub",
            True,
            "pushing needs HUBKIT_HUB_URL and HUBKIT_HUB_TOKEN in the environment (never "
            "as parameters); set them or run with push_to_hub=False",
        )


class JobParams(Protocol):
    """What the runner and :func:`hubkit.jobs.context.execute_job` need of any job's
    parameters: JSON-ready values for the report."""

    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class CommonParams:
    """What every rate job takes: the selection, pricing inputs, guardrails, write mode."""

    rate_filter: RateFilter
    profit_margin: Decimal | None
    credit_price: Decimal | None
    dry_run: bool
    push_to_hub: bool
    max_change_pct: Decimal | None
    allow_below_cost: bool
    allow_zero_rates: bool
    reason: str

    @staticmethod
    def common(raw: Mapping[str, Any]) -> dict[str, Any]:
        push = parse_bool("push_to_hub", raw["push_to_hub"])
        if push:
            _require_hub()
        return {
            "rate_filter": parse_filter(
                raw.get("providers"), raw.get("types"), raw.get("model_pattern")
            ),
            "profit_margin": parse_decimal(
                "profit_margin", raw.get("profit_margin"), check=plausible_margin
            ),
            "credit_price": parse_decimal(
                "credit_price", raw.get("credit_price"), check=plausible_credit_price
            ),
            "dry_run": parse_bool("dry_run", raw["dry_run"]),
            "push_to_hub": push,
            "max_change_pct": parse_decimal("max_change_pct", raw.get("max_change_pct")),
            "allow_below_cost": parse_bool("allow_below_cost", raw["allow_below_cost"]),
            "allow_zero_rates": parse_bool("allow_zero_rates", raw["allow_zero_rates"]),
            "reason": parse_text("reason", raw.get("reason"), max_len=500),
        }

    def as_dict(self) -> dict[str, Any]:
        """The parameters as JSON-ready values (Decimals as plain strings), for reports."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, RateFilter):
                out["providers"] = ",".join(value.providers)
                out["types"] = ",".join(t.value for t in value.types)
                out["model_pattern"] = value.model_pattern
            else:
                out[f.name] = _json_ready(value)
        return out

    def _repr_html_(self) -> str:
        # the report shows what the run was asked to do, in words, not as a dataclass repr
        return _params_table((name, _shown(name, value)) for name, value in self.as_dict().items())


def _json_ready(value: Any) -> Any:
    """A parameter as a report shows it: Decimals as plain strings, paths as text."""
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _params_table(rows: Iterable[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(text)}</td></tr>" for name, text in rows
    )
    return f"<table><tr><th>parameter</th><th>value</th></tr>{cells}</table>"


_EMPTY_MEANS = {"providers": "all", "types": "all", "model_pattern": "all", "reason": "none"}


def _shown(name: str, value: Any) -> str:
    if value is None:
        if name == "max_change_pct":
            return "no limit"
        return "the store's setting" if name in ("profit_margin", "credit_price") else "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value == "":
        return _EMPTY_MEANS.get(name, "none")
    return str(value)


def _reject_unknown(raw: Mapping[str, Any], allowed: set[str], job: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValidationError(
            f"{job} has no parameter {', '.join(unknown)}; its parameters are: "
            f"{', '.join(sorted(allowed))}",
            field=unknown[0],
        )


#: The defaults of bulk_rate_update.ipynb's parameters cell (a test keeps them equal).
BULK_DEFAULTS: dict[str, Any] = {
    "profit_margin": None,
    "credit_price": None,
    "providers": "",
    "types": "",
    "model_pattern": "",
    "dry_run": True,
    "push_to_hub": False,
    "max_change_pct": 50,
    "allow_below_cost": False,
    "allow_zero_rates": False,
    "reason": "",
}
BULK_PARAMETERS = set(BULK_DEFAULTS)


@dataclass(frozen=True, slots=True)
class BulkRateParams(CommonParams):
    """Parameters of ``bulk_rate_update``: margin-mode repricing of the selected rates."""

    @classmethod
    def create(cls, **raw: Any) -> BulkRateParams:
        _reject_unknown(raw, BULK_PARAMETERS, "bulk-rate-update")
        return cls(**cls.common({**BULK_DEFAULTS, **raw}))


#: The defaults of price_catalog_sync.ipynb's parameters cell (a test keeps them equal).
SYNC_DEFAULTS: dict[str, Any] = {
    "catalog_path": "",
    "currency": "USD",
    "exchange_rate": None,
    "drift_threshold_pct": 10,
    "rederive_rates": False,
    "create_missing": False,
    **BULK_DEFAULTS,
}
SYNC_PARAMETERS = set(SYNC_DEFAULTS)


@dataclass(frozen=True, slots=True)
class CatalogSyncParams(CommonParams):
    """Parameters of ``price_catalog_sync``: unit costs from a catalog, optional re-pricing."""

    catalog_path: Path
    currency: str
    exchange_rate: Decimal | None
    drift_threshold_pct: Decimal
    rederive_rates: bool
    create_missing: bool

    @classmethod
    def create(cls, **raw: Any) -> CatalogSyncParams:
        _reject_unknown(raw, SYNC_PARAMETERS, "price-catalog-sync")
        raw = {**SYNC_DEFAULTS, **raw}
        text = parse_text("catalog_path", raw.get("catalog_path"), max_len=1000)
        path = Path(text).expanduser() if text else shipped_catalog_path()
        if not path.is_file():
            raise _fail("catalog_path", text, "no such file; give a LiteLLM JSON or CSV catalog")
        currency = parse_text("currency", raw.get("currency") or "USD", max_len=3).upper()
        threshold = parse_decimal("drift_threshold_pct", raw["drift_threshold_pct"], optional=False)
        return cls(
            **cls.common(raw),
            catalog_path=path,
            currency=currency,
            exchange_rate=parse_decimal("exchange_rate", raw.get("exchange_rate")),
            drift_threshold_pct=cast(Decimal, threshold),
            rederive_rates=parse_bool("rederive_rates", raw.get("rederive_rates", False)),
            create_missing=parse_bool("create_missing", raw.get("create_missing", False)),
        )


#: The defaults of finance_month.ipynb's parameters cell (a test keeps them equal).
FINANCE_DEFAULTS: dict[str, Any] = {
    "month": "",
    "usage_source": "",
    "billing_settings": "",
    "credit_billing": None,
    "grants_file": "",
    "credit_price": None,
    "buy_probability": 0.3,
    "pack_amount": 10,
    "synthetic_calls": 20000,
    "seed": 0,
}
FINANCE_PARAMETERS = set(FINANCE_DEFAULTS)


def _last_full_month() -> str:
    # deferred: pandas is already loaded by every job, but params is imported by the CLI too
    import pandas as pd

    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    return str(now.to_period("M") - 1)


def _whole(name: str, value: Any, low: int, high: int) -> int:
    number = parse_decimal(name, value, optional=False)
    assert number is not None
    if number != number.to_integral_value() or not low <= number <= high:
        raise _fail(name, value, f"must be a whole number from {low} to {high}")
    return int(number)


def _optional_file(name: str, value: Any) -> Path | None:
    text = parse_text(name, value, max_len=1000)
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise _fail(name, value, "no such file")
    return path


@dataclass(frozen=True, slots=True)
class FinanceMonthParams:
    """Parameters of ``finance-month``: one month's finance pack (reads, never writes rates)."""

    month: str
    usage_source: Path | None
    billing_settings: Path | None
    credit_billing: bool | None
    grants_file: Path | None
    credit_price: Decimal | None
    buy_probability: Decimal
    pack_amount: Decimal
    synthetic_calls: int
    seed: int

    @classmethod
    def create(cls, **raw: Any) -> FinanceMonthParams:
        # deferred: the finance package (pandas) loads only for this job
        from hubkit.billing_settings import BillingSettings
        from hubkit.finance import parse_month, read_credit_ledger

        _reject_unknown(raw, FINANCE_PARAMETERS, "finance-month")
        raw = {**FINANCE_DEFAULTS, **raw}
        month_text = parse_text("month", raw.get("month"), max_len=10)
        month = (
            str(_checked("month", raw.get("month"), lambda: parse_month(month_text)))
            if month_text
            else _last_full_month()
        )
        credit_billing = raw.get("credit_billing")
        probability = parse_decimal("buy_probability", raw["buy_probability"], optional=False)
        assert probability is not None
        if probability > 1:
            raise _fail("buy_probability", raw["buy_probability"], "must be within 0..1")
        pack = parse_decimal("pack_amount", raw["pack_amount"], optional=False)
        assert pack is not None
        grants = _optional_file("grants_file", raw.get("grants_file"))
        if grants is not None:  # a malformed file stops the run here, before anything runs
            _checked("grants_file", raw.get("grants_file"), lambda: read_credit_ledger(grants))
        env_file = _optional_file("billing_settings", raw.get("billing_settings"))
        if env_file is not None:
            _checked(
                "billing_settings", raw.get("billing_settings"),
                lambda: BillingSettings.from_env_file(env_file),
            )  # fmt: skip
        return cls(
            month=month,
            usage_source=_optional_file("usage_source", raw.get("usage_source")),
            billing_settings=env_file,
            credit_billing=None
            if credit_billing is None or str(credit_billing).strip().lower() in _NONE
            else parse_bool("credit_billing", credit_billing),
            grants_file=grants,
            credit_price=parse_decimal(
                "credit_price", raw.get("credit_price"), check=plausible_credit_price
            ),
            buy_probability=probability,
            pack_amount=pack,
            synthetic_calls=_whole("synthetic_calls", raw["synthetic_calls"], 1, 10_000_000),
            seed=_whole("seed", raw["seed"], 0, 2**31 - 1),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (Decimals as plain strings, paths as text), for reports."""
        return {f.name: _json_ready(getattr(self, f.name)) for f in fields(self)}

    def _repr_html_(self) -> str:
        shown = {
            "usage_source": "synthetic usage over the rates in force",
            "billing_settings": "this process's environment",
            "credit_billing": "as the billing settings say",
            "grants_file": "none: grants and purchases from the replay",
            "credit_price": "the store's setting",
        }
        return _params_table(
            (name, shown.get(name, "") if value is None else str(value))
            for name, value in self.as_dict().items()
        )


#: The defaults of apply_due_proposals.ipynb's parameters cell (a test keeps them equal).
APPLY_DUE_DEFAULTS: dict[str, Any] = {
    "dry_run": False,
    "push_to_hub": False,
    "now": "",
}
APPLY_DUE_PARAMETERS = set(APPLY_DUE_DEFAULTS)
# what CommonParams needs but apply-due does not take: the approved proposals say what changes
_APPLY_DUE_FIXED: dict[str, Any] = {"allow_below_cost": True, "allow_zero_rates": True}


@dataclass(frozen=True, slots=True)
class ApplyDueParams(CommonParams):
    """Parameters of ``apply_due_proposals``: apply every approved rate proposal now due.

    ``now`` (ISO 8601 UTC, "" = the real time) is the moment "due" is judged at.
    """

    now: str

    @classmethod
    def create(cls, **raw: Any) -> ApplyDueParams:
        _reject_unknown(raw, APPLY_DUE_PARAMETERS, "apply-due-proposals")
        raw = {**APPLY_DUE_DEFAULTS, **raw}
        now = parse_text("now", raw.get("now"), max_len=40)
        if now:
            from datetime import datetime

            try:
                moment = datetime.fromisoformat(now.replace("Z", "+00:00"))
            except ValueError:
                raise _fail("now", now, "not an ISO 8601 time, e.g. 2027-01-01T00:00:00Z") from None
            if moment.tzinfo is None:
                raise _fail("now", now, "give the UTC offset, e.g. 2027-01-01T00:00:00Z")
        return cls(**cls.common({**_APPLY_DUE_FIXED, **raw}), now=now)

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "push_to_hub": self.push_to_hub, "now": self.now}
