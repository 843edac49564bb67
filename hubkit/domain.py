"""Domain values: enums and frozen, validated value types (no I/O, no database).

Each ``validate``/``create`` returns a normalised value or raises
:class:`hubkit.errors.ValidationError` naming the field, the value and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlparse

from hubkit._urls import redact_url
from hubkit.decimals import QUANTUM, plain, quantize, require_decimal, to_decimal
from hubkit.errors import ValidationError

_E = TypeVar("_E", bound=StrEnum)


def _parse_enum(kind: type[_E], value: Any, field: str) -> _E:
    """The member whose value is ``value`` (spaces trimmed), or a ValidationError listing all."""
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).strip())
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValidationError(
            f"{field} must be one of {allowed}; got {value!r}", field=field, value=value
        ) from None


class RateType(StrEnum):
    """What a model rate prices; values are the gateway's spelling."""

    CHAT_COMPLETION = "chatCompletion"
    IMAGE_GENERATION = "imageGeneration"
    EMBEDDING = "embedding"
    VIDEO = "video"

    @classmethod
    def parse(cls, value: Any) -> RateType:
        return _parse_enum(cls, value, "type")

    @property
    def is_text(self) -> bool:
        """Does its outputRate bill tokens (chat, embedding)? Read from :data:`BILLING`."""
        return billing_of(self).output == "output_tokens"


# -- what each rate type bills: the one table ----------------------------------------------

#: The usage counts a rate type may bill at its outputRate, in the order the vectorised
#: twins index them (columns of :mod:`hubkit.usage.schema`). A type bills exactly one.
OUTPUT_COUNTS: tuple[str, ...] = ("output_tokens", "images", "seconds")
#: Counts that may be fractional (seconds of video); every other count is a whole number.
FRACTIONAL_COUNTS: frozenset[str] = frozenset({"seconds"})


@dataclass(frozen=True, slots=True)
class CatalogPricing:
    """How a LiteLLM price entry prices a rate type (domain.md, "Price catalog mapping").

    ``output_costs`` are the entry's fields holding the provider cost per billed unit, the
    first one present wins; the input side is always ``input_cost_per_token``. An entry
    lacking a needed cost is reported as unmapped; a cost not needed defaults to 0.
    """

    modes: tuple[str, ...]
    output_costs: tuple[str, ...]
    needs_input_cost: bool = False
    needs_output_cost: bool = True


@dataclass(frozen=True, slots=True)
class Billing:
    """What one rate type bills: a row of :data:`BILLING` (domain.md, "Credits for one call").

    Every type bills its input side alike::

        input_tokens       × inputRate
        cache_write_tokens × (caching.writeRate if set, else inputRate)
        cache_read_tokens  × (caching.readRate  if set, else inputRate)

    plus one count at outputRate, ``output`` (one of :data:`OUTPUT_COUNTS`); the other
    output counts are ignored for the type, as the gateway does (importers report them).
    ``catalog`` says how a LiteLLM entry prices the type (None: the catalog never maps it).
    """

    type: str
    output: str
    catalog: CatalogPricing | None = None

    def __post_init__(self) -> None:
        if self.output not in OUTPUT_COUNTS:
            raise ValueError(f"{self.type}: output must be one of {OUTPUT_COUNTS}")
        object.__setattr__(self, "type", str(self.type))  # the plain spelling, not the enum

    @property
    def output_index(self) -> int:
        """Position of :attr:`output` in :data:`OUTPUT_COUNTS` (the vectorised twins' code)."""
        return OUTPUT_COUNTS.index(self.output)

    @property
    def ignored(self) -> tuple[str, ...]:
        """The output counts this type does not bill."""
        return tuple(c for c in OUTPUT_COUNTS if c != self.output)


#: Rate type (the gateway's spelling) → what it bills; one row per :class:`RateType`.
#: The one definition read by every twin of the rule: :func:`hubkit.pricing.call_credits`
#: (Decimal), :mod:`hubkit.pricing.vector` and :mod:`hubkit.scenarios` (numpy),
#: :mod:`hubkit.pricing.sql` (SQL), the importer :mod:`hubkit.usage.gateway`, the schema check
#: :func:`hubkit.usage.schema.inapplicable_counts`, the generator :mod:`hubkit.usage.synthetic`
#: and the catalog mapping :mod:`hubkit.catalog`. They look rows up through
#: :func:`billing_of` / :func:`billing_rows` at call time, so a test may swap the table.
BILLING: Mapping[str, Billing] = MappingProxyType(
    {
        row.type: row
        for row in (
            Billing(
                RateType.CHAT_COMPLETION,
                "output_tokens",
                CatalogPricing(
                    ("chat", "completion", "responses"),
                    ("output_cost_per_token",),
                    needs_input_cost=True,
                ),
            ),
            Billing(
                RateType.IMAGE_GENERATION,
                "images",
                CatalogPricing(("image_generation",), ("output_cost_per_image",)),
            ),
            Billing(
                RateType.EMBEDDING,
                "output_tokens",
                # an embedding returns vectors: no output cost means 0
                CatalogPricing(
                    ("embedding",),
                    ("output_cost_per_token",),
                    needs_input_cost=True,
                    needs_output_cost=False,
                ),
            ),
            Billing(
                RateType.VIDEO,
                "seconds",
                CatalogPricing(
                    ("video_generation",),
                    ("output_cost_per_video_per_second", "output_cost_per_second"),
                ),
            ),
        )
    }
)


def billing_rows() -> tuple[Billing, ...]:
    """Every row of :data:`BILLING`, in the table's order."""
    return tuple(BILLING.values())


def billing_of(type: Any) -> Billing:
    """The :data:`BILLING` row of a rate type (spaces trimmed), or a ValidationError."""
    row = BILLING.get(type) if isinstance(type, str) else None
    if row is None:
        row = BILLING.get(str(type).strip())
    if row is None:
        raise ValidationError(
            f"type must be one of {', '.join(BILLING)}; got {type!r}", field="type", value=type
        )
    return row


class CredentialType(StrEnum):
    API_KEY = "api_key"
    ACCESS_KEY_PAIR = "access_key_pair"
    CUSTOM = "custom"

    @classmethod
    def parse(cls, value: Any) -> CredentialType:
        return _parse_enum(cls, value, "credentialType")


class ChangeType(StrEnum):
    """Why a rate changed: the gateway's kinds first, then hubkit's own."""

    MANUAL_UPDATE = "manual_update"
    BULK_UPDATE = "bulk_update"
    BULK_CREATE = "bulk_create"
    BULK_SYNC = "bulk_sync"
    SOURCE_DRIFT = "source_drift"
    AUTO_UPDATE = "auto_update"
    CREATE = "create"
    DELETE = "delete"
    CATALOG_IMPORT = "catalog_import"
    REVERT = "revert"
    HUB_PUSH = "hub_push"


#: The provider names AIGNE Hub knows; anything else must be created as ``custom``.
KNOWN_PROVIDERS: tuple[str, ...] = (
    "openai",
    "anthropic",
    "bedrock",
    "deepseek",
    "google",
    "ollama",
    "openrouter",
    "xai",
    "doubao",
    "poe",
    "ideogram",
)

_CUSTOM_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")
_FEATURES = frozenset({"tools", "thinking", "vision"})
# Column limits: rates are DECIMAL(20,10) (domain.md), costs NUMERIC(38,18). A bigger value
# would otherwise escape as decimal.InvalidOperation (quantize) or a database overflow.
RATE_LIMIT = Decimal(10) ** 10
COST_LIMIT = Decimal(10) ** 20


def _bounded(value: Any, field: str, limit: Decimal) -> Decimal:
    number = require_decimal(value, field)
    if number >= limit:
        raise ValidationError(
            f"{field} must be below {limit:f}, got {value!r}", field=field, value=value
        )
    return number


def checked_rate(value: Any, field: str) -> Decimal:
    """A rate: finite, ≥ 0, fits DECIMAL(20,10), quantised to 10 places.

    A non-zero rate that would round to 0 (below half the 1E-10 quantum, e.g. ``1e-12``)
    is refused: stored, it would silently make the model free. Give 0 to mean free.
    """
    number = _bounded(value, field, RATE_LIMIT)
    rounded = quantize(number)
    if number != 0 and rounded == 0:
        raise ValidationError(
            f"{field} {value!r} rounds to 0 at the gateway's 10 decimal places (the smallest "
            f"rate is {QUANTUM:f}): give at least {QUANTUM:f}, or 0 for free",
            field=field,
            value=value,
        )
    return rounded


def checked_text(value: Any, field: str, *, min_len: int = 0, max_len: int) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be text, got {value!r}", field=field, value=value)
    text = value.strip()
    if not min_len <= len(text) <= max_len:
        raise ValidationError(
            f"{field} must be {min_len}–{max_len} characters, got {len(text)} ({value!r})",
            field=field,
            value=value,
        )
    return text


def validate_provider_name(name: Any, *, custom: bool = False) -> str:
    """A known provider name, or (with ``custom=True``) a slug that is not a known one."""
    text = checked_text(name, "provider", min_len=1, max_len=50).lower()
    if text in KNOWN_PROVIDERS:
        return text
    if not custom:
        raise ValidationError(
            f"unknown provider {name!r}; known providers: {', '.join(KNOWN_PROVIDERS)} "
            "(create it with custom=True / --custom to add your own)",
            field="provider",
            value=name,
        )
    if not _CUSTOM_NAME.match(text):
        raise ValidationError(
            f"custom provider name {name!r} must be lower-case letters, digits, '-', '_' or "
            "'.', starting with a letter or digit, at most 50 characters",
            field="provider",
            value=name,
        )
    return text


def validate_base_url(url: Any) -> str:
    """An http(s) base URL without ``user:password@``, stripped.

    Errors show (and carry as ``value``) the URL with its user-info masked: a password
    pasted into a URL must not reach a notebook, a log or a traceback. A URL carrying
    credentials is refused: nothing in the gateway's contract needs them, and a key kept
    in a URL would be stored and shown in plaintext instead of encrypted and masked.
    """
    if not isinstance(url, str):
        return checked_text(url, "baseUrl", min_len=1, max_len=500)  # raises: not text
    text = url.strip()
    if not 1 <= len(text) <= 500:
        # Not echoed: text this long may not parse as a URL, so its secrets cannot be found.
        raise ValidationError(f"baseUrl must be 1–500 characters, got {len(text)}", field="baseUrl")
    try:
        parsed = urlparse(text)
        valid = bool(parsed.hostname) and parsed.scheme in ("http", "https")
    except ValueError:  # "http://[::1" and the like
        valid = False
    if not valid:
        shown = masked_url(text)
        raise ValidationError(
            f"baseUrl must be an http(s) URL such as https://api.openai.com/v1; got {shown!r}",
            field="baseUrl",
            value=shown,
        )
    if "@" in parsed.netloc:
        shown = masked_url(text)
        raise ValidationError(
            f"baseUrl must not contain a user name or password (got {shown!r}): give the "
            "URL without 'user:password@' and store the key as a credential of the provider "
            "instead (`python -m hubkit credentials add <provider> <name>` or the "
            "credentials form), where it is encrypted and shown masked",
            field="baseUrl",
            value=shown,
        )
    return text


_WORD_START = re.compile(r"\b\w", re.ASCII)


def default_model_display(model: str) -> str:
    """The gateway's display name for a model id (domain.md, "modelDisplay").

    A rate's own default (:meth:`RateSpec.create`), so it lives with the rate; it is
    re-exported by :mod:`hubkit.pricing` beside the other gateway rules.

    >>> default_model_display("meta-llama/llama-3.1-8b-instruct")
    'Llama 3.1 8b Instruct'
    """
    part = model.rsplit("/", 1)[-1]
    if not part:
        return model
    return _WORD_START.sub(lambda m: m.group(0).upper(), part.replace("-", " "))


def masked_url(url: str | None) -> str | None:
    """``url`` with its user-info and secret-named query values masked, for display.

    >>> masked_url("https://user:pw@api.example.com/v1")
    'https://***@api.example.com/v1'
    """
    if not url:
        return url
    return redact_url(url)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider as the operator wants it (validated)."""

    name: str
    display_name: str
    base_url: str | None = None
    region: str | None = None
    enabled: bool = True
    config: Mapping[str, Any] = field(default_factory=dict)
    custom: bool = False

    @classmethod
    def create(
        cls,
        name: str,
        display_name: str | None = None,
        *,
        base_url: str | None = None,
        region: str | None = None,
        enabled: bool = True,
        config: Mapping[str, Any] | None = None,
        custom: bool = False,
    ) -> ProviderSpec:
        pname = validate_provider_name(name, custom=custom)
        is_custom = pname not in KNOWN_PROVIDERS
        display = checked_text(display_name or pname, "displayName", min_len=1, max_len=100)
        region_text = checked_text(region, "region", max_len=50) or None
        if pname == "bedrock":
            if not region_text:
                raise ValidationError(
                    "region is required for bedrock (e.g. us-east-1)", field="region"
                )
            url = validate_base_url(base_url) if base_url else None
        else:
            if not base_url:
                raise ValidationError(
                    f"baseUrl is required for provider {pname!r} (e.g. https://api.openai.com/v1)",
                    field="baseUrl",
                )
            url = validate_base_url(base_url)
        if config is not None and not isinstance(config, Mapping):
            raise ValidationError("config must be a JSON object", field="config", value=config)
        return cls(
            name=pname,
            display_name=display,
            base_url=url,
            region=region_text,
            enabled=bool(enabled),
            config=dict(config or {}),
            custom=is_custom,
        )


# Shapes of API keys that end up where a *name* goes (a paste into the wrong field). Kept
# conservative: a refused name costs the operator a retype, a false alarm on an ordinary
# name ("prod-2024", "TeamAccountQ1") would be a nuisance.
_KEY_PREFIXES = re.compile(
    r"^(sk|pk|rk)[-_]|^sk-ant-|^(sess|ghp|gho|ghs|ghu|github_pat|glpat|hf|xox[abpr])[-_]"
    r"|^AIza|^ya29\.|^eyJ",
)
_AWS_KEY_ID = re.compile(r"(AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]{16,}")


def looks_like_secret(text: str) -> bool:
    """True when ``text`` has the shape of an API key or token rather than a label.

    >>> looks_like_secret("sk-proj-abcdefghijklmnop1234"), looks_like_secret("main")
    (True, False)
    >>> looks_like_secret("TeamSharedAccount2025Q1Primary")
    False
    """
    token = text.strip()
    if len(token) < 16 or any(ch.isspace() for ch in token):
        return False
    if _KEY_PREFIXES.search(token) or _AWS_KEY_ID.search(token) or _HEX_RUN.search(token):
        return True
    # Random base62/64 keys switch between upper, lower and digit at about every other
    # character; CamelCase labels with a year switch at about one in three.
    for run in _ALNUM_RUN.findall(token):
        classes = [0 if c.isdigit() else 1 if c.isupper() else 2 for c in run]
        switches = sum(a != b for a, b in zip(classes, classes[1:], strict=False))
        if 0 in classes and switches / (len(run) - 1) >= 0.4:
            return True
    return False


def validate_credential_name(name: Any) -> str:
    """A credential's label: 1–100 characters, trimmed, and not shaped like a secret.

    The name is shown in plaintext everywhere (lists, CSVs, history, the hub): a key typed
    into it would be stored and shown in clear, so the message never repeats it.
    """
    text = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(text) <= 100:
        shown = f"{len(text)} characters" if isinstance(name, str) else repr(name)
        raise ValidationError(
            f"credential name must be 1–100 characters, got {shown}", field="name"
        )
    if looks_like_secret(text):
        raise ValidationError(
            "this credential name looks like a secret (an API key or token); the name is "
            "shown in plaintext everywhere — put the key in the value (it is prompted, or "
            "read with --value-stdin) and give the credential a label such as 'main'",
            field="name",
        )
    return text


def normalise_credential_value(credential_type: Any, value: Any) -> dict[str, str]:
    """Bring a credential value into its dict shape (domain.md, "Credentials")."""
    ctype = CredentialType.parse(credential_type)
    if isinstance(value, str):
        if ctype is not CredentialType.API_KEY:
            raise ValidationError(
                f"a {ctype.value} credential needs a mapping of fields, not a plain string",
                field="value",
            )
        value = {"api_key": value}
    if not isinstance(value, Mapping):
        raise ValidationError("Credential value must be a string or a mapping", field="value")
    cleaned = {
        str(k): v.strip() if isinstance(v, str) else v for k, v in value.items() if v is not None
    }
    for key, item in cleaned.items():
        if not isinstance(item, str):
            raise ValidationError(f"credential field {key!r} must be text", field=key)
    cleaned = {k: v for k, v in cleaned.items() if v}
    if not cleaned:
        raise ValidationError("Credential cannot be empty", field="value")
    required = {
        CredentialType.API_KEY: ("api_key",),
        CredentialType.ACCESS_KEY_PAIR: ("access_key_id", "secret_access_key"),
        CredentialType.CUSTOM: (),
    }[ctype]
    missing = [k for k in required if not cleaned.get(k)]
    if missing:
        raise ValidationError(
            f"Credential cannot be empty: {ctype.value} needs {', '.join(missing)}",
            field=missing[0],
        )
    return cleaned


@dataclass(frozen=True, slots=True)
class UnitCosts:
    """Provider cost per unit in the operator's currency (per token / image / second)."""

    input: Decimal
    output: Decimal

    @classmethod
    def parse(cls, value: Any) -> UnitCosts | None:
        if value is None:
            return None
        if isinstance(value, UnitCosts):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError(
                "unitCosts must be {input, output}", field="unitCosts", value=value
            )
        return cls(
            input=_bounded(value.get("input", 0), "unitCosts.input", COST_LIMIT),
            output=_bounded(value.get("output", 0), "unitCosts.output", COST_LIMIT),
        )

    @property
    def is_eligible(self) -> bool:
        """Does a margin bulk update apply (any side > 0)?"""
        return self.input > 0 or self.output > 0

    def to_json(self) -> dict[str, str]:
        return {"input": plain(self.input) or "0", "output": plain(self.output) or "0"}


@dataclass(frozen=True, slots=True)
class Caching:
    """Credits per cached input token read / written; None means "fall back to inputRate"."""

    read_rate: Decimal | None = None
    write_rate: Decimal | None = None

    @classmethod
    def parse(cls, value: Any) -> Caching | None:
        if value is None:
            return None
        if isinstance(value, Caching):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError(
                "caching must be {readRate, writeRate}", field="caching", value=value
            )
        read = to_decimal(value.get("readRate"), "caching.readRate", allow_none=True)
        write = to_decimal(value.get("writeRate"), "caching.writeRate", allow_none=True)
        if read is None and write is None:
            return None
        return cls(
            read_rate=None if read is None else checked_rate(read, "caching.readRate"),
            write_rate=None if write is None else checked_rate(write, "caching.writeRate"),
        )

    def to_json(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.read_rate is not None:
            out["readRate"] = plain(self.read_rate) or "0"
        if self.write_rate is not None:
            out["writeRate"] = plain(self.write_rate) or "0"
        return out


def validate_model_metadata(value: Any) -> dict[str, Any] | None:
    """Check the shape domain.md gives; return a clean copy."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError("modelMetadata must be a JSON object", field="modelMetadata")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "maxTokens":
            if item is not None and (
                isinstance(item, bool) or not isinstance(item, int) or item < 1
            ):
                raise ValidationError(
                    f"modelMetadata.maxTokens must be an integer ≥ 1 or null, got {item!r}",
                    field="modelMetadata.maxTokens",
                    value=item,
                )
            out[key] = item
        elif key == "features":
            if not isinstance(item, list | tuple) or not set(item) <= _FEATURES:
                raise ValidationError(
                    f"modelMetadata.features must be a subset of {sorted(_FEATURES)}, got {item!r}",
                    field="modelMetadata.features",
                    value=item,
                )
            out[key] = sorted(set(item))
        elif key == "imageGeneration":
            out[key] = _validate_image_meta(item)
        else:
            raise ValidationError(
                f"modelMetadata has an unknown key {key!r}; allowed: maxTokens, features, "
                "imageGeneration",
                field=f"modelMetadata.{key}",
            )
    return out


def _validate_image_meta(item: Any) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise ValidationError(
            "modelMetadata.imageGeneration must be an object",
            field="modelMetadata.imageGeneration",
        )
    out: dict[str, Any] = {}
    for key, sub in item.items():
        if key == "max":
            if sub is not None and (isinstance(sub, bool) or not isinstance(sub, int) or sub < 1):
                raise ValidationError(
                    f"modelMetadata.imageGeneration.max must be ≥ 1 or null, got {sub!r}",
                    field="modelMetadata.imageGeneration.max",
                )
            out[key] = sub
        elif key in ("quality", "size", "style"):
            if not isinstance(sub, list | tuple) or not all(isinstance(s, str) for s in sub):
                raise ValidationError(
                    f"modelMetadata.imageGeneration.{key} must be a list of strings",
                    field=f"modelMetadata.imageGeneration.{key}",
                )
            out[key] = list(sub)
        else:
            raise ValidationError(
                f"modelMetadata.imageGeneration has an unknown key {key!r}",
                field=f"modelMetadata.imageGeneration.{key}",
            )
    return out


@dataclass(frozen=True, slots=True)
class RateSpec:
    """One AiModelRate definition, validated and with rates quantised to 10 places."""

    provider: str
    model: str
    type: RateType
    input_rate: Decimal
    output_rate: Decimal
    model_display: str
    unit_costs: UnitCosts | None = None
    caching: Caching | None = None
    model_metadata: Mapping[str, Any] | None = None
    description: str | None = None

    @classmethod
    def create(
        cls,
        provider: str,
        model: str,
        type: Any,
        *,
        input_rate: Any = 0,
        output_rate: Any = 0,
        model_display: str | None = None,
        unit_costs: Any = None,
        caching: Any = None,
        model_metadata: Any = None,
        description: str | None = None,
        custom_provider: bool = True,
    ) -> RateSpec:
        pname = validate_provider_name(provider, custom=custom_provider)
        model_id = checked_text(model, "model", min_len=1, max_len=100)
        display = checked_text(model_display, "modelDisplay", max_len=100)
        desc = checked_text(description, "description", max_len=100) or None
        return cls(
            provider=pname,
            model=model_id,
            type=RateType.parse(type),
            input_rate=checked_rate(input_rate, "inputRate"),
            output_rate=checked_rate(output_rate, "outputRate"),
            model_display=display or default_model_display(model_id),
            unit_costs=UnitCosts.parse(unit_costs),
            caching=Caching.parse(caching),
            model_metadata=validate_model_metadata(model_metadata),
            description=desc,
        )

    @property
    def key(self) -> tuple[str, str, RateType]:
        return (self.provider, self.model, self.type)


def parse_csv_list(value: str | Iterable[str] | None) -> list[str]:
    """``"a, b"`` → ``["a", "b"]``; empty/None → ``[]`` (meaning "all")."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s and s.strip()]


@dataclass(frozen=True, slots=True)
class Rate:
    """A stored model rate as read from the store (detached from any session)."""

    id: int
    provider: str
    model: str
    type: RateType
    input_rate: Decimal
    output_rate: Decimal
    model_display: str
    version: int
    unit_costs: UnitCosts | None = None
    caching: Caching | None = None
    model_metadata: Mapping[str, Any] | None = None
    description: str | None = None
    deprecated: bool = False
    deprecated_reason: str | None = None

    @property
    def key(self) -> tuple[str, str, RateType]:
        return (self.provider, self.model, self.type)
