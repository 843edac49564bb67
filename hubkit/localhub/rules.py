"""The gateway's rules as the local hub applies them: its own copy, not hubkit's.

Written from AIGNE Hub's documented behaviour (the design notes domain.md and hub-api.md:
modelDisplay, masking, the margin-mode formula, DECIMAL(20,10) storage, the Joi
enumerations), never imported from :mod:`hubkit.pricing`, :mod:`hubkit.domain` or
:mod:`hubkit.decimals`. That is the point of the local hub: when hubkit's rule and this one
disagree, a client test against the local hub fails; if both sides shared the code, a
mistake in it would pass every test. ``tests/test_localhub_rules.py`` pins the two copies
together on generated cases and checks that nothing in :mod:`hubkit.localhub` imports
hubkit's rule modules.

Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

#: ``name`` of a provider: Joi's ``valid(...)`` list, in the gateway's order (its 400
#: message lists them so).
PROVIDER_NAMES: tuple[str, ...] = (
    "openai",
    "anthropic",
    "bedrock",
    "deepseek",
    "google",
    "ollama",
    "openrouter",
    "xai",
    "doubao",
    "poe",
    "ideogram",
)
#: ``type`` of a model rate (the seed's three and ``video``, charged per second).
RATE_TYPES: tuple[str, ...] = ("chatCompletion", "imageGeneration", "embedding", "video")
#: ``credentialType`` of a credential.
CREDENTIAL_TYPES: tuple[str, ...] = ("api_key", "access_key_pair", "custom")
#: The one credential field stored and shown in clear (every other one is a secret).
PUBLIC_CREDENTIAL_FIELD = "access_key_id"

# --- numbers: DECIMAL(20,10), bignumber.js's ROUND_HALF_UP ---------------------------------

#: Rates are stored with 10 decimal places (DECIMAL(20,10)), rounded half up.
RATE_PLACES = 10
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)
# Wide enough that cost × (1 + margin/100) / price is exact before its one rounding.
_EXACT = Context(prec=60, rounding=ROUND_HALF_UP)
_HUNDRED = Decimal(100)


class RateOutOfRange(ArithmeticError):
    """A margin/price pair whose rate has more digits than any 10-place rate can hold."""


def rate_value(value: Decimal) -> Decimal:
    """``value`` as a DECIMAL(20,10) column holds it: 10 places, ROUND_HALF_UP."""
    return value.quantize(_RATE_QUANTUM, rounding=ROUND_HALF_UP, context=_EXACT)


def decimal_text(value: Decimal) -> str:
    """A plain decimal string (``"0.00000008"``, never ``"8E-8"``, never ``"-0"``)."""
    if value.is_zero():
        value = value.copy_abs()
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def rate_text(value: Decimal) -> str:
    """A rate as the hub stores and sends it: 10 places, then a plain string."""
    return decimal_text(rate_value(value))


def margin_rate(unit_cost: Decimal, profit_margin: Decimal, credit_price: Decimal) -> Decimal:
    """Margin mode's new rate: ``unitCost × (1 + profitMargin / 100) / creditPrice``.

    Computed exactly, then rounded to 10 places ROUND_HALF_UP, separately per side; a side
    whose unit cost is 0 gets 0. Operands are already validated (cost and margin ≥ 0,
    price > 0) by the route's schema.
    """
    factor = _EXACT.add(1, _EXACT.divide(profit_margin, _HUNDRED))
    try:
        rate = rate_value(_EXACT.divide(_EXACT.multiply(unit_cost, factor), credit_price))
    except InvalidOperation:
        raise RateOutOfRange(
            f"profitMargin / creditPrice are out of range: unit cost {unit_cost} × "
            f"{factor} / {credit_price} has no 10-place rate; use a margin in % (e.g. 25) "
            "and a credit price in currency per credit (e.g. 0.001)"
        ) from None
    # A cost of "-0" passes the schema (-0 ≥ 0); bignumber.js's -0 reaches JSON as 0
    # (JSON.stringify(-0) is "0"), so the answer never carries a signed zero.
    return rate.copy_abs() if rate.is_zero() else rate


# --- text: display names and masks ---------------------------------------------------------

_WORD_START = re.compile(r"\b\w", re.ASCII)  # JavaScript's /\b\w/g: ASCII words only


def default_model_display(model: str) -> str:
    """The display name a blank ``modelDisplay`` gets from the model id.

    The part after the last ``/``, each ``-`` made a space, the first character of every
    ASCII word upper-cased; an empty part keeps the id (``gpt-4o-mini`` → ``Gpt 4o Mini``,
    ``openai/gpt-4.1`` → ``Gpt 4.1``, ``a/`` → ``a/``).
    """
    part = model.rsplit("/", 1)[-1]
    if not part:
        return model
    return _WORD_START.sub(lambda m: m.group(0).upper(), part.replace("-", " "))


#: Values shorter than this are shown as ``***``. The real hub's cut-off is 8 (it then
#: shows all of an 8-character secret); the local hub has always masked below 16, as
#: hubkit does. Closing that gap is a change of answers, so it is not made here.
MASK_MIN_LENGTH = 16


def mask_secret(value: str) -> str:
    """First 4 characters, ``*`` × min(16, len − 8), last 4 (``sk-p****…1234``)."""
    if len(value) < MASK_MIN_LENGTH:
        return "***"
    return value[:4] + "*" * min(16, len(value) - 8) + value[-4:]


def credential_display_text(credential_type: str, value: Mapping[str, str]) -> str:
    """``displayText``: the masked key; ``<access_key_id> / <masked secret>`` for a key
    pair; ``k: <masked v>, …`` (sorted) for a custom credential."""
    if credential_type == "api_key":
        return mask_secret(value.get("api_key", ""))
    if credential_type == "access_key_pair":
        key_id = value.get(PUBLIC_CREDENTIAL_FIELD, "")
        return f"{key_id} / {mask_secret(value.get('secret_access_key', ''))}"
    return ", ".join(f"{k}: {mask_secret(v)}" for k, v in sorted(value.items()))


def masked_value(value: Mapping[str, str]) -> dict[str, str]:
    """``maskedValue``: every field masked but the access key id."""
    return {k: v if k == PUBLIC_CREDENTIAL_FIELD else mask_secret(v) for k, v in value.items()}
