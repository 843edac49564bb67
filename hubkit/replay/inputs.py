"""What a replay takes besides the rates: the usage prepared once, and how users behave.

:class:`PreparedUsage` (usage looked up in a rate book, sorted per user, for many replays)
and :class:`Behaviour` (the scenario knobs) are read by the engine and by the result
tables (:mod:`hubkit.replay.frames`) alike, so they sit below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from hubkit.decimals import require_decimal
from hubkit.errors import ValidationError
from hubkit.pricing.rules import validate_credit_price
from hubkit.replay.timeline import RateBook

__all__ = ["Behaviour", "PreparedUsage"]


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How simulated users react (scenario knobs).

    - ``buy_probability``: chance that a user who meets a 402 buys packs (and keeps
      buying whenever they run out) rather than churns; one seeded draw per user, so the
      same users buy in every scenario of a grid.
    - ``pack_amount``: money per pack, in the operator's currency (buys
      amount / creditPrice credits).
    - ``elasticity``: usage volume of a model scales by (price ratio)^(−elasticity)
      against the baseline prices (scenarios only; 0 = volume does not react).
    """

    buy_probability: float = 0.0
    pack_amount: Decimal = Decimal(10)
    elasticity: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.buy_probability) <= 1.0:
            raise ValidationError(
                f"buy_probability must be within 0..1, got {self.buy_probability!r}",
                field="buy_probability",
            )
        object.__setattr__(self, "buy_probability", float(self.buy_probability))
        object.__setattr__(self, "pack_amount", require_decimal(self.pack_amount, "pack_amount"))
        if not float(self.elasticity) >= 0:
            raise ValidationError(
                f"elasticity must be ≥ 0, got {self.elasticity!r}", field="elasticity"
            )
        object.__setattr__(self, "elasticity", float(self.elasticity))

    def pack_credits(self, credit_price: Any) -> float:
        price = validate_credit_price(credit_price)
        return float(self.pack_amount / price)


@dataclass(frozen=True, eq=False)
class PreparedUsage:
    """Usage sorted by (user, time) and looked up in a rate book, once, for many replays.

    Holds only arrays; a scenario re-prices ``counts`` with other rates per ``key``.
    """

    book: RateBook
    users: pd.Index  # user names, partition-local order
    first_seen: np.ndarray  # ns per user (any call, supported or not)
    starts: np.ndarray  # offsets of each user's supported calls
    time: np.ndarray  # ns per supported call
    row: np.ndarray  # timeline row in force per supported call
    key: np.ndarray  # rate key per supported call
    counts: dict[str, np.ndarray]  # per supported call
    source_index: np.ndarray  # position of each supported call in the input table
    unsupported_user: np.ndarray  # per user: calls with no rate
    unsupported_keys: pd.DataFrame  # provider, model, type, calls (no rate)
    as_of_ns: int

    @property
    def n_calls(self) -> int:
        return int(self.time.size)
