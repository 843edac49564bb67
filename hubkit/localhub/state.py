"""The local hub's data and the routes' rules over it: :class:`LocalHubState`.

Providers, credentials and rates live in one JSON file.

Shapes mirror AIGNE Hub's Sequelize rows (camelCase, string ids, ISO times). Money is
kept as plain decimal strings; rates are quantised to 10 places as ``DECIMAL(20,10)``
would. A change is on disk before the request that made it is answered: the file is
replaced atomically (temp file + ``os.replace``), so a killed server restarts with the
last answered write — or, when killed between the write and the answer, with a write the
client never heard about, as a real hub would. Writes that arrive together share one
file write (a group commit, :meth:`LocalHubState.durable`): a real hub updates one row per
write, and rewriting a 10,000-rate file once per request would make the local hub, not
the network, what a benchmark of concurrent pushes measures.

Credential values are sealed with Fernet (authenticated encryption, a fresh IV per value)
under a random key kept in ``<state>.key`` beside the state file, both mode 0600: the state
file alone (copied, attached to a report) reveals no key, and knowing one stored key tells
nothing about the others. State files from version 1 (an XOR pad derived from the token)
are read once and re-sealed.

The gateway's rules it applies (display names, masks, 10-place rates, the Joi
enumerations) come from :mod:`hubkit.localhub.rules`, the local hub's own copy.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from hubkit.localhub.rules import (
    CREDENTIAL_TYPES,
    PROVIDER_NAMES,
    PUBLIC_CREDENTIAL_FIELD,
    RATE_TYPES,
    credential_display_text,
    decimal_text,
    default_model_display,
    masked_value,
    rate_text,
)
from hubkit.localhub.validation import (
    MISSING,
    ApiError,
    check_object,
    fail,
    get_boolean,
    get_number,
    get_object,
    get_string,
    parse_caching,
    parse_model_metadata,
    parse_unit_costs,
    reject_unknown,
)

_STATE_VERSION = 2
_SEALED = "fernet:"
#: the state file and its key file: the operator only (they hold rates and sealed keys)
PRIVATE_FILE = 0o600


def _key_path(state_path: Path) -> Path:
    return state_path.with_name(f"{state_path.name}.key")


def _state_key(state_path: Path) -> bytes:
    """The sealing key beside the state file: read, or made once (0600, never replaced)."""
    path = _key_path(state_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), PRIVATE_FILE)
        fh.write(key + b"\n")
    return key


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically (temp file beside it + ``os.replace``), mode 0600.

    No fsync: the crash the local hub imitates is a killed process, whose page cache
    survives; ``os.replace`` alone makes the new file appear whole or not at all.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # whatever the umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def key_problem(value: Mapping[str, str]) -> str | None:
    """The local hub's stand-in for testing a key live: ``sk-bad…`` or ``…invalid…`` fail."""
    for name, item in value.items():
        if name == PUBLIC_CREDENTIAL_FIELD or not isinstance(item, str):
            continue
        if item.startswith("sk-bad") or "invalid" in item.lower():
            return "Incorrect API key provided (401 from the provider)"
    return None


class LocalHubState:
    """The local hub's data and the rules that need it.

    Not thread-safe: the app calls it from the event loop's one thread, so each method
    is atomic with respect to other requests.
    """

    def __init__(self, path: Path, token: str, *, persist: bool = True) -> None:
        self.path = Path(path)
        self.persist = persist  # False: read the file at start, keep changes in memory
        self.generation = 0  # bumped by reset(): delayed requests from before are dropped
        # only to read version-1 state files, whose values were XORed with this pad
        self._legacy_pad = hashlib.sha256(b"hubkit-local-hub:" + token.encode()).digest()
        self._fernet = Fernet(_state_key(self.path))
        self.providers: list[dict[str, Any]] = []
        self.credentials: list[dict[str, Any]] = []
        self.rates: list[dict[str, Any]] = []
        self._next_id = 1
        self._seq = 0
        self._changes = 0  # changes made so far …
        self._written = 0  # … and how many of them the file holds
        self._writing: asyncio.Future[None] | None = None
        self.load()

    # --- persistence ------------------------------------------------------------------------

    def load(self) -> None:
        if not self.path.exists():
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if data.get("version") == 1:
            for cred in data["credentials"]:
                cred["_sealed"] = self.seal(self._unseal_v1(cred["_sealed"]))
            data["version"] = _STATE_VERSION
        if data.get("version") != _STATE_VERSION:
            raise RuntimeError(
                f"{self.path}: unknown local hub state version {data.get('version')}"
            )
        self.providers = data["providers"]
        self.credentials = data["credentials"]
        self.rates = data["rates"]
        self._next_id = int(data["nextId"])
        self._seq = int(data.get("seq", 0))

    def save(self) -> None:
        """Note a change. The server writes it (:meth:`durable`) before answering."""
        self._changes += 1
        if not self.persist:
            self._written = self._changes  # nothing to wait for

    def write_now(self) -> None:
        """Write every change so far, now (outside a server, or where a crash may follow)."""
        if not self.persist:
            return
        changes = self._changes
        _write_private(self.path, self._snapshot())
        self._written = max(self._written, changes)

    def _snapshot(self) -> str:
        data = {
            "version": _STATE_VERSION,
            "nextId": self._next_id,
            "seq": self._seq,
            "providers": self.providers,
            "credentials": self.credentials,
            "rates": self.rates,
        }
        # compact: 5-7x faster to write than indented and sorted, and only machines read it
        return json.dumps(data, separators=(",", ":"))

    @property
    def unwritten(self) -> bool:
        return self._written < self._changes

    async def durable(self) -> None:
        """Return once every change made so far is in the file.

        The snapshot is taken on the event loop (where every change happens, so it is
        consistent); the file is written on a worker thread meanwhile. Requests whose
        changes arrive while one write runs wait for the next, which covers them all.
        """
        target = self._changes
        while self._written < target:
            if self._writing is None:
                self._writing = asyncio.ensure_future(self._write_batch())
            await asyncio.shield(self._writing)

    async def _write_batch(self) -> None:
        try:
            covered, text = self._changes, self._snapshot()
            await asyncio.to_thread(_write_private, self.path, text)
            self._written = max(self._written, covered)
        finally:
            self._writing = None

    def reset(self) -> None:
        self.providers, self.credentials, self.rates = [], [], []
        self._next_id, self._seq = 1, 0
        self.generation += 1
        self.write_now()

    def new_id(self) -> str:
        # Snowflake-like numeric strings, one sequence for every kind (as nextId does).
        self._next_id += 1
        return str(700_000_000_000 + self._next_id)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # --- secrets ----------------------------------------------------------------------------

    def seal(self, value: Mapping[str, str]) -> dict[str, str]:
        return {
            k: v
            if k == PUBLIC_CREDENTIAL_FIELD
            else _SEALED + self._fernet.encrypt(v.encode()).decode()
            for k, v in value.items()
        }

    def unseal(self, sealed: Mapping[str, str]) -> dict[str, str]:
        out = {}
        for k, v in sealed.items():
            if not v.startswith(_SEALED):
                out[k] = v
                continue
            try:
                out[k] = self._fernet.decrypt(v[len(_SEALED) :].encode()).decode()
            except InvalidToken:
                raise RuntimeError(
                    f"{self.path}: a stored credential does not open with the key in "
                    f"{_key_path(self.path)}; restore that file or reset the local hub"
                ) from None
        return out

    def _unseal_v1(self, sealed: Mapping[str, str]) -> dict[str, str]:
        def xor(data: bytes) -> bytes:
            pad = self._legacy_pad * (len(data) // len(self._legacy_pad) + 1)
            return bytes(a ^ b for a, b in zip(data, pad, strict=False))

        return {
            k: xor(base64.b64decode(v[4:])).decode() if v.startswith("enc:") else v
            for k, v in sealed.items()
        }

    # --- lookups ----------------------------------------------------------------------------

    def provider(self, provider_id: str) -> dict[str, Any]:
        for provider in self.providers:
            if provider["id"] == provider_id:
                return provider
        raise ApiError(404, "Provider not found")

    def find_provider(self, provider_id: str) -> dict[str, Any] | None:
        return next((p for p in self.providers if p["id"] == provider_id), None)

    def provider_json(self, provider: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in provider.items() if not k.startswith("_")}

    def provider_ref(self, provider: Mapping[str, Any]) -> dict[str, Any]:
        keys = ("id", "name", "displayName", "baseUrl", "region", "enabled")
        return {k: provider.get(k) for k in keys}

    # --- providers --------------------------------------------------------------------------

    def list_providers(self, name: str | None, include_rates: bool) -> list[dict[str, Any]]:
        out = []
        for provider in self.providers:
            if name and provider["name"] != name:
                continue
            item = self.provider_json(provider)
            if include_rates:
                item["modelRates"] = [r for r in self.rates if r["providerId"] == provider["id"]]
            item["credentials"] = [
                self.credential_json(c, with_sealed=True)
                for c in self.credentials
                if c["providerId"] == provider["id"]
            ]
            out.append(item)
        return out

    def _provider_fields(self, body: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
        check_object(body)
        name = get_string(body, "name", required=creating, valid=PROVIDER_NAMES)
        out: dict[str, Any] = {}
        if name is not MISSING:
            out["name"] = name
        if creating:
            out["displayName"] = get_string(
                body, "displayName", required=True, min_len=1, max_len=100
            )
        # Joi.when('name', {is: 'bedrock'}): an absent name counts as matching ('is'
        # allows undefined), so an update without a name follows the bedrock branch.
        bedrock = name in ("bedrock", MISSING)
        if bedrock:
            base_url = get_string(body, "baseUrl", allow_empty=True, allow_null=True, default="")
            region = get_string(body, "region", required=True, max_len=50)
        else:
            base_url = get_string(body, "baseUrl", required=True, uri=True)
            region = get_string(
                body,
                "region",
                max_len=50,
                allow_empty=True,
                allow_null=True,
                default=None if creating else "",
            )
        out["baseUrl"] = base_url
        if region is not MISSING:
            out["region"] = region
        enabled = get_boolean(body, "enabled", default=True if creating else MISSING)
        if enabled is not MISSING:
            out["enabled"] = enabled
        if creating:
            config = get_object(body, "config", lambda v, _p: dict(v))
            out["config"] = None if config is MISSING else config
            reject_unknown(body, ("name", "displayName", "baseUrl", "region", "enabled", "config"))
        return out

    def create_provider(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = self._provider_fields(body, creating=True)
        if any(p["name"] == fields["name"] for p in self.providers):
            raise ApiError(409, "Provider with this name already exists")
        stamp = now_iso()
        provider = {
            "id": self.new_id(),
            "name": fields["name"],
            "displayName": fields["displayName"],
            "baseUrl": fields["baseUrl"],
            "region": fields.get("region"),
            "enabled": fields["enabled"],
            "config": fields["config"],
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        self.providers.append(provider)
        self.save()
        return self.provider_json(provider)

    def update_provider(self, provider_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        check_object(body)
        # The route picks these four fields before validating: others are ignored.
        picked = {k: body[k] for k in ("name", "baseUrl", "region", "enabled") if k in body}
        fields = self._provider_fields(picked, creating=False)
        provider = self.provider(provider_id)
        if "name" in fields and fields["name"] != provider["name"]:
            if any(p["name"] == fields["name"] for p in self.providers):
                raise ApiError(500, "Validation error: name must be unique")
        provider.update(fields)
        provider["updatedAt"] = now_iso()
        self.save()
        return self.provider_json(provider)

    def delete_provider(self, provider_id: str) -> dict[str, str]:
        provider = self.provider(provider_id)
        self.providers.remove(provider)
        # Its credentials and rates go with it (foreign keys ON DELETE CASCADE).
        self.credentials = [c for c in self.credentials if c["providerId"] != provider_id]
        self.rates = [r for r in self.rates if r["providerId"] != provider_id]
        self.save()
        return {"message": "Provider deleted successfully"}

    # --- credentials ------------------------------------------------------------------------

    def credential_json(self, cred: Mapping[str, Any], *, with_sealed: bool) -> dict[str, Any]:
        value = self.unseal(cred["_sealed"])
        out = {k: v for k, v in cred.items() if not k.startswith("_")}
        out["displayText"] = credential_display_text(cred["credentialType"], value)
        out["maskedValue"] = masked_value(value)
        if with_sealed:
            # The real hub lists the encrypted value too; clients must drop it.
            out["credentialValue"] = dict(cred["_sealed"])
        return out

    def _credential_input(
        self, body: Mapping[str, Any], *, strip_unknown: bool
    ) -> tuple[str, dict[str, str], str, str | None]:
        check_object(body)
        name = get_string(body, "name", required=True, min_len=1, max_len=100)
        if "value" not in body:
            raise fail('"value" is required')
        raw = body["value"]
        if isinstance(raw, str):
            if raw == "":
                raise fail('"value" is not allowed to be empty')
        elif isinstance(raw, Mapping):
            for key in ("api_key", "access_key_id", "secret_access_key"):
                get_string(raw, key, path=f"value.{key}")
        else:
            raise fail('"value" must be one of [string, object]')
        ctype = get_string(body, "credentialType", valid=CREDENTIAL_TYPES, default="api_key")
        test_model = get_string(body, "testModel", max_len=100, default=None)
        if not strip_unknown:
            reject_unknown(body, ("name", "value", "credentialType", "testModel"))
        if isinstance(raw, str):
            value = {"api_key" if ctype == "api_key" else ctype: raw}
        else:
            value = {str(k): v for k, v in raw.items() if isinstance(v, str)}
        return name, value, ctype, test_model

    def _check_key(self, value: Mapping[str, str]) -> None:
        if not value:
            raise ApiError(500, "Credential cannot be empty")
        problem = key_problem(value)
        if problem:
            # The real route lets the provider's error escape to its 500 handler.
            raise ApiError(500, f"Failed to validate credential: {problem}")

    def create_credential(self, provider_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        name, value, ctype, _model = self._credential_input(body, strip_unknown=True)
        self.provider(provider_id)
        self._check_key(value)
        stamp = now_iso()
        cred = {
            "id": self.new_id(),
            "providerId": provider_id,
            "name": name,
            "credentialType": ctype,
            "active": True,
            "weight": 100,
            "usageCount": 0,
            "lastUsedAt": None,
            "error": None,
            "createdAt": stamp,
            "updatedAt": stamp,
            "_sealed": self.seal(value),
        }
        self.credentials.append(cred)
        self.save()
        return self.credential_json(cred, with_sealed=False)

    def credential(self, provider_id: str, credential_id: str) -> dict[str, Any]:
        for cred in self.credentials:
            if cred["id"] == credential_id and cred["providerId"] == provider_id:
                return cred
        raise ApiError(404, "Credential not found")

    def update_credential(
        self, provider_id: str, credential_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        name, value, ctype, _model = self._credential_input(body, strip_unknown=False)
        cred = self.credential(provider_id, credential_id)
        self.provider(provider_id)
        self._check_key(value)
        cred.update(
            name=name,
            credentialType=ctype,
            active=True,
            error=None,
            updatedAt=now_iso(),
            _sealed=self.seal(value),
        )
        self.save()
        return self.credential_json(cred, with_sealed=False)

    def delete_credential(self, provider_id: str, credential_id: str) -> dict[str, str]:
        cred = self.credential(provider_id, credential_id)
        self.credentials.remove(cred)
        self.save()
        return {"message": "Credential deleted successfully"}

    def test_credential(self, provider_id: str, body: Any) -> dict[str, Any]:
        self.provider(provider_id)
        body = body if isinstance(body, Mapping) else {}
        raw = body.get("value")
        if not raw:
            raise ApiError(400, "Credential value is required")
        value = {"api_key": raw} if isinstance(raw, str) else dict(raw)
        problem = key_problem(value)
        if problem:
            raise ApiError(400, "Invalid credentials", detail=problem)
        return {"success": True}

    def check_credential(self, provider_id: str, credential_id: str) -> dict[str, Any]:
        cred = next(
            (
                c
                for c in self.credentials
                if c["id"] == credential_id and c["providerId"] == provider_id
            ),
            None,
        )
        if cred is None:
            raise ApiError(400, "Invalid credentials", detail="Credential not found")
        problem = key_problem(self.unseal(cred["_sealed"]))
        cred.update(active=problem is None, error=problem, updatedAt=now_iso())
        self.save()
        if problem:
            raise ApiError(400, "Invalid credentials", detail=problem)
        out = self.credential_json(cred, with_sealed=False)
        out["credentialValue"] = ""
        return out

    def health(self) -> dict[str, Any]:
        providers: dict[str, dict[str, dict[str, bool]]] = {}
        for cred in self.credentials:
            provider = self.find_provider(cred["providerId"])
            if provider is None:
                continue
            providers.setdefault(provider["name"], {})[cred["name"]] = {"running": cred["active"]}
        return {"providers": providers, "timestamp": now_iso()}

    # --- rates ------------------------------------------------------------------------------

    def rate_fields(self, body: Mapping[str, Any], *, batch: bool) -> dict[str, Any]:
        check_object(body)
        out: dict[str, Any] = {
            "model": get_string(body, "model", required=True, min_len=1, max_len=100),
            "modelDisplay": get_string(
                body, "modelDisplay", min_len=1, max_len=100, allow_empty=True
            ),
            "type": get_string(body, "type", required=True, valid=RATE_TYPES),
            "description": get_string(body, "description", allow_empty=True),
            "inputRate": get_number(body, "inputRate", required=True, minimum=0),
            "outputRate": get_number(body, "outputRate", required=True, minimum=0),
        }
        if batch:
            providers = body.get("providers", MISSING)
            if providers is MISSING:
                raise fail('"providers" is required')
            if not isinstance(providers, list):
                raise fail('"providers" must be an array')
            if not providers:
                raise fail('"providers" must contain at least 1 items')
            for i, item in enumerate(providers):
                if not isinstance(item, str):
                    raise fail(f'"providers[{i}]" must be a string')
            out["providers"] = providers
        out["unitCosts"] = get_object(body, "unitCosts", parse_unit_costs)
        out["caching"] = get_object(
            body, "caching", lambda v, p: parse_caching(v, p, allow_null=batch)
        )
        out["modelMetadata"] = get_object(body, "modelMetadata", parse_model_metadata)
        # unknown keys are stripped (stripUnknown: true); absent ones are left out
        return {k: v for k, v in out.items() if v is not MISSING}

    def new_rate(
        self, provider_id: str, fields: Mapping[str, Any], *, batch: bool
    ) -> dict[str, Any]:
        stamp = now_iso()
        costs = fields.get("unitCosts", MISSING)
        caching = fields.get("caching", MISSING)
        metadata = fields.get("modelMetadata", MISSING)
        description = fields.get("description", MISSING)
        return {
            "id": self.new_id(),
            "providerId": provider_id,
            "model": fields["model"],
            "modelDisplay": fields.get("modelDisplay") or default_model_display(fields["model"]),
            "type": fields["type"],
            "inputRate": rate_text(fields["inputRate"]),
            "outputRate": rate_text(fields["outputRate"]),
            "description": None if description is MISSING else description,
            # The batch route stores {} for "no unit costs"; the single one stores null.
            "unitCosts": _costs_json(costs) if costs is not MISSING else ({} if batch else None),
            "caching": None if caching is MISSING else _caching_json(caching),
            "modelMetadata": None if metadata is MISSING else metadata,
            "deprecated": False,
            "deprecatedAt": None,
            "deprecatedReason": None,
            "createdAt": stamp,
            "updatedAt": stamp,
            "_seq": self.next_seq(),
        }

    def create_rate(self, provider_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = self.rate_fields(body, batch=False)
        self.provider(provider_id)
        if self.find_rate_key(provider_id, fields["model"], fields["type"]) is not None:
            raise ApiError(409, "Rate already exists for this provider-model-type combination")
        rate = self.new_rate(provider_id, fields, batch=False)
        self.rates.append(rate)
        self.save()
        return rate_json(rate)

    def find_rate_key(self, provider_id: str, model: str, type_: str) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in self.rates
                if r["providerId"] == provider_id and r["model"] == model and r["type"] == type_
            ),
            None,
        )

    def batch_create_rates(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = self.rate_fields(body, batch=True)
        ids: list[str] = fields["providers"]
        missing = [pid for pid in ids if self.find_provider(pid) is None]
        if missing:
            raise ApiError(400, f"Providers not found: {', '.join(missing)}")
        conflicts = [
            self.provider(r["providerId"])["displayName"]
            for r in self.rates
            if r["providerId"] in ids
            and r["model"] == fields["model"]
            and r["type"] == fields["type"]
        ]
        if conflicts:
            raise ApiError(
                409,
                f'Rate already exists for model "{fields["model"]}" with type '
                f'"{fields["type"]}" in providers: {", ".join(conflicts)}',
            )
        created = [self.new_rate(pid, fields, batch=True) for pid in ids]
        self.rates.extend(created)
        self.save()
        return {
            "message": f"Successfully created {len(created)} model rates",
            "data": [rate_json(r) for r in created],
            "summary": {"total": len(ids)},
        }

    def rate(self, provider_id: str, rate_id: str) -> dict[str, Any]:
        for rate in self.rates:
            if rate["id"] == rate_id and rate["providerId"] == provider_id:
                return rate
        raise ApiError(404, "Model rate not found")

    def update_rate(
        self, provider_id: str, rate_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        check_object(body)
        keys = (
            "modelDisplay",
            "inputRate",
            "outputRate",
            "description",
            "modelMetadata",
            "unitCosts",
            "caching",
        )
        picked = {k: body[k] for k in keys if k in body}
        changes: dict[str, Any] = {}
        for side in ("inputRate", "outputRate"):
            number = get_number(picked, side, minimum=0)
            if number is not MISSING:
                changes[side] = rate_text(number)
        display = get_string(picked, "modelDisplay", min_len=1, max_len=100, allow_empty=True)
        if display is not MISSING:
            changes["modelDisplay"] = display
        description = get_string(picked, "description", allow_empty=True)
        if description is not MISSING:
            changes["description"] = description
        costs = get_object(picked, "unitCosts", parse_unit_costs)
        if costs is not MISSING:
            changes["unitCosts"] = _costs_json(costs)
        caching = get_object(picked, "caching", parse_caching)
        if caching is not MISSING:
            changes["caching"] = _caching_json(caching)
        metadata = get_object(picked, "modelMetadata", parse_model_metadata)
        if metadata is not MISSING:
            changes["modelMetadata"] = metadata
        rate = self.rate(provider_id, rate_id)
        rate.update(changes)
        rate["updatedAt"] = now_iso()
        self.save()
        return rate_json(rate)

    def delete_rate(self, provider_id: str, rate_id: str) -> dict[str, str]:
        rate = self.rate(provider_id, rate_id)
        self.rates.remove(rate)
        self.save()
        return {"message": "Model rate deleted successfully"}

    def rates_for_provider(
        self, provider_id: str, include_deprecated: bool
    ) -> list[dict[str, Any]]:
        self.provider(provider_id)
        rows = [
            r
            for r in self.rates
            if r["providerId"] == provider_id and (include_deprecated or not r["deprecated"])
        ]
        return [rate_json(r) for r in sorted(rows, key=lambda r: (r["model"], r["type"]))]

    def rates_page(self, query: Mapping[str, str]) -> dict[str, Any]:
        page = _page_number(query.get("page"), "page", 1)
        size = _page_number(query.get("pageSize"), "pageSize", 20)
        page, size = max(page, 1), min(max(size, 1), 100)
        order = (query.get("o") or "desc").lower()
        if order not in ("asc", "desc"):
            raise fail('"o" must be one of [asc, desc]')
        rows = [
            r for r in self.rates if query.get("includeDeprecated") == "true" or not r["deprecated"]
        ]
        if query.get("providerId"):
            wanted = set(query["providerId"].split(","))
            rows = [r for r in rows if r["providerId"] in wanted]
        if query.get("model"):
            needle = query["model"].lower()  # LIKE %x% (case-insensitive in SQLite)
            rows = [r for r in rows if needle in r["model"].lower()]
        if query.get("q"):
            rows = [r for r in rows if _kv_match(r, query["q"])]
        rows.sort(key=lambda r: r["_seq"], reverse=order == "desc")
        chunk = rows[(page - 1) * size : page * size]
        items = []
        for rate in chunk:
            item = rate_json(rate)
            provider = self.find_provider(rate["providerId"])
            item["provider"] = None if provider is None else self.provider_ref(provider)
            item["status"] = None
            items.append(item)
        return {"count": len(rows), "list": items, "paging": {"page": page, "pageSize": size}}

    def snapshot_rates(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.rates)


def rate_json(rate: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in rate.items() if not k.startswith("_")}
    if out.get("unitCosts") == {}:
        # The gateway stores {} for a batch-created rate without unit costs, yet every
        # answer shows it as zeros (its model formats each side with a default of 0).
        out["unitCosts"] = {"input": "0", "output": "0"}
    return out


def _costs_json(costs: Mapping[str, Decimal]) -> dict[str, str]:
    return {side: decimal_text(costs[side]) for side in ("input", "output")}


def _caching_json(caching: Mapping[str, Any]) -> dict[str, Any]:
    return {k: None if v is None else rate_text(v) for k, v in caching.items()}


def _page_number(raw: str | None, name: str, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = Decimal(raw)
    except Exception:
        raise fail(f'"{name}" must be a number') from None
    if value != value.to_integral_value():
        raise fail(f'"{name}" must be an integer')
    return int(value)


def _kv_match(rate: Mapping[str, Any], query: str) -> bool:
    """``getWhereFromKvQuery``: ``k:v`` equal, ``k:a,b`` in, ``like-k:v`` contains (OR'ed)."""
    likes: list[bool] = []
    for kv in query.split(" "):
        key, _, value = kv.partition(":")
        if not key:
            continue
        if "like" in key:
            if value:
                likes.append(value.lower() in str(rate.get(key[5:], "")).lower())
            continue
        if not value:
            return False  # "k:" means "k IN ()": matches nothing
        field = str(rate.get(key, ""))
        if "," in value:
            if field not in value.split(","):
                return False
        elif field != value.replace("+", " ", 1):
            return False
    return not likes or any(likes)
