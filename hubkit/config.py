"""EnvironmentSettings read from the environment (and a ``.env`` file in the project root).

Variables and defaults:

=========================  ===================================================
HUBKIT_DATA_DIR            ``<project>/.hubkit`` (git-ignored): database + key
HUBKIT_DATABASE_URL        ``sqlite:///<data dir>/hubkit.db``
HUBKIT_SECRET_KEY          unset → the key file is used (created on first use)
HUBKIT_OLD_SECRET_KEYS     comma-separated older Fernet keys, still readable
HUBKIT_KEY_FILE            ``<data dir>/secret.key`` (mode 0600, newest key first)
HUBKIT_REPORTS_DIR         ``<project>/reports``
HUBKIT_ACTOR               the OS user
HUBKIT_HUB_URL             unset → no hub configured
HUBKIT_HUB_TOKEN           bearer token for the hub (never a notebook parameter)
HUBKIT_HUB_TIMEOUT         10 (seconds per request)
HUBKIT_HUB_MAX_WAIT        60 (seconds hubkit may wait on a 429)
HUBKIT_HUB_CONCURRENCY     8 (requests a push keeps in flight, 1 to 32)
=========================  ===================================================

The real environment wins over ``.env``. EnvironmentSettings are read when asked for, never cached
at import, so tests and notebooks can change the environment.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from dotenv import dotenv_values

from hubkit._urls import mask_url
from hubkit.errors import ValidationError

#: Requests a push keeps in flight by default (AIGNE Hub's own bulk update runs 10 at once).
HUB_CONCURRENCY_DEFAULT = 8
#: More only queues in the client's connection pool and at the hub.
HUB_CONCURRENCY_MAX = 32


def _find_project_root() -> Path:
    # A source checkout keeps pyproject.toml beside the package; an installed wheel does
    # not, and then the working directory is the natural home for data and reports.
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


PROJECT_ROOT = _find_project_root()
PACKAGE_DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class EnvironmentSettings:
    """Where hubkit reads from and writes to, as the environment (and ``.env``) set it: the
    data dir, database URL, key file, reports dir, actor, secret keys and the hub's URL and
    token. Not to confuse with :class:`hubkit.store.OperatorSettings` (currency, credit
    price and margin, kept in the store) or :class:`hubkit.BillingSettings` (the gateway's
    billing switches a replay imitates)."""

    data_dir: Path
    database_url: str
    key_file: Path
    reports_dir: Path
    actor: str
    secret_key: str | None = field(default=None, repr=False)
    old_secret_keys: tuple[str, ...] = field(default=(), repr=False)
    hub_url: str | None = None
    hub_token: str | None = field(default=None, repr=False)
    hub_timeout: float = 10.0
    hub_max_wait: float = 60.0
    hub_concurrency: int = HUB_CONCURRENCY_DEFAULT

    def __repr__(self) -> str:
        # Printed in notebooks and logs: show where the database and hub are, never a
        # password carried in their URLs (the dataclass repr would print it verbatim).
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["database_url"] = _hide_password(self.database_url)
        shown["hub_url"] = _hide_password(self.hub_url)
        return f"EnvironmentSettings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EnvironmentSettings:
        env: dict[str, str] = {}
        dotenv = PROJECT_ROOT / ".env"
        if environ is None:
            if dotenv.exists():
                env.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
            env.update(os.environ)
        else:
            env.update(environ)
        data_dir = Path(env.get("HUBKIT_DATA_DIR") or PROJECT_ROOT / ".hubkit")
        return cls(
            data_dir=data_dir,
            database_url=env.get("HUBKIT_DATABASE_URL") or f"sqlite:///{data_dir / 'hubkit.db'}",
            key_file=Path(env.get("HUBKIT_KEY_FILE") or data_dir / "secret.key"),
            reports_dir=Path(env.get("HUBKIT_REPORTS_DIR") or PROJECT_ROOT / "reports"),
            actor=env.get("HUBKIT_ACTOR") or _os_user(),
            secret_key=env.get("HUBKIT_SECRET_KEY") or None,
            old_secret_keys=tuple(
                k.strip() for k in (env.get("HUBKIT_OLD_SECRET_KEYS") or "").split(",") if k.strip()
            ),
            hub_url=env.get("HUBKIT_HUB_URL") or None,
            hub_token=env.get("HUBKIT_HUB_TOKEN") or None,
            hub_timeout=_float(env, "HUBKIT_HUB_TIMEOUT", 10.0),
            hub_max_wait=_float(env, "HUBKIT_HUB_MAX_WAIT", 60.0),
            hub_concurrency=hub_concurrency(
                _whole(env.get("HUBKIT_HUB_CONCURRENCY"), HUB_CONCURRENCY_DEFAULT),
                "HUBKIT_HUB_CONCURRENCY",
            ),
        )


def _hide_password(url: str | None) -> str | None:
    # text-based: a malformed URL (the one worth printing) must not show its password either
    return mask_url(url)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(
            f"{name} must be a number of seconds, got {raw!r}", field=name
        ) from None
    if not value > 0:
        raise ValidationError(f"{name} must be > 0, got {raw!r}", field=name)
    return value


def hub_concurrency(value: object, name: str = "concurrency") -> int:
    """``value`` as a number of requests in flight (1 … HUB_CONCURRENCY_MAX), or a clear error."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is None or not 1 <= number <= HUB_CONCURRENCY_MAX:
        raise ValidationError(
            f"{name} must be a whole number from 1 to {HUB_CONCURRENCY_MAX} (requests in "
            f"flight at once; 1 sends one at a time), got {value!r}",
            field=name,
        )
    return number


def _whole(raw: str | None, default: int) -> int | str:
    """An environment value as a whole number when it is one (else as given, to be refused)."""
    if raw is None or not raw.strip():
        return default
    return int(raw.strip()) if raw.strip().isdigit() else raw


def get_settings() -> EnvironmentSettings:
    return EnvironmentSettings.from_env()


#: The name this type had before it was named for what it holds; kept for existing code.
Settings = EnvironmentSettings
