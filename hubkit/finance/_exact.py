"""Every sum of the finance ledger in the wide exact context (60 digits), not Python's 28.

A pack bought at a credit price like 0.003 buys a credit count with no finite decimal
expansion (1 / 0.003); in the default context a balance built from such amounts would be
rounded at the 28th digit and the roll-forward identity could miss by 1E-25. Under
:data:`hubkit.decimals.EXACT` the ledger's additions are exact for every real amount.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import localcontext
from typing import ParamSpec, TypeVar

from hubkit.decimals import EXACT

P = ParamSpec("P")
R = TypeVar("R")


def exact(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with :data:`EXACT` as the current Decimal context."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext(EXACT):
            return func(*args, **kwargs)

    return wrapper
