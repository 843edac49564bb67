"""Finance on the gateway's credit ledger: the monthly roll-forward and the finance pack.

- :mod:`hubkit.finance.ledger`: every credit movement in Decimal, timed — from usage
  replayed under the billing settings (:func:`replay_events`) or from a grants/purchases
  ledger file (:func:`read_credit_ledger`, :func:`file_events`);
- :mod:`hubkit.finance.rollforward`: opening + granted + purchased − consumed − expired =
  closing per month and cohort (:func:`roll_forward`);
- :mod:`hubkit.finance.pack`: one month's tables (roll-forward, reconciliation, KPIs by
  model and provider) and their CSV / xlsx files (:func:`finance_pack`, :func:`write_pack`).
"""

from __future__ import annotations

from hubkit.finance.ledger import (
    EVENT_COLUMNS,
    LEDGER_FILE_COLUMNS,
    file_events,
    read_credit_ledger,
    replay_events,
    validate_credit_ledger,
)
from hubkit.finance.pack import (
    FinancePack,
    finance_pack,
    has_stored_credits,
    ledger_events,
    write_pack,
)
from hubkit.finance.rollforward import (
    FLOW_COLUMNS,
    MONEY_COLUMNS,
    ROLLFORWARD_COLUMNS,
    month_bounds,
    parse_month,
    roll_forward,
)

__all__ = [
    "EVENT_COLUMNS",
    "FLOW_COLUMNS",
    "LEDGER_FILE_COLUMNS",
    "MONEY_COLUMNS",
    "ROLLFORWARD_COLUMNS",
    "FinancePack",
    "file_events",
    "finance_pack",
    "has_stored_credits",
    "ledger_events",
    "month_bounds",
    "parse_month",
    "read_credit_ledger",
    "replay_events",
    "roll_forward",
    "validate_credit_ledger",
    "write_pack",
]
