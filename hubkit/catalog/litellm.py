"""Price catalogs → provider unit costs (pure: no database; drift is hubkit.catalog.cost_drift).

Two input formats, told apart by the suffix (``.json`` / ``.csv``) or else by the content:

**LiteLLM JSON** (``model_prices_and_context_window.json``): one object per key, USD per
token / image / second. Mapping, as domain.md "Price catalog mapping" says (the modes and
cost fields of each rate type are the ``catalog`` column of :data:`hubkit.domain.BILLING`):

* ``mode`` chat, completion, responses → ``chatCompletion`` (both per-token costs needed);
  embedding → ``embedding`` (input per token needed, output defaults to 0);
  image_generation → ``imageGeneration`` only with ``output_cost_per_image``;
  video_generation → ``video`` only with ``output_cost_per_video_per_second`` or
  ``output_cost_per_second``; every other mode is reported as unmapped. The input side of
  image and video entries is ``input_cost_per_token`` (the prompt), else 0.
  ``cache_read_input_token_cost`` / ``cache_creation_input_token_cost`` → cache costs.
* ``litellm_provider`` → AIGNE Hub provider through :data:`LITELLM_ROUTES`, the one table;
  a provider not in it is reported as unmapped, never guessed.
* **Model id** = the id the AIGNE Hub provider sends upstream, i.e. the key without what
  LiteLLM adds for its own routing: leading image-variant segments (``hd/``,
  ``1024-x-1024/``, ``50-steps/``), then the route prefix of that provider (``gemini/``,
  ``vertex_ai/``, ``xai/``, ``ollama/``, ``volcengine/``, ``openrouter/``, ...). What remains
  may hold a ``/`` where the upstream id does: ``openrouter/anthropic/claude-3`` →
  ``anthropic/claude-3`` (OpenRouter ids are ``vendor/model``), ``vertex_ai/meta/llama…`` →
  ``meta/llama…``. Bedrock ids never contain ``/``: after ``bedrock/`` LiteLLM may add a route
  (``invoke/``, ``converse/``) and a region (``us-east-1/``), both stripped, so regional prices
  collapse onto the Bedrock model id (``anthropic.claude-…-v1:0``, inference profiles such as
  ``us.anthropic.…`` kept as they are); provisioned-throughput commitment keys and unknown
  routes are unmapped. ``ft:`` keys are fine-tuning price templates, not callable ids:
  unmapped.
* Several keys giving one (provider, model, type) keep one, chosen without regard to file
  order: the earliest row of :data:`LITELLM_ROUTES` (so Gemini API prices beat Vertex AI ones
  for ``google``), then the fewest stripped segments, then the shortest key, then the key's
  sort order. The others are unmapped as ``duplicate of <key>``.

**CSV**, one rate per row, header required::

    provider,model,type,input_cost,output_cost[,cache_read_cost,cache_write_cost]
    openai,gpt-4o,chatCompletion,0.0000025,0.00001,0.00000125,

``provider`` is one of :data:`hubkit.domain.KNOWN_PROVIDERS`, ``type`` a rate type, costs
are plain or exponent decimals ≥ 0 (empty cache cost = none). Costs are read as USD, like
LiteLLM's; a CSV already in your currency loads with ``currency="EUR", exchange_rate=1``.
:meth:`Catalog.to_csv` writes this format.

Costs are converted with ``Decimal(str(x))`` (``1.0003e-07`` → ``Decimal('1.0003E-7')``),
never from a float's binary value, and must be below 10^20 (the store's NUMERIC(38, 18)).
Another currency takes an explicit ``exchange_rate`` (currency units per USD): the product
is exact, then rounded ROUND_HALF_UP to the 18 decimal places the store keeps.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubkit._gc import gc_paused
from hubkit._readers import loads_json, read_text
from hubkit.catalog.csv_prices import read_csv_entries, write_csv
from hubkit.catalog.entries import CSV_COLUMNS, CatalogEntry, CostReader, UnmappedEntry
from hubkit.config import PACKAGE_DATA
from hubkit.decimals import to_decimal
from hubkit.domain import (
    Billing,
    RateType,
    UnitCosts,
    billing_rows,
    parse_csv_list,
    validate_provider_name,
)
from hubkit.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CSV_COLUMNS",
    "LITELLM_ROUTES",
    "Catalog",
    "CatalogEntry",
    "LiteLLMRoute",
    "UnmappedEntry",
    "hub_provider",
    "load_catalog",
    "shipped_catalog_path",
]

SHIPPED_CATALOG = "litellm-model-prices-sample.json"


@dataclass(frozen=True, slots=True)
class LiteLLMRoute:
    """One row of the provider table: a ``litellm_provider`` glob and what it maps to."""

    litellm_provider: str
    provider: str
    prefixes: tuple[str, ...]  # first key segments LiteLLM adds, not part of the model id


#: ``litellm_provider`` → AIGNE Hub provider. The first matching row wins; its position
#: also ranks duplicate keys (earlier rows are preferred).
LITELLM_ROUTES: tuple[LiteLLMRoute, ...] = (
    LiteLLMRoute("openai", "openai", ("openai",)),
    LiteLLMRoute("text-completion-openai", "openai", ("openai", "text-completion-openai")),
    LiteLLMRoute("anthropic", "anthropic", ("anthropic",)),
    # AIGNE Hub's google provider talks to the Gemini API: its prices rank before Vertex AI's
    LiteLLMRoute("gemini", "google", ("gemini",)),
    LiteLLMRoute("vertex_ai-language-models", "google", ("vertex_ai",)),
    LiteLLMRoute("vertex_ai-embedding-models", "google", ("vertex_ai",)),
    LiteLLMRoute("vertex_ai", "google", ("vertex_ai",)),
    LiteLLMRoute("vertex_ai-*", "google", ("vertex_ai",)),
    LiteLLMRoute("bedrock_converse", "bedrock", ("bedrock", "bedrock_converse")),
    LiteLLMRoute("bedrock", "bedrock", ("bedrock", "bedrock_converse")),
    LiteLLMRoute("deepseek", "deepseek", ("deepseek",)),
    LiteLLMRoute("xai", "xai", ("xai",)),
    LiteLLMRoute("openrouter", "openrouter", ("openrouter",)),
    LiteLLMRoute("ollama", "ollama", ("ollama", "ollama_chat")),
    LiteLLMRoute("ollama_chat", "ollama", ("ollama", "ollama_chat")),
    LiteLLMRoute("volcengine", "doubao", ("volcengine",)),
)


def _modes() -> dict[str, tuple[RateType, Billing]]:
    """LiteLLM ``mode`` → the rate type it maps to, from :data:`hubkit.domain.BILLING`."""
    return {
        mode: (RateType(b.type), b) for b in billing_rows() if b.catalog for mode in b.catalog.modes
    }


_ZERO = Decimal(0)
#: Output units in the words of an unmapped entry's reason.
_PER_UNIT = {"output_tokens": "per-token", "images": "per-image", "seconds": "per-second"}
_VARIANT = re.compile(r"(?:\d+|max)-x-(?:\d+|max)|(?:\d+|max)-steps|hd|standard|low|medium|high")
_REGION = re.compile(r"\*|[a-z]{2}(?:-gov)?-[a-z]+-\d")
_COMMITMENT = re.compile(r"\d+-months?-commitment")
_BEDROCK_API_ROUTES = frozenset({"invoke", "converse"})
_CURRENCY = re.compile(r"[A-Z]{3}")
# In the order of their names: the features list comes out sorted, as
# validate_model_metadata sorts it, without validating 200,000 known-good lists.
_FEATURE_FLAGS = (
    ("supports_reasoning", "thinking"),
    ("supports_function_calling", "tools"),
    ("supports_vision", "vision"),
)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Mapped entries (sorted by provider, model, type) plus what could not be mapped."""

    entries: tuple[CatalogEntry, ...]
    unmapped: tuple[UnmappedEntry, ...]
    source: str
    currency: str
    exchange_rate: Decimal | None = None
    _index: dict[tuple[str, str, RateType], CatalogEntry] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str, str, RateType], CatalogEntry] = {}
        for entry in self.entries:
            if entry.key in index:
                raise ValidationError(
                    f"catalog {self.source} lists {entry.key} twice "
                    f"({index[entry.key].source_key}, {entry.source_key})",
                    field="entries",
                )
            index[entry.key] = entry
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, provider: str, model: str, type: RateType | str) -> CatalogEntry | None:
        """The entry for (provider, model, type), or None."""
        return self._index.get((provider, model, RateType.parse(type)))

    def to_frame(self) -> pd.DataFrame:
        """One row per entry; costs stay Decimal (object columns)."""
        import pandas as pd  # deferred: loading a catalog needs no pandas, only its frames do

        rows = [
            {
                "provider": e.provider,
                "model": e.model,
                "type": e.type.value,
                "input_cost": e.unit_costs.input,
                "output_cost": e.unit_costs.output,
                "cache_read_cost": e.cache_read_cost,
                "cache_write_cost": e.cache_write_cost,
                "max_tokens": (e.model_metadata or {}).get("maxTokens"),
                "features": ",".join((e.model_metadata or {}).get("features", [])),
                "source_key": e.source_key,
            }
            for e in self.entries
        ]
        columns = [*CSV_COLUMNS, "max_tokens", "features", "source_key"]
        return pd.DataFrame(rows, columns=columns)

    def unmapped_frame(self) -> pd.DataFrame:
        import pandas as pd  # deferred: as in to_frame

        columns = ["key", "litellm_provider", "mode", "reason"]
        rows = [{c: getattr(u, c) for c in columns} for u in self.unmapped]
        return pd.DataFrame(rows, columns=columns)

    def to_csv(self, path: str | Path) -> Path:
        """Write the entries in the CSV format :func:`load_catalog` reads (plain decimals)."""
        return write_csv(self.entries, path)


_CATALOG_HINT = (
    "give a LiteLLM model_prices_and_context_window.json or a hubkit CSV catalog "
    "(see `python -m hubkit rates import --help`)"
)


def shipped_catalog_path() -> Path:
    """The trimmed LiteLLM sample catalog shipped in ``hubkit/data`` (see its README)."""
    return PACKAGE_DATA / SHIPPED_CATALOG


def hub_provider(litellm_provider: str) -> str | None:
    """The AIGNE Hub provider for a ``litellm_provider``, or None when there is none."""
    route = _route_for(litellm_provider)
    return route.provider if route else None


# A map has a few dozen distinct litellm_provider values and 200,000 keys: match each
# value against the table once.
@functools.lru_cache(maxsize=1024)
def _route_for(litellm_provider: str) -> LiteLLMRoute | None:
    for route in LITELLM_ROUTES:
        if fnmatch.fnmatchcase(litellm_provider, route.litellm_provider):
            return route
    return None


_ROUTE_RANKS = {route: rank for rank, route in enumerate(LITELLM_ROUTES)}


# ---------------------------------------------------------------------------- loading


def load_catalog(
    path: str | Path,
    *,
    exchange_rate: Any = None,
    currency: str = "USD",
    providers: str | Iterable[str] | None = None,
) -> Catalog:
    """Read a LiteLLM JSON or CSV price catalog (format: see the module docstring).

    ``currency``/``exchange_rate``: catalog prices are USD; another currency needs
    ``exchange_rate`` > 0 (units of ``currency`` per USD). ``providers`` (names or a
    comma-separated string) keeps only those AIGNE Hub providers; entries of others are
    left out of both ``entries`` and ``unmapped``. Raises :class:`ValidationError` naming
    the file, the key or row and the field for a malformed file; a LiteLLM key's costs
    are checked where they are read (keys of unmapped providers or modes are reported,
    not inspected).
    """
    file = Path(path)
    code, rate = _currency(currency, exchange_rate)
    selected = _providers(providers)
    text = read_text(file, "catalog file", hint=_CATALOG_HINT)
    ctx = CostReader(name=file.name, rate=rate, providers=selected)
    suffix = file.suffix.lower()
    is_json = suffix == ".json" or (suffix != ".csv" and text.lstrip().startswith("{"))
    with gc_paused():
        if is_json:
            data = _parse_json(text, ctx)
            del text  # a 200,000-key map is 180 MB of text: not kept beside its parsed form
            entries, unmapped = _map_litellm(data, ctx)
            del data
            source = f"litellm:{file.name}"
        else:
            entries, unmapped = read_csv_entries(text, ctx), []
            source = f"csv:{file.name}"
        entries.sort(key=lambda e: (e.provider, e.model, e.type.value))
        return Catalog(tuple(entries), tuple(unmapped), source, code, rate)


def _currency(currency: str, exchange_rate: Any) -> tuple[str, Decimal | None]:
    code = str(currency or "").strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise ValidationError(
            f"currency must be a 3-letter code such as USD or EUR, got {currency!r}",
            field="currency",
            value=currency,
        )
    rate = to_decimal(exchange_rate, "exchange_rate", allow_none=True)
    if rate is not None and rate <= 0:
        raise ValidationError(
            f"exchange_rate must be > 0 ({code} per USD), got {exchange_rate!r}",
            field="exchange_rate",
            value=exchange_rate,
        )
    if code == "USD":
        if rate is not None and rate != 1:
            raise ValidationError(
                f"catalog prices are USD: exchange_rate {exchange_rate!r} needs a target "
                "currency (currency='EUR', ...)",
                field="exchange_rate",
                value=exchange_rate,
            )
        return code, None
    if rate is None:
        raise ValidationError(
            f"catalog prices are USD; importing into {code} needs an explicit exchange_rate "
            f"({code} per USD, e.g. exchange_rate=Decimal('0.92'))",
            field="exchange_rate",
        )
    return code, rate


def _providers(providers: str | Iterable[str] | None) -> frozenset[str] | None:
    names = parse_csv_list(providers)
    if not names:
        return None
    return frozenset(validate_provider_name(n) for n in names)


def _parse_json(text: str, ctx: CostReader) -> dict[str, Any]:
    data = loads_json(text, ctx.name, "catalog file", hint=_CATALOG_HINT)
    if not isinstance(data, dict):
        raise ValidationError(
            f"{ctx.name}: a LiteLLM price map is a JSON object of model keys, got "
            f"{type(data).__name__}",
            field="json",
        )
    return data


def _map_litellm(
    data: dict[str, Any], ctx: CostReader
) -> tuple[list[CatalogEntry], list[UnmappedEntry]]:
    unmapped: list[tuple[int, UnmappedEntry]] = []
    candidates: dict[tuple[str, str, RateType], list[tuple[tuple[Any, ...], int, CatalogEntry]]]
    candidates = {}
    modes = _modes()
    for position, (key, raw) in enumerate(data.items()):
        if key == "sample_spec":  # LiteLLM's field documentation, not a model
            continue
        result = _map_entry(key, raw, ctx, modes)
        if result is None:
            continue
        if isinstance(result, UnmappedEntry):
            unmapped.append((position, result))
            continue
        entry, rank = result
        candidates.setdefault(entry.key, []).append((rank, position, entry))
    entries: list[CatalogEntry] = []
    for group in candidates.values():
        if len(group) == 1:  # nearly every key: nothing to rank
            entries.append(group[0][2])
            continue
        group.sort(key=lambda item: item[0])
        winner = group[0][2]
        entries.append(winner)
        for _, position, loser in group[1:]:
            differs = (loser.unit_costs, loser.cache_read_cost, loser.cache_write_cost) != (
                winner.unit_costs,
                winner.cache_read_cost,
                winner.cache_write_cost,
            )
            raw = data[loser.source_key]
            unmapped.append(
                (
                    position,
                    UnmappedEntry(
                        loser.source_key,
                        raw.get("litellm_provider"),
                        raw.get("mode"),
                        f"duplicate of {winner.source_key}"
                        + (" (different prices)" if differs else ""),
                    ),
                )
            )
    unmapped.sort(key=lambda item: item[0])
    return entries, [u for _, u in unmapped]


def _map_entry(
    key: str, raw: Any, ctx: CostReader, modes: Mapping[str, tuple[RateType, Billing]]
) -> tuple[CatalogEntry, tuple[Any, ...]] | UnmappedEntry | None:
    where = f"key {key!r}"
    if not isinstance(raw, dict):
        raise ctx.fail(where, "(entry)", f"must be a JSON object, got {type(raw).__name__}")
    lp = _optional_text(raw, "litellm_provider", where, ctx)
    mode = _optional_text(raw, "mode", where, ctx)

    def unmapped(reason: str) -> UnmappedEntry | None:
        if ctx.providers is not None:  # a provider filter reports only its own providers
            return None
        return UnmappedEntry(key, lp, mode, reason)

    if lp is None:
        alias = raw.get("alias_of")
        return unmapped("no litellm_provider" + (f" (alias of {alias})" if alias else ""))
    route = _route_for(lp)
    if route is None:
        return unmapped(f"litellm_provider {lp!r} has no AIGNE Hub provider")
    if ctx.providers is not None and route.provider not in ctx.providers:
        return None
    if mode is None:
        return UnmappedEntry(key, lp, mode, "no mode")
    mapped = modes.get(mode)
    if mapped is None:
        return UnmappedEntry(key, lp, mode, f"mode {mode!r} has no AIGNE Hub rate type")
    rate_type, billing = mapped
    model = _model_id(key, route)
    if isinstance(model, _Reason):
        return UnmappedEntry(key, lp, mode, model.text)
    costs = _costs(billing, raw, where, ctx)
    if isinstance(costs, _Reason):
        return UnmappedEntry(key, lp, mode, costs.text)
    model_id, stripped = model
    entry = CatalogEntry(
        provider=route.provider,
        model=model_id,
        type=rate_type,
        unit_costs=costs,
        cache_read_cost=ctx.optional_cost(
            raw.get("cache_read_input_token_cost"), where, "cache_read_input_token_cost"
        ),
        cache_write_cost=ctx.optional_cost(
            raw.get("cache_creation_input_token_cost"), where, "cache_creation_input_token_cost"
        ),
        model_metadata=_metadata(raw),
        source_key=key,
    )
    return entry, (_ROUTE_RANKS[route], stripped, len(key), key)


@dataclass(frozen=True, slots=True)
class _Reason:
    text: str


def _optional_text(raw: Mapping[str, Any], name: str, where: str, ctx: CostReader) -> str | None:
    value = raw.get(name)
    if value is None or isinstance(value, str):
        return value or None
    raise ctx.fail(where, name, f"must be text, got {value!r}", value)


def _model_id(key: str, route: LiteLLMRoute) -> tuple[str, int] | _Reason:
    """The upstream model id in ``key`` and how many LiteLLM segments were stripped."""
    segments = key.split("/")
    start = 0
    while start < len(segments) - 1 and _VARIANT.fullmatch(segments[start]):
        start += 1
    if start < len(segments) - 1 and segments[start] in route.prefixes:
        start += 1
        if route.provider == "bedrock":
            if start < len(segments) - 1 and segments[start] in _BEDROCK_API_ROUTES:
                start += 1
            if start < len(segments) - 1 and _REGION.fullmatch(segments[start]):
                start += 1
            if start < len(segments) - 1 and _COMMITMENT.fullmatch(segments[start]):
                return _Reason("Bedrock provisioned-throughput commitment price, not per token")
    model = "/".join(segments[start:])
    if route.provider == "bedrock" and "/" in model:
        route_part = model.rsplit("/", 1)[0]
        return _Reason(f"unrecognised Bedrock route {route_part!r} in the key")
    if model.startswith("ft:"):
        return _Reason("fine-tuning price template; fine-tuned model ids are per account")
    if not 1 <= len(model) <= 100:
        return _Reason(f"model id {model!r} is not 1–100 characters")
    return model, start


def _costs(
    billing: Billing, raw: Mapping[str, Any], where: str, ctx: CostReader
) -> UnitCosts | _Reason:
    """Unit costs of an entry as ``billing.catalog`` prices its type: input per token, output
    per unit of the count the type bills (:data:`hubkit.domain.BILLING`)."""
    pricing = billing.catalog
    assert pricing is not None  # _modes() maps only types with a catalog pricing

    def get(name: str) -> Decimal | None:
        return ctx.optional_cost(raw.get(name), where, name)

    prompt = get("input_cost_per_token")
    output = None
    for name in pricing.output_costs:  # the first one present wins; later ones stay unread
        output = get(name)
        if output is not None:
            break
    if prompt is None or not pricing.needs_input_cost:
        if pricing.needs_input_cost:
            return _Reason(f"{_missing(billing, True, raw)}; priced by: {_priced_by(raw)}")
        prompt = prompt or _ZERO  # a cost not needed defaults to 0
    if output is None or not pricing.needs_output_cost:
        if pricing.needs_output_cost:
            return _Reason(f"{_missing(billing, False, raw)}; priced by: {_priced_by(raw)}")
        output = output or _ZERO
    return UnitCosts(prompt, output)


def _missing(billing: Billing, no_input: bool, raw: Mapping[str, Any]) -> str:
    """What an entry lacks to price ``billing``'s type, for its unmapped reason."""
    pricing = billing.catalog
    assert pricing is not None
    fields = " / ".join(pricing.output_costs)
    if pricing.needs_input_cost and pricing.needs_output_cost:
        return f"no {_PER_UNIT[billing.output]} price (input_cost_per_token and {fields})"
    if pricing.needs_input_cost and no_input:
        return "no input_cost_per_token"
    if billing.output == "images":
        return f"{_image_pricing(raw)}, no {fields}"
    return f"no {_PER_UNIT[billing.output]} {billing.type} price ({fields})"


def _priced_by(raw: Mapping[str, Any]) -> str:
    names = sorted(
        k for k in raw if ("cost" in k or "pricing" in k) and raw[k] not in (None, 0, 0.0)
    )
    return ", ".join(names) if names else "no cost fields"


def _image_pricing(raw: Mapping[str, Any]) -> str:
    """Name the image pricing scheme that has no AIGNE Hub equivalent (a price per image)."""
    if any("per_pixel" in k for k in raw):
        return "priced per pixel"
    if any("per_image_token" in k for k in raw):
        return "priced per image token"
    if "input_cost_per_image" in raw:
        return "priced per input image"
    return "not priced per image"


def _metadata(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    meta: dict[str, Any] = {}
    max_tokens = raw.get("max_output_tokens")
    # LiteLLM sometimes writes prose or floats here; only a positive int is a token limit
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 1:
        meta["maxTokens"] = max_tokens
    features = [name for flag, name in _FEATURE_FLAGS if raw.get(flag) is True]
    if features:
        meta["features"] = features
    # what validate_model_metadata(meta) returns: maxTokens checked above, features sorted
    return meta or None
