"""The one exception tree of hubkit.

Every error hubkit raises on purpose is a ``HubkitError``; messages say what went wrong
and what to do about it::

    HubkitError
    ├── ValidationError (also ValueError)   bad input: names the field, the value, the fix
    ├── NotFoundError (also LookupError)    a provider / rate / credential / run is missing
    ├── UnsupportedModelError               a call whose (provider, model, type) has no rate
    ├── ConflictError                       duplicate key, stale version, revert after a change
    │   └── StaleVersionError               someone else changed the row since you read it
    ├── CredentialError                     secret key missing / wrong / undecryptable
    ├── StorageError                        the database refused or is unreachable
    ├── ReadOnlyError                       a write on a store opened read-only
    ├── NothingMatchedError                 a selection matched nothing / every item skipped
    ├── HubError                            the AIGNE Hub answered badly or not at all
    │   ├── HubTimeoutError
    │   ├── HubRateLimitedError
    │   └── HubStatusError                  4xx/5xx with the hub's message
    └── JobError                            a batch job failed or tripped a guardrail
        ├── GuardrailError
        └── LockHeldError
"""

from __future__ import annotations

from typing import Any


class HubkitError(Exception):
    """Base of every error hubkit raises on purpose."""


class ValidationError(HubkitError, ValueError):
    """Input failed validation; nothing was written."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class NotFoundError(HubkitError, LookupError):
    """A provider, credential, rate, history row or job run does not exist."""


class UnsupportedModelError(HubkitError, LookupError):
    """A call's (provider, model, type) has no rate: the gateway refuses it, never charges 0."""

    def __init__(self, provider: str, model: str, type_: str) -> None:
        super().__init__(
            f"Unsupported model: no rate for provider={provider!r} model={model!r} "
            f"type={type_!r}; create one with `python -m hubkit rates set` first"
        )
        self.provider = provider
        self.model = model
        self.type = type_


class ConflictError(HubkitError):
    """A write conflicts with existing state (duplicate, changed since, …)."""


class StaleVersionError(ConflictError):
    """The row changed since it was read: reload it and re-apply your edit."""

    def __init__(
        self, message: str, *, expected: int | None = None, actual: int | None = None
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual

    @classmethod
    def for_row(cls, what: str, expected: int, actual: int) -> StaleVersionError:
        return cls(
            f"{what} was changed by someone else (you edited version {expected}, the store "
            f"has version {actual}); reload it and apply your change again",
            expected=expected,
            actual=actual,
        )


class CredentialError(HubkitError):
    """The secret key is missing or wrong, or a credential cannot be decrypted."""


class StorageError(HubkitError):
    """The database could not be opened, migrated or written."""


class ReadOnlyError(StorageError):
    """A write was attempted on a store opened read-only."""


class NothingMatchedError(HubkitError):
    """Nothing was done because nothing qualified: a filter matched no rate, or every item
    of a hub plan/apply was skipped. Not a success: a scheduled run must not stay silent."""


class HubError(HubkitError):
    """The AIGNE Hub failed to answer as expected. Never carries tokens or secrets."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        hub_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.hub_message = hub_message


class HubTimeoutError(HubError):
    """The hub did not answer within the client's timeout."""


class HubRateLimitedError(HubError):
    """The hub answered 429 and the wait it asked for exceeds the allowed maximum."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class HubStatusError(HubError):
    """The hub answered with an error status (4xx/5xx)."""


class JobError(HubkitError):
    """A batch job failed; nothing of it was committed unless said otherwise."""


class GuardrailError(JobError):
    """A job's guardrail refused the change set; nothing was written."""

    def __init__(self, message: str, refused: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.refused = refused or []


class LockHeldError(JobError):
    """Another run holds the job lock."""

    def __init__(self, message: str, *, holder: str | None = None, since: Any = None) -> None:
        super().__init__(message)
        self.holder = holder
        self.since = since
