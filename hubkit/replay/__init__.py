"""Replay: a usage table priced by the rates in force at each call, then settled per user.

- :mod:`hubkit.replay.timeline`: which rate was in force when (:class:`RateBook`) and the
  prices of calls under it;
- :mod:`hubkit.replay.ledger`: per-user credit balances, top-ups and refusals;
- :mod:`hubkit.replay.engine`: :func:`replay` and its :class:`Behaviour`, :class:`Kpis`,
  :class:`ReplayResult`;
- :mod:`hubkit.replay.frames`: the result tables;
- :mod:`hubkit.replay.reference`: the slow Decimal reference the engine is tested against.

This package re-exports the names ``hubkit.replay`` has always offered.
"""

from __future__ import annotations

from hubkit.replay.engine import (
    Kpis,
    ReplayResult,
    buyer_draws,
    combine_results,
    policy_for,
    prepare,
    replay,
    replay_partition,
)
from hubkit.replay.inputs import Behaviour, PreparedUsage
from hubkit.replay.timeline import timeline_from_rates, validate_timeline

__all__ = [
    "Behaviour",
    "Kpis",
    "PreparedUsage",
    "ReplayResult",
    "buyer_draws",
    "combine_results",
    "policy_for",
    "prepare",
    "replay",
    "replay_partition",
    "timeline_from_rates",
    "validate_timeline",
]
