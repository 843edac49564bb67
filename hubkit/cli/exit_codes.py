"""The exit code of each hubkit error: one table for every command of ``python -m hubkit``.

0 success (a dry run included); 1 any other hubkit error; 2 bad input or usage; 3 not
found; 4 conflict (duplicate, stale version, changed since); 5 secret key missing or wrong;
6 database error; 7 hub error; 10 nothing matched (a filter selected no rate, or every item
of a hub plan/apply was skipped); job commands add their own (see ``hubkit.jobs``):
8 guardrail tripped, 9 push partly failed, 75 lock held.
"""

from __future__ import annotations

from hubkit import errors

#: first match wins: subclasses before their bases
EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (errors.GuardrailError, 8),
    (errors.LockHeldError, 75),
    (errors.ValidationError, 2),
    (errors.NotFoundError, 3),
    (errors.UnsupportedModelError, 3),
    (errors.ConflictError, 4),
    (errors.CredentialError, 5),
    (errors.StorageError, 6),
    (errors.HubError, 7),
    (errors.NothingMatchedError, 10),
    (errors.HubkitError, 1),
]


def exit_code_for(exc: BaseException) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return 1
