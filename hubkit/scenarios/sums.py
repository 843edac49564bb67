"""Running sums the scenario grid reads: per call (padded per user) and per user.

:class:`Family` holds, for one split of each call's credits into a part that scales with
ρ = (1 + margin/100)/creditPrice and a fixed part, the per-user running sums of both, of
provider cost and of calls without unit costs. :class:`UserSums` reads them at each user's
last, last pre-expiry and second-last call. See :mod:`hubkit.scenarios.grid`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hubkit.replay.ledger import segment_cumsum
from hubkit.scenarios.scenario import ScenarioBase


class Family:
    """Running sums of one credit decomposition (scaled part, fixed part) per user.

    Every per-call array is stored with a 0 in front of each user's calls, so that
    "value at a user's call j" is one ``take`` for any j ≥ −1 (j = −1 reads the 0).
    """

    def __init__(self, base: ScenarioBase, scaled: np.ndarray, fixed: np.ndarray) -> None:
        prepared = base.prepared
        n_users = prepared.users.size
        self.user = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(prepared.starts))
        starts = prepared.starts[:-1]
        self.first = starts + np.arange(n_users) + 1
        self._positions = np.arange(self.user.size) + self.user + 1
        self.scaled = scaled
        self.fixed = fixed
        positive = (scaled > 0) | (fixed > 0)
        has_cost = base.book.arrays.has_cost[prepared.key]
        self._pad: dict[str, np.ndarray] = {
            "E": self._padded(segment_cumsum(scaled, self.user)),
            "B": self._padded(segment_cumsum(fixed, self.user)),
            "C": self._padded(segment_cumsum(base.cost, self.user)),
            "C_pos": self._padded(segment_cumsum(np.where(positive, base.cost, 0.0), self.user)),
            "no_cost": self._padded(segment_cumsum((~has_cost).astype(np.float64), self.user)),
            "scaled": self._padded(scaled),
            "fixed": self._padded(fixed),
            "cost": self._padded(base.cost),
        }
        nonempty = np.diff(prepared.starts) > 0
        self.max_scaled = np.zeros(n_users)
        self.max_fixed = np.zeros(n_users)
        if scaled.size:
            self.max_scaled[nonempty] = np.maximum.reduceat(scaled, starts[nonempty])
            self.max_fixed[nonempty] = np.maximum.reduceat(fixed, starts[nonempty])

    def _padded(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros(values.size + self.first.size)
        out[self._positions] = values
        return out

    def index(self, j: np.ndarray, first: np.ndarray | None = None) -> np.ndarray:
        """Padded positions of call j (per row; j < 0 → the user's leading 0)."""
        base = self.first if first is None else first
        j = np.maximum(j, -1)
        padded: np.ndarray = (base[:, None] if j.ndim == 2 else base) + j
        return padded

    def values(self, name: str) -> np.ndarray:
        """The per-call array (without the padding)."""
        per_call: np.ndarray = self._pad[name][self._positions]  # stubs: a fancy index is Any
        return per_call

    def take(self, name: str, idx: np.ndarray) -> np.ndarray:
        return self._pad[name].take(idx)

    def running(self, idx: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """S_j(ρ) = ρ·E_j + B_j at padded positions ``idx`` (rows × scenarios)."""
        out = self._pad["E"].take(idx)
        out *= rho
        out += self._pad["B"].take(idx)
        return out


@dataclass(frozen=True, eq=False)
class UserSums:
    """Per-user values of one family under one grant/expiry configuration."""

    n: np.ndarray
    n_pre: np.ndarray
    buyer: np.ndarray
    gone: np.ndarray  # the grant expired within the period
    sums: dict[str, np.ndarray]  # family arrays at the user's last / last pre / second-last call

    @classmethod
    def build(cls, family: Family, n: np.ndarray, n_pre: np.ndarray, buyer: np.ndarray,
              gone: np.ndarray) -> UserSums:  # fmt: skip
        at = {"last": n - 1, "pre": n_pre - 1, "lm1": n - 2}
        sums = {}
        for where, j in at.items():
            idx = family.index(j)
            for name in ("E", "B", "C", "C_pos", "no_cost"):
                sums[f"{name}_{where}"] = family.take(name, idx)
        return cls(n=n, n_pre=n_pre, buyer=buyer, gone=gone, sums=sums)

    def running(self, where: str, rho: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        e, b = self.sums[f"E_{where}"], self.sums[f"B_{where}"]
        if rows is not None:
            e, b = e[rows], b[rows]
        sums: np.ndarray = e[:, None] * rho + b[:, None]
        return sums

    def rank1(self, where: str, rho: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Σ over users in ``mask`` of S_where(ρ), for every ρ, without a users × ρ array."""
        total: np.ndarray = (
            rho * self.sums[f"E_{where}"][mask].sum() + self.sums[f"B_{where}"][mask].sum()
        )
        return total
