"""The pricing rules: what a call costs in credits and what a rate change does.

:mod:`hubkit.pricing.rules` holds the Decimal rules (the one home of each rule);
:mod:`hubkit.pricing.vector` is their float twin for whole usage tables. This package
re-exports the names ``hubkit.pricing`` has always offered, so
``from hubkit.pricing import call_credits`` keeps working.
"""

from __future__ import annotations

# the display-name default is the rate's own (hubkit.domain); offered here with the rules
from hubkit.domain import default_model_display
from hubkit.pricing.rules import (
    ALLOW_ZERO_RATES_HINT,
    CREDIT_PRICE_RANGE,
    MARGIN_RANGE,
    BulkPreview,
    PricedRate,
    RateChange,
    RateFilter,
    RateKey,
    SkippedRate,
    SkipReason,
    below_cost_check,
    bulk_preview,
    call_credits,
    change_pct,
    check_zero_rates,
    credential_display_text,
    implied_markup_pct,
    is_below_cost,
    margin_rate,
    mask_secret,
    plausible_credit_price,
    plausible_margin,
    rate_credits,
    skip_reason,
    validate_credit_price,
    validate_margin,
    zero_rate_reasons,
)

__all__ = [
    "ALLOW_ZERO_RATES_HINT",
    "CREDIT_PRICE_RANGE",
    "MARGIN_RANGE",
    "BulkPreview",
    "PricedRate",
    "RateChange",
    "RateFilter",
    "RateKey",
    "SkipReason",
    "SkippedRate",
    "below_cost_check",
    "bulk_preview",
    "call_credits",
    "change_pct",
    "check_zero_rates",
    "credential_display_text",
    "default_model_display",
    "implied_markup_pct",
    "is_below_cost",
    "margin_rate",
    "mask_secret",
    "plausible_credit_price",
    "plausible_margin",
    "rate_credits",
    "skip_reason",
    "validate_credit_price",
    "validate_margin",
    "zero_rate_reasons",
]
