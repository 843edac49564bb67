"""Providers, credentials (encrypted at rest) and encryption-key rotation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hubkit.crypto import Keyring, write_key_file
from hubkit.domain import (
    CredentialType,
    ProviderSpec,
    normalise_credential_value,
    validate_credential_name,
)
from hubkit.errors import (
    ConflictError,
    CredentialError,
    NotFoundError,
    ReadOnlyError,
    ValidationError,
)
from hubkit.pricing import credential_display_text
from hubkit.store.base import StoreBase
from hubkit.store.schema import CredentialRow, KeyCheckRow, ProviderRow, RateRow
from hubkit.store.types import utcnow
from hubkit.store.values import CredentialInfo, Provider

# Fields that identify rather than authenticate: kept readable, never encrypted.
_PUBLIC_FIELDS = frozenset({"access_key_id"})


def _provider_value(row: ProviderRow, credentials: int = 0, rates: int = 0) -> Provider:
    return Provider(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        base_url=row.base_url,
        region=row.region,
        enabled=row.enabled,
        custom=row.custom,
        config=dict(row.config or {}),
        credential_count=credentials,
        rate_count=rates,
    )


def _credential_value(row: CredentialRow) -> CredentialInfo:
    return CredentialInfo(
        id=row.id,
        provider=row.provider.name,
        name=row.name,
        credential_type=row.credential_type,
        display_text=row.display_text,
        weight=row.weight,
        active=row.active,
        created_at=row.created_at,
        rotated_at=row.rotated_at,
        last_used_at=row.last_used_at,
        last_pushed_at=row.last_pushed_at,
        usage_count=row.usage_count,
        error=row.error,
    )


class ProviderOps(StoreBase):
    # ---- providers -------------------------------------------------------------------
    def add_provider(self, spec: ProviderSpec) -> Provider:
        with self._unit(write=True) as session:
            if session.scalar(select(ProviderRow.id).where(ProviderRow.name == spec.name)):
                raise ConflictError(f"Provider with this name already exists: {spec.name!r}")
            row = ProviderRow(
                name=spec.name,
                display_name=spec.display_name,
                base_url=spec.base_url,
                region=spec.region,
                enabled=spec.enabled,
                custom=spec.custom,
                config=dict(spec.config),
            )
            session.add(row)
            session.flush()
            return _provider_value(row)

    def update_provider(self, name: str, **changes: Any) -> Provider:
        """Change display_name, base_url, region, enabled or config (re-validated whole)."""
        allowed = {"display_name", "base_url", "region", "enabled", "config"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValidationError(
                f"cannot change {sorted(unknown)} of a provider; allowed: {sorted(allowed)}"
            )
        with self._unit(write=True) as session:
            row = self._provider_row(session, name)
            current: dict[str, Any] = {  # the changes are checked by ProviderSpec.create
                "display_name": row.display_name,
                "base_url": row.base_url,
                "region": row.region,
                "enabled": row.enabled,
                "config": row.config,
            }
            current.update(changes)
            spec = ProviderSpec.create(row.name, custom=row.custom, **current)
            row.display_name = spec.display_name
            row.base_url = spec.base_url
            row.region = spec.region
            row.enabled = spec.enabled
            row.config = dict(spec.config)
            session.flush()
            return self._provider_with_counts(session, row)

    def delete_provider(self, name: str) -> None:
        """Delete a provider and its credentials; refused while it still has rates."""
        with self._unit(write=True) as session:
            row = self._provider_row(session, name)
            n_rates = session.scalar(select(func.count()).where(RateRow.provider_id == row.id))
            if n_rates:
                raise ConflictError(
                    f"provider {name!r} still has {n_rates} model rates; delete or move them first"
                )
            for cred in list(row.credentials):
                session.delete(cred)
            session.delete(row)

    def get_provider(self, name: str) -> Provider:
        with self._unit() as session:
            return self._provider_with_counts(session, self._provider_row(session, name))

    def list_providers(self) -> list[Provider]:
        with self._unit() as session:
            creds = dict(
                session.execute(
                    select(CredentialRow.provider_id, func.count()).group_by(
                        CredentialRow.provider_id
                    )
                ).all()
            )
            rates = dict(
                session.execute(
                    select(RateRow.provider_id, func.count()).group_by(RateRow.provider_id)
                ).all()
            )
            rows = session.scalars(select(ProviderRow).order_by(ProviderRow.id))
            return [_provider_value(r, creds.get(r.id, 0), rates.get(r.id, 0)) for r in rows]

    def _provider_row(self, session: Session, name: str) -> ProviderRow:
        row = session.scalars(select(ProviderRow).where(ProviderRow.name == name.lower())).first()
        if row is None:
            raise NotFoundError(
                f"provider {name!r} not found; add it with `python -m hubkit providers add`"
            )
        return row

    def _provider_with_counts(self, session: Session, row: ProviderRow) -> Provider:
        n_creds = session.scalar(select(func.count()).where(CredentialRow.provider_id == row.id))
        n_rates = session.scalar(select(func.count()).where(RateRow.provider_id == row.id))
        return _provider_value(row, n_creds or 0, n_rates or 0)

    # ---- credentials -----------------------------------------------------------------
    def _keyring(self, session: Session) -> Keyring:
        """The keys for a write that seals a secret, checked against the store first.

        A new key file is made only while no credential exists yet (a fresh key would
        silently make existing ones unreadable). The keys must read the store's key check
        value; a store from before that value gets one here, made only when the keys read
        every stored credential. Either way a key that does not fit is refused before
        anything is written, naming the fix.
        """
        has_credentials = session.scalar(select(func.count()).select_from(CredentialRow)) or 0
        check = session.get(KeyCheckRow, 1, with_for_update=True)
        keyring = Keyring.load(self.settings, create=not has_credentials and check is None)
        if check is not None and keyring.reads_check_token(check.token):
            return keyring
        if check is not None and has_credentials:
            raise CredentialError(
                f"the secret key from {keyring.origin} is not this store's key: it cannot "
                f"read the store's key check value, so what it sealed no one could read. "
                f"{keyring.fix_hint()}; nothing was written"
            )
        # No check value yet (or a stale one over an empty store): make it, but only with
        # keys that read everything already stored.
        _refuse_unreadable(session, keyring)
        if check is None:
            session.add(KeyCheckRow(id=1, token=keyring.check_token()))
        else:
            check.token, check.updated_at = keyring.check_token(), utcnow()
        session.flush()
        return keyring

    def add_credential(
        self,
        provider: str,
        name: str,
        value: str | Mapping[str, str],
        *,
        credential_type: str = "api_key",
        weight: int = 100,
        active: bool = True,
    ) -> CredentialInfo:
        ctype = CredentialType.parse(credential_type)
        secret = normalise_credential_value(ctype, value)
        cname = validate_credential_name(name)
        weight = _weight(weight)
        with self._unit(write=True) as session:
            prow = self._provider_row(session, provider)
            exists = session.scalar(
                select(CredentialRow.id).where(
                    CredentialRow.provider_id == prow.id, CredentialRow.name == cname
                )
            )
            if exists:
                raise ConflictError(
                    f"provider {provider!r} already has a credential named {cname!r}; "
                    "use rotate to replace its value"
                )
            keyring = self._keyring(session)
            row = CredentialRow(
                provider=prow,
                name=cname,
                credential_type=ctype.value,
                weight=weight,
                active=active,
                **_encrypted_fields(keyring, ctype, secret),
            )
            session.add(row)
            session.flush()
            return _credential_value(row)

    def rotate_credential(
        self, provider: str, name: str, value: str | Mapping[str, str]
    ) -> CredentialInfo:
        """Replace a credential's secret (e.g. a new API key from the provider)."""
        with self._unit(write=True) as session:
            row = self._credential_row(session, provider, name)
            ctype = CredentialType(row.credential_type)
            secret = normalise_credential_value(ctype, value)
            for key, item in _encrypted_fields(self._keyring(session), ctype, secret).items():
                setattr(row, key, item)
            row.rotated_at = utcnow()
            row.error = None
            session.flush()
            return _credential_value(row)

    def update_credential(
        self, provider: str, name: str, *, active: bool | None = None, weight: int | None = None
    ) -> CredentialInfo:
        with self._unit(write=True) as session:
            row = self._credential_row(session, provider, name)
            if active is not None:
                row.active = bool(active)
            if weight is not None:
                row.weight = _weight(weight)
            session.flush()
            return _credential_value(row)

    def delete_credential(self, provider: str, name: str) -> None:
        with self._unit(write=True) as session:
            session.delete(self._credential_row(session, provider, name))

    def list_credentials(self, provider: str | None = None) -> list[CredentialInfo]:
        with self._unit() as session:
            stmt = (
                select(CredentialRow).join(ProviderRow).order_by(ProviderRow.name, CredentialRow.id)
            )
            if provider:
                stmt = stmt.where(ProviderRow.name == provider.lower())
            return [_credential_value(r) for r in session.scalars(stmt)]

    def reveal_credential(self, provider: str, name: str) -> dict[str, str]:
        """The plaintext secret: the one explicit way to read it (e.g. to push to the hub)."""
        with self._unit() as session:
            row = self._credential_row(session, provider, name)
            keyring = Keyring.load(self.settings)
            return {**row.public_fields, **keyring.decrypt(row.encrypted_value)}

    def mark_credentials_pushed(self, ids: list[int]) -> None:
        with self._unit(write=True) as session:
            now = utcnow()
            for row in session.scalars(select(CredentialRow).where(CredentialRow.id.in_(ids))):
                row.last_pushed_at = now

    def _credential_row(self, session: Session, provider: str, name: str) -> CredentialRow:
        row = session.scalars(
            select(CredentialRow)
            .join(ProviderRow)
            .where(
                ProviderRow.name == provider.strip().lower(),
                # names are stored trimmed (see validate_credential_name): look them up the same way
                CredentialRow.name == name.strip(),
            )
        ).first()
        if row is None:
            raise NotFoundError(
                f"no credential {name!r} for provider {provider!r}; "
                "list them with `python -m hubkit credentials list`"
            )
        return row

    # ---- encryption keys -------------------------------------------------------------
    def rotate_keys(self) -> int:
        """Encrypt every credential with a new key, in one transaction; returns the count.

        Key-file mode: a new key is generated and written first (old keys kept after it),
        so a failure half-way still leaves everything readable. Environment mode: put the
        new key in HUBKIT_SECRET_KEY and the old one in HUBKIT_OLD_SECRET_KEYS, then run
        this to re-encrypt.
        """
        _refuse_read_only(self)  # before the key file is touched
        with self._unit(write=True) as session:
            # Lock first (SQLite: the unit's BEGIN IMMEDIATE; PostgreSQL: the rows), then
            # read the key file: a second rotation waits here and then builds on this one's
            # key instead of writing a file that lacks the key the rows were just sealed with.
            rows = list(session.scalars(select(CredentialRow).with_for_update()))
            keyring = self._keyring(session)
            # every credential must be readable before a new key is written anywhere
            _refuse_unreadable(session, keyring)
            key_file = keyring.key_file  # with_new_key() keeps it
            if key_file is not None and not self.settings.secret_key:
                keyring = keyring.with_new_key()
                write_key_file(key_file, list(keyring.keys))
            for row in rows:
                row.encrypted_value = keyring.reencrypt(row.encrypted_value)
            # the check value moves to the newest key in the same transaction
            check = session.get(KeyCheckRow, 1)
            assert check is not None  # made by _keyring
            check.token, check.updated_at = keyring.check_token(), utcnow()
            return len(rows)

    def drop_old_keys(self) -> None:
        """Forget every key but the newest, once no credential needs an older one."""
        _refuse_read_only(self)
        keyring = Keyring.load(self.settings)
        with self._unit() as session:
            stale = [
                f"{row.provider.name}/{row.name}"
                for row in session.scalars(select(CredentialRow))
                if not keyring.decrypts_with_newest_only(row.encrypted_value)
            ]
            check = session.get(KeyCheckRow, 1)
            # dropping the key the check value was made with would lock every later write out
            check_stale = check is not None and not keyring.decrypts_with_newest_only(check.token)
        if stale or check_stale:
            what = f"{len(stale)} credentials" if stale else "the store's key check value"
            names = f" ({', '.join(stale[:5])})" if stale else ""
            raise CredentialError(
                f"{what} still need an old key{names}; run `python -m hubkit keys rotate` first"
            )
        if keyring.key_file is None or self.settings.secret_key:
            raise CredentialError(
                "keys come from HUBKIT_SECRET_KEY: every credential now uses it, so simply "
                "unset HUBKIT_OLD_SECRET_KEYS"
            )
        write_key_file(keyring.key_file, list(keyring.newest_only().keys))


def _refuse_unreadable(session: Session, keyring: Keyring) -> None:
    """Name every stored credential the keys cannot read (provider/name, never a value)."""
    rows = session.execute(
        select(ProviderRow.name, CredentialRow.name, CredentialRow.encrypted_value)
        .join(CredentialRow.provider)
        .order_by(ProviderRow.name, CredentialRow.name)
    ).all()
    unreadable = [f"{p}/{n}" for p, n, token in rows if not keyring.can_decrypt(token)]
    if unreadable:
        raise CredentialError(
            f"the keys from {keyring.origin} cannot read {len(unreadable)} stored "
            f"credential{'s' if len(unreadable) != 1 else ''}: {', '.join(unreadable)}. "
            f"{keyring.fix_hint()}; nothing was written",
        )


def _refuse_read_only(store: StoreBase) -> None:
    # Key rotation writes the key file outside any database transaction: a read-only store
    # must refuse before that, not after a new key was already added.
    if store.read_only:
        raise ReadOnlyError(
            "this store was opened read-only; open it with Store.open() to rotate or drop keys"
        )


def _encrypted_fields(
    keyring: Keyring, ctype: CredentialType, secret: dict[str, str]
) -> dict[str, Any]:
    public = {k: v for k, v in secret.items() if k in _PUBLIC_FIELDS}
    private = {k: v for k, v in secret.items() if k not in _PUBLIC_FIELDS}
    return {
        "public_fields": public,
        "encrypted_value": keyring.encrypt(private),
        "display_text": credential_display_text(ctype.value, secret),
    }


def _weight(weight: Any) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 10_000:
        raise ValidationError(
            f"weight must be a whole number 0–10000 (default 100), got {weight!r}",
            field="weight",
            value=weight,
        )
    return weight
