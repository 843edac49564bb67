"""The order in which a user's credit is used, in Decimal: one home for the rule.

The gateway draws a call's credits from the credit that expires first; credit that never
expires is used last; between credits that expire together, promotional credit (the
new-user grant) goes before paid credit (domain.md). What no bucket covers is unfunded
(the user's balance goes below zero). The reference replay (:mod:`hubkit.replay.reference`)
and the finance ledger (:mod:`hubkit.finance.ledger`) both draw through :func:`draw_credits`;
the vectorised ledger (:mod:`hubkit.replay.ledger`) is its numpy twin, tested against the
reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hubkit.decimals import ZERO

__all__ = ["CreditBucket", "draw_credits"]


@dataclass
class CreditBucket:
    """Credit a user holds: its kind, what is left, when it expires and its rank."""

    kind: str
    remaining: Decimal
    expires: int | None  # ns since 1970 (UTC); None = never
    rank: int  # between buckets expiring together, the lower rank is used first


def draw_credits(
    buckets: list[CreditBucket], amount: Decimal
) -> tuple[dict[str, Decimal], Decimal, list[CreditBucket]]:
    """Take ``amount`` from ``buckets`` in the gateway's order.

    Returns what was taken per kind, what no bucket covered (unfunded), and the buckets
    that still hold credit (the emptied ones dropped). The buckets are changed in place.
    """
    taken: dict[str, Decimal] = {}
    need = amount
    for bucket in sorted(buckets, key=lambda b: (b.expires is None, b.expires or 0, b.rank)):
        if need <= 0:
            break
        take = min(bucket.remaining, need)
        bucket.remaining -= take
        need -= take
        taken[bucket.kind] = taken.get(bucket.kind, ZERO) + take
    return taken, need, [b for b in buckets if b.remaining > 0]
