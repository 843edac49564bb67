"""The gateway's own billing settings, as the replay needs them (domain.md, "Billing workflow").

AIGNE Hub reads these from its environment (or its blocklet preferences); hubkit reads the
same names from the process environment or from a hub's ``.env`` file, and a scenario may
override any of them with :meth:`BillingSettings.replace`.

==========================================  ==========  ===================================
variable                                    default     meaning
==========================================  ==========  ===================================
AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED      false       off: nothing is refused, usage is
                                                        still costed
NEW_USER_CREDIT_GRANT_ENABLED               false       grant promotional credits at a
                                                        user's first sign-in
NEW_USER_CREDIT_GRANT_AMOUNT                0           credits granted
CREDIT_EXPIRATION_DAYS                      0           the grant expires after this many
                                                        days (0 = never)
CREDIT_PAYMENT_LINK                         unset       the link in 402 bodies; unset = the
                                                        payment kit's default checkout
==========================================  ==========  ===================================

The defaults are the gateway's (its preferences default every one of them to off / 0).

>>> s = BillingSettings.from_env({"AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED": "true",
...                               "NEW_USER_CREDIT_GRANT_ENABLED": "1",
...                               "NEW_USER_CREDIT_GRANT_AMOUNT": "100"})
>>> s.grant_amount
Decimal('100')
>>> s.replace(new_user_credit_grant_enabled=False).grant_amount
Decimal('0')
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from hubkit.decimals import ZERO, require_decimal
from hubkit.errors import ValidationError

ENV_BILLING_ENABLED = "AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED"
ENV_GRANT_ENABLED = "NEW_USER_CREDIT_GRANT_ENABLED"
ENV_GRANT_AMOUNT = "NEW_USER_CREDIT_GRANT_AMOUNT"
ENV_EXPIRATION_DAYS = "CREDIT_EXPIRATION_DAYS"
ENV_PAYMENT_LINK = "CREDIT_PAYMENT_LINK"
ENV_NAMES = (
    ENV_BILLING_ENABLED,
    ENV_GRANT_ENABLED,
    ENV_GRANT_AMOUNT,
    ENV_EXPIRATION_DAYS,
    ENV_PAYMENT_LINK,
)

#: Stand-in for the checkout link the payment kit creates when CREDIT_PAYMENT_LINK is unset
#: (the gateway builds ``<payment kit prefix>/checkout/pay/<link id>``).
DEFAULT_PAYMENT_LINK = "/payment-kit/checkout/pay/default-credit-link"

#: The gateway's 402 text (CreditErrorType.NOT_ENOUGH); the link is appended after a space.
NOT_ENOUGH_MESSAGE = (
    "Hello, in order to continue chatting, please first buy some credits in the link below."
)

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


def _parse_bool(raw: Any, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValidationError(
        f"{name} must be true or false (or 1/0, yes/no), got {raw!r}", field=name, value=raw
    )


def _parse_days(raw: Any, name: str) -> int:
    if isinstance(raw, bool):
        raise ValidationError(f"{name} must be a whole number of days, got {raw!r}", field=name)
    value = require_decimal(raw if raw not in (None, "") else 0, name)
    if value != value.to_integral_value():
        raise ValidationError(
            f"{name} must be a whole number of days (0 = never expires), got {raw!r}",
            field=name,
            value=raw,
        )
    return int(value)


@dataclass(frozen=True, slots=True)
class BillingSettings:
    """What the gateway does with credits; see the module docstring for the variables."""

    credit_based_billing_enabled: bool = False
    new_user_credit_grant_enabled: bool = False
    new_user_credit_grant_amount: Decimal = ZERO
    credit_expiration_days: int = 0
    credit_payment_link: str | None = None

    def __post_init__(self) -> None:
        # Normalise and validate so that a frozen value is always a valid one, whichever
        # way it was built (constructor, from_env, replace).
        set_ = object.__setattr__
        set_(
            self,
            "credit_based_billing_enabled",
            _parse_bool(self.credit_based_billing_enabled, ENV_BILLING_ENABLED),
        )
        set_(
            self,
            "new_user_credit_grant_enabled",
            _parse_bool(self.new_user_credit_grant_enabled, ENV_GRANT_ENABLED),
        )
        set_(
            self,
            "new_user_credit_grant_amount",
            require_decimal(self.new_user_credit_grant_amount, ENV_GRANT_AMOUNT),
        )
        set_(
            self,
            "credit_expiration_days",
            _parse_days(self.credit_expiration_days, ENV_EXPIRATION_DAYS),
        )
        if self.credit_expiration_days < 0:
            raise ValidationError(
                f"{ENV_EXPIRATION_DAYS} must be ≥ 0 (0 = never), got {self.credit_expiration_days}",
                field=ENV_EXPIRATION_DAYS,
            )
        link = self.credit_payment_link
        set_(self, "credit_payment_link", (str(link).strip() or None) if link else None)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = None
    ) -> BillingSettings:
        """Read the gateway's variables; ``environ`` defaults to the process environment.

        With ``env_file`` (a hub's ``.env``) its values are read first and the environment
        mapping wins, as dotenv tools do. Unset or empty variables take the defaults.
        """
        values: dict[str, str] = {}
        if env_file is not None:
            path = Path(env_file)
            if not path.is_file():
                raise ValidationError(f"hub .env file not found: {path}", field="env_file")
            values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
        source = os.environ if environ is None else environ
        values.update({k: v for k, v in source.items() if k in ENV_NAMES})
        return cls._from_mapping(values)

    @classmethod
    def from_env_file(cls, path: str | Path) -> BillingSettings:
        """Only the hub's ``.env`` file, ignoring this process's environment."""
        return cls.from_env({}, env_file=path)

    @classmethod
    def _from_mapping(cls, values: Mapping[str, str]) -> BillingSettings:
        def get(name: str) -> str | None:
            raw = values.get(name)
            return raw if raw is not None and str(raw).strip() != "" else None

        amount = get(ENV_GRANT_AMOUNT)
        days = get(ENV_EXPIRATION_DAYS)
        return cls(
            credit_based_billing_enabled=_parse_bool(
                get(ENV_BILLING_ENABLED) or "false", ENV_BILLING_ENABLED
            ),
            new_user_credit_grant_enabled=_parse_bool(
                get(ENV_GRANT_ENABLED) or "false", ENV_GRANT_ENABLED
            ),
            new_user_credit_grant_amount=require_decimal(amount or "0", ENV_GRANT_AMOUNT),
            credit_expiration_days=_parse_days(days or "0", ENV_EXPIRATION_DAYS),
            credit_payment_link=get(ENV_PAYMENT_LINK),
        )

    def replace(self, **changes: Any) -> BillingSettings:
        """A copy with some settings overridden (per scenario); validated like the original."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValidationError(
                f"unknown billing setting(s) {sorted(unknown)}; known: "
                f"{[f.name for f in dataclasses.fields(self)]}",
                field=sorted(unknown)[0],
            )
        return dataclasses.replace(self, **changes)

    @property
    def grant_amount(self) -> Decimal:
        """Credits a new user actually gets (0 when the grant is off or billing is off)."""
        if not (self.credit_based_billing_enabled and self.new_user_credit_grant_enabled):
            return ZERO
        return self.new_user_credit_grant_amount

    @property
    def payment_link(self) -> str:
        return self.credit_payment_link or DEFAULT_PAYMENT_LINK

    def to_env(self) -> dict[str, str]:
        """The settings as the gateway's variables (round-trips through :meth:`from_env`)."""
        out = {
            ENV_BILLING_ENABLED: str(self.credit_based_billing_enabled).lower(),
            ENV_GRANT_ENABLED: str(self.new_user_credit_grant_enabled).lower(),
            ENV_GRANT_AMOUNT: format(self.new_user_credit_grant_amount, "f"),
            ENV_EXPIRATION_DAYS: str(self.credit_expiration_days),
        }
        if self.credit_payment_link:
            out[ENV_PAYMENT_LINK] = self.credit_payment_link
        return out


def payment_required_body(
    settings: BillingSettings, timestamp: datetime | None = None
) -> dict[str, Any]:
    """The JSON body of the gateway's 402 refusal (domain.md, "Billing workflow" step 1)."""
    link = settings.payment_link
    when = (timestamp or datetime.now(UTC)).astimezone(UTC)
    return {
        "error": {
            "message": f"{NOT_ENOUGH_MESSAGE} {link}",
            "type": "NOT_ENOUGH",
            "link": link,
            # JavaScript's toISOString(): milliseconds and a Z.
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        }
    }
