"""hubkit.catalog: LiteLLM JSON / CSV price catalogs → unit costs, and drift.

Most tests read the real LiteLLM 1.110.2 price map (the reference data of the project) or
the sample shipped in hubkit/data; malformed inputs are written to tmp files.
"""

from __future__ import annotations

import csv
import json
import random
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.catalog import (
    CSV_COLUMNS,
    INFINITE_DRIFT,
    LITELLM_ROUTES,
    Catalog,
    CatalogEntry,
    drift,
    drift_frame,
    hub_provider,
    load_catalog,
    shipped_catalog_path,
)
from hubkit.domain import KNOWN_PROVIDERS, Rate, RateType, UnitCosts
from hubkit.errors import ValidationError

REPO = Path(__file__).resolve().parent.parent
_REFERENCE_NAME = "litellm-model-prices-1.110.2.json"
# CI clones the repo with a copy of shared/ beside it; a dev checkout lives in /work/main.
REFERENCE = next(
    (
        p
        for p in (REPO.parent / "shared" / "data" / _REFERENCE_NAME,
                  Path("/work/shared/data") / _REFERENCE_NAME)
        if p.exists()
    ),
    Path("/work/shared/data") / _REFERENCE_NAME,
)  # fmt: skip
needs_reference = pytest.mark.skipif(
    not REFERENCE.exists(), reason=f"reference price map {REFERENCE} not present"
)
CHAT = RateType.CHAT_COMPLETION
D = Decimal


@pytest.fixture(scope="module")
def reference() -> Catalog:
    return load_catalog(REFERENCE)


@pytest.fixture(scope="module")
def reference_raw() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def _write_json(tmp_path: Path, data: Any, name: str = "prices.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _chat(provider: str = "openai", **costs: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"litellm_provider": provider, "mode": "chat"}
    entry.update({"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06})
    entry.update(costs)
    return entry


# ------------------------------------------------------------------ the reference map


@needs_reference
def test_reference_counts_mapped_and_unmapped(reference: Catalog) -> None:
    # 4,878 keys = sample_spec (skipped) + mapped + unmapped; pinned for LiteLLM 1.110.2
    assert len(reference.entries) + len(reference.unmapped) == 4877
    assert len(reference.entries) == 745
    assert len(reference.unmapped) == 4132
    by_provider: dict[str, int] = {}
    for entry in reference.entries:
        by_provider[entry.provider] = by_provider.get(entry.provider, 0) + 1
    assert by_provider == {
        "bedrock": 317,
        "google": 179,
        "openai": 124,
        "xai": 48,
        "ollama": 29,
        "anthropic": 22,
        "doubao": 16,
        "deepseek": 10,
    }
    assert reference.source == "litellm:litellm-model-prices-1.110.2.json"
    assert reference.currency == "USD" and reference.exchange_rate is None


@needs_reference
def test_every_unmapped_entry_has_a_known_reason(reference: Catalog) -> None:
    known = (
        "litellm_provider ",
        "no litellm_provider",
        "duplicate of ",
        "mode ",
        "no mode",
        "priced per ",
        "not priced per image",
        "no per-token price",
        "no input_cost_per_token",
        "no per-second video price",
        "Bedrock provisioned-throughput",
        "unrecognised Bedrock route",
        "fine-tuning price template",
    )
    for item in reference.unmapped:
        assert item.reason.strip(), item
        assert item.reason.startswith(known), item
    assert len({u.key for u in reference.unmapped}) == len(reference.unmapped)
    assert "sample_spec" not in {u.key for u in reference.unmapped}


@needs_reference
def test_gpt_4o_costs_and_metadata(reference: Catalog) -> None:
    entry = reference.find("openai", "gpt-4o", "chatCompletion")
    assert entry is not None
    assert entry.unit_costs == UnitCosts(D("0.0000025"), D("0.00001"))
    assert entry.cache_read_cost == D("0.00000125")
    assert entry.cache_write_cost is None
    assert entry.model_metadata == {"maxTokens": 16384, "features": ["tools", "vision"]}
    assert entry.source_key == "gpt-4o"


@needs_reference
def test_claude_with_both_cache_costs(reference: Catalog) -> None:
    entry = reference.find("anthropic", "claude-sonnet-4-5", CHAT)
    assert entry is not None
    assert entry.unit_costs == UnitCosts(D("0.000003"), D("0.000015"))
    assert entry.cache_read_cost == D("3E-7")
    assert entry.cache_write_cost == D("0.00000375")
    assert entry.model_metadata == {"maxTokens": 64000, "features": ["thinking", "tools", "vision"]}


@needs_reference
def test_image_models_priced_per_image(reference: Catalog) -> None:
    # LiteLLM 1.110.2 lists no openai dall-e-3 (only azure/aiml ones); imagen and Titan
    # are the per-image models of supported providers
    assert not any(e.model == "dall-e-3" for e in reference.entries)
    imagen = reference.find("google", "imagen-3.0-generate-001", "imageGeneration")
    assert imagen is not None and imagen.unit_costs == UnitCosts(D(0), D("0.04"))
    assert imagen.source_key == "gemini/imagen-3.0-generate-001"
    titan = reference.find("bedrock", "amazon.titan-image-generator-v1", "imageGeneration")
    assert titan is not None and titan.unit_costs.output == D("0.008")
    # per image token and per pixel prices have no AIGNE Hub equivalent
    reasons = {u.key: u.reason for u in reference.unmapped}
    assert reasons["gpt-image-1"].startswith("priced per image token")
    assert reasons["high/1024-x-1024/gpt-image-1"].startswith("priced per pixel")
    assert reasons["xai/grok-imagine-image"].startswith("priced per input image")


@needs_reference
def test_embedding_and_video(reference: Catalog) -> None:
    small = reference.find("openai", "text-embedding-3-small", "embedding")
    assert small is not None and small.unit_costs == UnitCosts(D("2E-8"), D(0))
    sora = reference.find("openai", "sora-2", "video")
    assert sora is not None and sora.unit_costs == UnitCosts(D(0), D("0.1"))
    veo = reference.find("google", "veo-3.1-generate-001", "video")
    assert veo is not None and veo.unit_costs.output == D("0.4")


@needs_reference
def test_model_ids_and_duplicates(reference: Catalog) -> None:
    reasons = {u.key: u.reason for u in reference.unmapped}
    # Gemini API keys win over Vertex AI keys for google
    pro = reference.find("google", "gemini-2.5-pro", CHAT)
    assert pro is not None and pro.source_key == "gemini/gemini-2.5-pro"
    assert reasons["gemini-2.5-pro"] == "duplicate of gemini/gemini-2.5-pro"
    # the key without LiteLLM's prefix wins over the prefixed one
    chat = reference.find("deepseek", "deepseek-chat", CHAT)
    assert chat is not None and chat.source_key == "deepseek-chat"
    assert reasons["deepseek/deepseek-chat"].startswith("duplicate of deepseek-chat")
    # Bedrock: region and API route segments are stripped, regional prices are duplicates
    assert reasons["bedrock/us-east-1/anthropic.claude-v2:1"].startswith(
        "duplicate of anthropic.claude-v2:1"
    )
    assert reasons["bedrock/invoke/anthropic.claude-3-5-sonnet-20240620-v1:0"].startswith(
        "duplicate of anthropic.claude-3-5-sonnet-20240620-v1:0"
    )
    assert reasons["bedrock/claude_platform/claude-opus-4-5"].startswith(
        "unrecognised Bedrock route"
    )
    assert reasons["bedrock/us-east-1/1-month-commitment/anthropic.claude-v1"].startswith(
        "Bedrock provisioned-throughput"
    )
    # image size/steps variants collapse onto the model id
    sdxl = reference.find("bedrock", "stability.stable-diffusion-xl-v1", "imageGeneration")
    assert sdxl is not None
    assert sdxl.source_key == "1024-x-1024/50-steps/stability.stable-diffusion-xl-v1"
    assert reasons["1024-x-1024/max-steps/stability.stable-diffusion-xl-v1"] == (
        "duplicate of 1024-x-1024/50-steps/stability.stable-diffusion-xl-v1 (different prices)"
    )
    assert reference.find("ollama", "llama3:70b", CHAT) is not None
    assert reference.find("doubao", "doubao-embedding", "embedding") is not None
    assert reference.find("xai", "grok-4.3", CHAT) is not None
    # Vertex partner models keep their Vertex publisher path
    assert reference.find("google", "xai/grok-4.3", CHAT) is not None
    assert reasons["ft:gpt-4o-2024-08-06"].startswith("fine-tuning price template")
    assert reasons["bedrock_mantle/openai.gpt-oss-120b"] == (
        "litellm_provider 'bedrock_mantle' has no AIGNE Hub provider"
    )


@needs_reference
def test_costs_equal_the_floats_decimal_repr_without_noise(
    reference: Catalog, reference_raw: dict[str, Any]
) -> None:
    fields = {"input": "input_cost_per_token", "cache_read": "cache_read_input_token_cost"}
    checked = 0
    for entry in reference.entries:
        raw = reference_raw[entry.source_key]
        for cost in (
            entry.unit_costs.input,
            entry.unit_costs.output,
            entry.cache_read_cost,
            entry.cache_write_cost,
        ):
            # binary noise would show as ~17+ significant digits (1.0003000000000001E-7)
            assert cost is None or len(cost.as_tuple().digits) <= 9, (entry, cost)
        if entry.type is CHAT:
            assert entry.unit_costs.input == D(repr(raw[fields["input"]]))
            checked += 1
        if entry.cache_read_cost is not None:
            assert entry.cache_read_cost.as_tuple() == D(repr(raw[fields["cache_read"]])).as_tuple()
    assert checked > 500


@needs_reference
def test_result_does_not_depend_on_key_order(
    tmp_path: Path, reference: Catalog, reference_raw: dict[str, Any]
) -> None:
    items = list(reference_raw.items())
    random.Random(7).shuffle(items)
    shuffled = load_catalog(_write_json(tmp_path, dict(items)))
    assert shuffled.entries == reference.entries
    assert sorted(shuffled.unmapped, key=lambda u: u.key) == sorted(
        reference.unmapped, key=lambda u: u.key
    )


@needs_reference
def test_provider_filter(reference: Catalog) -> None:
    only = load_catalog(REFERENCE, providers="openai, xai")
    assert {e.provider for e in only.entries} == {"openai", "xai"}
    assert only.entries == tuple(e for e in reference.entries if e.provider in ("openai", "xai"))
    # unmapped then lists only keys of the selected providers, none of unknown ones
    assert only.unmapped
    assert {hub_provider(u.litellm_provider or "") for u in only.unmapped} == {"openai", "xai"}
    with pytest.raises(ValidationError) as err:
        load_catalog(REFERENCE, providers=["openai", "azure"])
    assert err.value.field == "provider"


# ------------------------------------------------------------------ frames and lookups


@needs_reference
def test_frames(reference: Catalog) -> None:
    frame = reference.to_frame()
    assert list(frame.columns) == [*CSV_COLUMNS, "max_tokens", "features", "source_key"]
    assert len(frame) == len(reference.entries)
    row = frame[(frame.provider == "openai") & (frame.model == "gpt-4o")].iloc[0]
    assert row.input_cost == D("0.0000025") and isinstance(row.input_cost, Decimal)
    assert row.features == "tools,vision" and row.max_tokens == 16384
    unmapped = reference.unmapped_frame()
    assert list(unmapped.columns) == ["key", "litellm_provider", "mode", "reason"]
    assert len(unmapped) == len(reference.unmapped)
    assert unmapped.reason.str.len().min() > 0


def test_find_and_duplicate_entries_refused() -> None:
    entry = CatalogEntry("openai", "m", CHAT, UnitCosts(D(1), D(2)), None, None, None, "m")
    catalog = Catalog((entry,), (), "test", "USD")
    assert catalog.find("openai", "m", "chatCompletion") is entry
    assert catalog.find("openai", "m", "embedding") is None
    assert len(catalog) == 1
    with pytest.raises(ValidationError):
        catalog.find("openai", "m", "chat")
    with pytest.raises(ValidationError) as err:
        Catalog((entry, entry), (), "test", "USD")
    assert "twice" in str(err.value)


def test_route_table_targets_known_providers() -> None:
    assert {r.provider for r in LITELLM_ROUTES} <= set(KNOWN_PROVIDERS)
    assert hub_provider("vertex_ai-anthropic_models") == "google"
    assert hub_provider("bedrock_converse") == "bedrock"
    assert hub_provider("volcengine") == "doubao"
    assert hub_provider("azure") is None
    assert hub_provider("bedrock_mantle") is None


def test_openrouter_and_prefix_rules(tmp_path: Path) -> None:
    data = {
        "openrouter/anthropic/claude-3": _chat("openrouter"),
        "ollama/llama3:8b": _chat("ollama", input_cost_per_token=0.0, output_cost_per_token=0),
        "volcengine/doubao-seed-1-6": _chat("volcengine"),
        "hd/1024-x-1024/dall-e-3": {
            "litellm_provider": "openai",
            "mode": "image_generation",
            "output_cost_per_image": 0.08,
        },
        "standard/1024-x-1024/dall-e-3": {
            "litellm_provider": "openai",
            "mode": "image_generation",
            "output_cost_per_image": 0.04,
        },
        "tiered": _chat("openai", tiered_pricing=[{"input_cost_per_token": 1e-6}]),
    }
    del data["tiered"]["input_cost_per_token"], data["tiered"]["output_cost_per_token"]
    catalog = load_catalog(_write_json(tmp_path, data))
    assert catalog.find("openrouter", "anthropic/claude-3", CHAT) is not None
    assert catalog.find("ollama", "llama3:8b", CHAT).unit_costs == UnitCosts(D(0), D(0))  # type: ignore[union-attr]
    assert catalog.find("doubao", "doubao-seed-1-6", CHAT) is not None
    dalle = catalog.find("openai", "dall-e-3", "imageGeneration")
    # the shorter key wins; both are reported
    assert dalle is not None and dalle.source_key == "hd/1024-x-1024/dall-e-3"
    reasons = {u.key: u.reason for u in catalog.unmapped}
    assert reasons["standard/1024-x-1024/dall-e-3"] == (
        "duplicate of hd/1024-x-1024/dall-e-3 (different prices)"
    )
    assert "tiered_pricing" in reasons["tiered"]


# ------------------------------------------------------------------ the shipped sample


def test_shipped_sample_loads_and_every_entry_maps() -> None:
    path = shipped_catalog_path()
    assert path.parent.name == "data" and path.exists()
    assert path.stat().st_size < 300_000
    catalog = load_catalog(path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert catalog.unmapped == ()
    assert len(catalog.entries) == len(raw) - 1 == 320  # all but sample_spec
    assert {e.provider for e in catalog.entries} == {
        "openai",
        "anthropic",
        "google",
        "deepseek",
        "xai",
        "bedrock",
    }
    images = [e for e in catalog.entries if e.type is RateType.IMAGE_GENERATION]
    assert len(images) >= 5 and all(e.unit_costs.output > 0 for e in images)
    assert sum(e.type is RateType.EMBEDDING for e in catalog.entries) >= 5
    assert catalog.find("openai", "gpt-4o", CHAT) is not None


@needs_reference
def test_shipped_sample_is_reproducible() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_sample_catalog
    finally:
        sys.path.remove(str(REPO / "scripts"))
    built = build_sample_catalog.build(REFERENCE)
    assert built == shipped_catalog_path().read_text(encoding="utf-8")


# ------------------------------------------------------------------ CSV

H = "provider,model,type,input_cost,output_cost\n"  # the minimal CSV header


def test_csv_round_trip(tmp_path: Path) -> None:
    original = load_catalog(shipped_catalog_path())
    path = original.to_csv(tmp_path / "out.csv")
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    for row in csv.DictReader(text.splitlines()):  # plain decimals only, never 1E-7
        assert all(re.fullmatch(r"(\d+(\.\d+)?)?", row[c]) for c in CSV_COLUMNS[3:]), row
    again = load_catalog(path)
    assert again.source == "csv:out.csv" and again.unmapped == ()

    def costs(c: Catalog) -> list[tuple[Any, ...]]:
        return [(e.key, e.unit_costs, e.cache_read_cost, e.cache_write_cost) for e in c.entries]

    assert costs(again) == costs(original)
    # and the CSV of the CSV is byte for byte the same
    assert again.to_csv(tmp_path / "again.csv").read_text(encoding="utf-8") == text


def test_csv_format_details(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        H + "openai,gpt-4o,chatCompletion,2.5E-6, 0.00001\n"
        "\n"
        "google,imagen-3,imageGeneration,0,0.04\n",
    )
    catalog = load_catalog(path)
    assert [e.source_key for e in catalog.entries] == ["row 4", "row 2"]  # sorted by provider
    gpt = catalog.find("openai", "gpt-4o", CHAT)
    assert gpt is not None and gpt.unit_costs == UnitCosts(D("0.0000025"), D("0.00001"))
    assert gpt.cache_read_cost is None and gpt.model_metadata is None
    # sniffed by content when the suffix says nothing
    assert load_catalog(_write(tmp_path, path.read_text(), "prices.txt")).entries == (
        catalog.entries
    )


@pytest.mark.parametrize(
    ("text", "field", "where"),
    [
        ("provider,model,type,input_cost\nopenai,m,chatCompletion,1\n", "output_cost", ""),
        ("provider,model,type,input_cost,output_cost,price\n", "price", ""),
        (H + "azure,m,chatCompletion,1,1\n", "provider", "row 2"),
        (H + "openai,m,chat,1,1\n", "type", "row 2"),
        (H + "openai,m,embedding,-1,0\n", "input_cost", "row 2"),
        (H + "openai,m,embedding,1,NaN\n", "output_cost", "row 2"),
        (H + "openai,m,embedding,,0\n", "input_cost", "row 2"),
        (H + "openai,,embedding,1,0\n", "model", "row 2"),
        (H + "openai,m,embedding,1,0,9\n", "(row)", "row 2"),
        (
            "provider,model,type,input_cost,output_cost,cache_read_cost\n"
            "openai,m,chatCompletion,1,1,abc\n",
            "cache_read_cost",
            "row 2",
        ),
        (
            H
            + "openai,m,embedding,1,0\nopenai,m,embedding,2,0\n",
            "model",
            "row 3",
        ),
    ],
)  # fmt: skip
def test_malformed_csv(tmp_path: Path, text: str, field: str, where: str) -> None:
    path = _write(tmp_path, text, "bad.csv")
    with pytest.raises(ValidationError) as err:
        load_catalog(path)
    message = str(err.value)
    assert err.value.field == field
    assert "bad.csv" in message and field in message and where in message


# ------------------------------------------------------------------ malformed JSON


@pytest.mark.parametrize(
    ("content", "field", "where"),
    [
        ('{"gpt-4o": {"mode": "chat",}', "json", "line 1"),
        ("[1, 2]", "json", "JSON object"),
        ('{"gpt-4o": 3}', "(entry)", "'gpt-4o'"),
        (json.dumps({"m": _chat(input_cost_per_token=-1e-6)}), "input_cost_per_token", "'m'"),
        ('{"m": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": NaN,'
         ' "output_cost_per_token": 1}}', "input_cost_per_token", "'m'"),
        (json.dumps({"m": _chat(output_cost_per_token="cheap")}), "output_cost_per_token", "'m'"),
        (json.dumps({"m": _chat(output_cost_per_token=True)}), "output_cost_per_token", "'m'"),
        (json.dumps({"m": _chat(cache_read_input_token_cost=-1)}), "cache_read_input_token_cost",
         "'m'"),
        (json.dumps({"m": _chat(mode=7)}), "mode", "'m'"),
        (json.dumps({"m": _chat(output_cost_per_token=1e20)}), "output_cost_per_token", "'m'"),
        (json.dumps({"m": {"litellm_provider": "openai", "mode": "image_generation",
                           "output_cost_per_image": -0.04}}), "output_cost_per_image", "'m'"),
    ],
)  # fmt: skip
def test_malformed_json(tmp_path: Path, content: str, field: str, where: str) -> None:
    path = _write(tmp_path, content, "bad.json")
    with pytest.raises(ValidationError) as err:
        load_catalog(path)
    message = str(err.value)
    assert err.value.field == field
    assert "bad.json" in message and where in message
    if field != "json":
        assert field in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        load_catalog(tmp_path / "nope.json")
    assert err.value.field == "path" and "nope.json" in str(err.value)


# ------------------------------------------------------------------ currency


def test_other_currency_needs_an_exchange_rate(tmp_path: Path) -> None:
    path = _write_json(tmp_path, {"m": _chat(input_cost_per_token=1.0003e-07)})
    with pytest.raises(ValidationError) as err:
        load_catalog(path, currency="EUR")
    assert err.value.field == "exchange_rate" and "EUR" in str(err.value)
    for bad in (D(0), D(-1), "abc"):
        with pytest.raises(ValidationError):
            load_catalog(path, currency="EUR", exchange_rate=bad)
    with pytest.raises(ValidationError) as err:
        load_catalog(path, exchange_rate=D("0.92"))  # USD → USD at 0.92 makes no sense
    assert err.value.field == "exchange_rate"
    with pytest.raises(ValidationError) as err:
        load_catalog(path, currency="euro", exchange_rate=1)
    assert err.value.field == "currency"

    eur = load_catalog(path, currency="eur", exchange_rate=D("0.92"))
    entry = eur.find("openai", "m", CHAT)
    assert eur.currency == "EUR" and eur.exchange_rate == D("0.92")
    assert entry is not None
    assert entry.unit_costs == UnitCosts(D("9.20276E-8"), D("0.00000184"))  # exact products
    # a long exchange rate: exact product, rounded half up to the store's 18 places
    odd = load_catalog(path, currency="JPY", exchange_rate=D("151.123456789"))
    odd_input = odd.find("openai", "m", CHAT).unit_costs.input  # type: ignore[union-attr]
    # 1.0003E-7 × 151.123456789 = 0.00001511687938260367 (20 places)
    assert odd_input == D("0.000015116879382604")
    usd = load_catalog(path)
    assert usd.find("openai", "m", CHAT).unit_costs.input.as_tuple() == D("1.0003E-7").as_tuple()  # type: ignore[union-attr]


# ------------------------------------------------------------------ Decimal conversion


# every finite float a catalog may hold: ≥ 0 and below the store's 10^20 bound
_costs = st.floats(min_value=0, max_value=1e19, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_costs, _costs), min_size=1, max_size=20))
def test_costs_are_the_decimal_of_the_floats_repr(
    tmp_path_factory: pytest.TempPathFactory, pairs: list[tuple[float, float]]
) -> None:
    data = {
        f"model-{i}": _chat(input_cost_per_token=a, output_cost_per_token=b)
        for i, (a, b) in enumerate(pairs)
    }
    path = _write_json(tmp_path_factory.mktemp("prop"), data)
    catalog = load_catalog(path)
    assert len(catalog.entries) == len(pairs)
    for i, (a, b) in enumerate(pairs):
        entry = catalog.find("openai", f"model-{i}", CHAT)
        assert entry is not None
        assert entry.unit_costs.input.as_tuple() == D(repr(a)).as_tuple()
        assert entry.unit_costs.output.as_tuple() == D(repr(b)).as_tuple()


# ------------------------------------------------------------------ drift


def _rate(rid: int, model: str, stored: UnitCosts | None, type_: RateType = CHAT) -> Rate:
    return Rate(
        id=rid,
        provider="openai",
        model=model,
        type=type_,
        input_rate=D(0),
        output_rate=D(0),
        model_display=model,
        version=1,
        unit_costs=stored,
    )


@pytest.fixture
def drift_catalog(tmp_path: Path) -> Catalog:
    return load_catalog(
        _write(
            tmp_path,
            H + "openai,up,chatCompletion,0.0000025,0.00001\n"
            "openai,down,chatCompletion,0.000002,0.000008\n"
            "openai,edge,chatCompletion,0.000011,0.00001\n"
            "openai,fresh,chatCompletion,0.01,0\n"
            "openai,image,imageGeneration,0,0.04\n",
        )
    )


def test_drift_math(drift_catalog: Catalog) -> None:
    rates = [
        _rate(1, "up", UnitCosts(D("0.000002"), D("0.00001"))),  # input +25 %, output 0 %
        _rate(2, "down", UnitCosts(D("0.0000021"), D("0.000008"))),  # input −4.76 %
        _rate(3, "edge", UnitCosts(D("0.00001"), D("0.00001"))),  # exactly +10 %: not above
        _rate(4, "fresh", UnitCosts(D(0), D(0))),  # 0 → 0.01: infinite
        _rate(5, "missing", UnitCosts(D(1), D(1))),  # not in the catalog: left out
        _rate(6, "up", None),  # no stored unit costs: nothing to drift from
        _rate(7, "image", UnitCosts(D(0), D("0.05")), RateType.IMAGE_GENERATION),  # −20 %
    ]
    result = drift(rates, drift_catalog)
    assert [d.rate_id for d in result] == [1, 2, 3, 4, 7]
    up, down, edge, fresh, image = result
    assert up.input_pct == D(25) and up.output_pct == D(0) and up.exceeds
    assert up.stored == UnitCosts(D("0.000002"), D("0.00001"))
    assert up.catalog == UnitCosts(D("0.0000025"), D("0.00001"))
    assert up.source_key == "row 2"
    # (0.000002 − 0.0000021) / 0.0000021 × 100 = −100/21 %
    assert down.input_pct.quantize(D("1E-20")) == D("-4.76190476190476190476")
    assert down.output_pct == 0 and not down.exceeds
    assert edge.input_pct == D(10) and not edge.exceeds
    assert fresh.input_pct == INFINITE_DRIFT and fresh.output_pct == 0 and fresh.exceeds
    assert image.output_pct == D(-20) and image.exceeds and image.max_abs_pct == D(20)
    # a looser threshold keeps only the infinite and the −20 % drift
    assert [d.rate_id for d in drift(rates, drift_catalog, threshold_pct=30) if d.exceeds] == [4]
    assert [d.rate_id for d in drift(rates, drift_catalog, "19.99") if d.exceeds] == [1, 4, 7]
    with pytest.raises(ValidationError):
        drift(rates, drift_catalog, threshold_pct=-1)


def test_drift_frame(drift_catalog: Catalog) -> None:
    rates = [
        _rate(1, "up", UnitCosts(D("0.000002"), D("0.00001"))),
        _rate(4, "fresh", UnitCosts(D(0), D(0))),
    ]
    frame = drift_frame(drift(rates, drift_catalog))
    assert list(frame.columns) == [
        "rate_id",
        "provider",
        "model",
        "type",
        "stored_input",
        "catalog_input",
        "input_pct",
        "stored_output",
        "catalog_output",
        "output_pct",
        "exceeds",
        "source_key",
    ]
    assert frame.rate_id.tolist() == [1, 4]
    assert frame.input_pct.tolist() == [D(25), INFINITE_DRIFT]
    assert frame.exceeds.tolist() == [True, True]
    assert drift_frame([]).empty


def test_repeated_float_costs_convert_as_each_one_would(tmp_path: Path) -> None:
    # the reader converts each distinct float once; ±0.0 are equal keys, and -0 is made 0
    # at the edge (hubkit.decimals.to_decimal) as a single conversion would
    data = {
        f"m{i}": _chat(input_cost_per_token=value, output_cost_per_token=2.5e-06)
        for i, value in enumerate([0.0, -0.0, 0.0, -0.0, 1e-07, 1e-07])
    }
    catalog = load_catalog(_write_json(tmp_path, data))
    got = {e.model: str(e.unit_costs.input) for e in catalog.entries}
    assert got == {"m0": "0.0", "m1": "0.0", "m2": "0.0", "m3": "0.0", "m4": "1E-7", "m5": "1E-7"}
    assert {str(e.unit_costs.output) for e in catalog.entries} == {"0.0000025"}
