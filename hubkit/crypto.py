"""Encryption keys for credentials: loading, creating, rotating (Fernet / MultiFernet).

Keys come from ``HUBKIT_SECRET_KEY`` (+ ``HUBKIT_OLD_SECRET_KEYS``) or from the key file
(``HUBKIT_KEY_FILE``, one Fernet key per line, newest first, created with mode 0600 on
first use). The newest key encrypts; every key decrypts, so a rotation can re-encrypt at
leisure and drop old keys once nothing needs them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hubkit._files import atomic_write_text, private_dir
from hubkit._readers import read_text
from hubkit.config import EnvironmentSettings
from hubkit.errors import CredentialError, ValidationError

#: what the store's key check value decrypts to (see hubkit.store.schema.KeyCheckRow)
KEY_CHECK_PLAINTEXT = b"hubkit key check v1"


def _valid_key(key: str, origin: str) -> str:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        raise CredentialError(
            f"{origin} does not hold a valid Fernet key (32 url-safe base64-encoded bytes); "
            "generate one with `python -m hubkit keys generate`"
        ) from None
    return key


def _read_key_file(path: Path) -> list[str]:
    try:
        text = read_text(path, "key file", hint="point HUBKIT_KEY_FILE at the key file, or "
                         "restore it from your backup")  # fmt: skip
    except ValidationError as exc:  # a directory, binary, unreadable: the key is "wrong" (5)
        raise CredentialError(str(exc)) from None
    lines = text.splitlines()
    keys = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not keys:
        raise CredentialError(f"key file {path} is empty; restore it from your backup")
    return [_valid_key(k, f"key file {path}") for k in keys]


def write_key_file(path: Path, keys: list[str]) -> None:
    """Write keys (newest first) atomically with mode 0600 (a new folder for it 0700)."""
    if not path.parent.exists():
        private_dir(path.parent)
    text = "# hubkit Fernet keys, newest first. Back this file up apart from the database.\n"
    text += "\n".join(keys) + "\n"
    atomic_write_text(path, text)


@dataclass(frozen=True)
class Keyring:
    """The keys in force, newest first. ``repr`` never shows them."""

    keys: tuple[str, ...] = field(repr=False)
    origin: str
    key_file: Path | None = None

    @classmethod
    def load(cls, settings: EnvironmentSettings, *, create: bool = False) -> Keyring:
        """Keys from the environment, else the key file (created when ``create``)."""
        if settings.secret_key:
            keys = [_valid_key(settings.secret_key, "HUBKIT_SECRET_KEY")]
            keys += [_valid_key(k, "HUBKIT_OLD_SECRET_KEYS") for k in settings.old_secret_keys]
            return cls(tuple(keys), "HUBKIT_SECRET_KEY")
        path = settings.key_file
        if path.exists():
            keys = _read_key_file(path)
            keys += [_valid_key(k, "HUBKIT_OLD_SECRET_KEYS") for k in settings.old_secret_keys]
            return cls(tuple(keys), f"key file {path}", path)
        if not create:
            raise CredentialError(
                f"no secret key: set HUBKIT_SECRET_KEY, or HUBKIT_KEY_FILE to your key file "
                f"(looked for {path}); without the key that encrypted them, stored "
                "credentials cannot be read"
            )
        key = Fernet.generate_key().decode()
        write_key_file(path, [key])
        return cls((key,), f"key file {path}", path)

    @property
    def _fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(k.encode()) for k in self.keys])

    def encrypt(self, secret: Mapping[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(dict(secret), sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, str]:
        try:
            data = self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise CredentialError(
                f"cannot decrypt a stored credential with the keys from {self.origin}: the key "
                "is wrong or was rotated away. Set HUBKIT_SECRET_KEY/HUBKIT_KEY_FILE to the key "
                "that encrypted it (older keys go in HUBKIT_OLD_SECRET_KEYS)"
            ) from None
        return dict(json.loads(data))

    def reencrypt(self, token: str) -> str:
        """The same secret encrypted with the newest key (MultiFernet.rotate)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            self.decrypt(token)  # raises the explanatory CredentialError
            raise

    def can_decrypt(self, token: str) -> bool:
        try:
            self._fernet.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def check_token(self) -> str:
        """A fresh key check value: the known constant sealed with the newest key."""
        return self._fernet.encrypt(KEY_CHECK_PLAINTEXT).decode()

    def reads_check_token(self, token: str) -> bool:
        try:
            return self._fernet.decrypt(token.encode()) == KEY_CHECK_PLAINTEXT
        except InvalidToken:
            return False

    def fix_hint(self) -> str:
        """Which variable or file to set, for messages about a key that does not fit."""
        where = (
            "HUBKIT_SECRET_KEY" if self.key_file is None else f"HUBKIT_KEY_FILE ({self.key_file})"
        )
        return (
            f"set {where} to the key that encrypted the stored credentials (after a key "
            "change, the previous key goes in HUBKIT_OLD_SECRET_KEYS)"
        )

    def decrypts_with_newest_only(self, token: str) -> bool:
        try:
            Fernet(self.keys[0].encode()).decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def with_new_key(self) -> Keyring:
        return Keyring((Fernet.generate_key().decode(), *self.keys), self.origin, self.key_file)

    def newest_only(self) -> Keyring:
        return Keyring(self.keys[:1], self.origin, self.key_file)


def generate_key() -> str:
    return Fernet.generate_key().decode()
