"""hubkit.domain: enums and validated value types (domain.md field rules)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from hubkit.domain import (
    KNOWN_PROVIDERS,
    Caching,
    ChangeType,
    CredentialType,
    ProviderSpec,
    Rate,
    RateSpec,
    RateType,
    UnitCosts,
    normalise_credential_value,
    parse_csv_list,
    validate_model_metadata,
    validate_provider_name,
)
from hubkit.errors import ValidationError

# --- enums -----------------------------------------------------------------------------------


def test_rate_types_use_the_gateways_spelling() -> None:
    assert [t.value for t in RateType] == [
        "chatCompletion",
        "imageGeneration",
        "embedding",
        "video",
    ]
    assert RateType.parse(" embedding ") is RateType.EMBEDDING
    assert RateType.parse(RateType.VIDEO) is RateType.VIDEO
    assert RateType.CHAT_COMPLETION.is_text and RateType.EMBEDDING.is_text
    assert not RateType.IMAGE_GENERATION.is_text and not RateType.VIDEO.is_text


@pytest.mark.parametrize("raw", ["chat", "ChatCompletion", "audioGeneration", "", None, 3])
def test_unknown_rate_type_names_the_field_and_the_choices(raw: object) -> None:
    with pytest.raises(ValidationError, match="chatCompletion, imageGeneration") as info:
        RateType.parse(raw)
    assert info.value.field == "type"


def test_credential_types() -> None:
    assert {t.value for t in CredentialType} == {"api_key", "access_key_pair", "custom"}
    with pytest.raises(ValidationError) as info:
        CredentialType.parse("password")
    assert info.value.field == "credentialType"


def test_change_types_hold_the_gateways_and_hubkits_kinds() -> None:
    assert {c.value for c in ChangeType} == {
        "manual_update",
        "bulk_update",
        "bulk_create",
        "bulk_sync",
        "source_drift",
        "auto_update",
        "create",
        "delete",
        "catalog_import",
        "revert",
        "hub_push",
    }


# --- providers -------------------------------------------------------------------------------


def test_the_eleven_known_providers() -> None:
    assert KNOWN_PROVIDERS == (
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


def test_provider_names() -> None:
    assert validate_provider_name(" OpenAI ") == "openai"
    assert validate_provider_name("my-gateway", custom=True) == "my-gateway"
    # known names stay known even when "custom" is asked for
    assert validate_provider_name("xai", custom=True) == "xai"
    with pytest.raises(ValidationError, match="unknown provider 'mistral'") as info:
        validate_provider_name("mistral")
    assert info.value.field == "provider"
    assert "custom" in str(info.value)
    for bad in ("", "Has Space", "-dash-first", "x" * 51, "ümlaut"):
        with pytest.raises(ValidationError) as info:
            validate_provider_name(bad, custom=True)
        assert info.value.field == "provider"


def test_provider_spec_defaults_and_normalisation() -> None:
    spec = ProviderSpec.create("OpenAI", base_url="https://api.openai.com/v1")
    assert spec == ProviderSpec(
        name="openai",
        display_name="openai",
        base_url="https://api.openai.com/v1",
        region=None,
        enabled=True,
        config={},
        custom=False,
    )
    custom = ProviderSpec.create("acme", "Acme AI", base_url="http://10.0.0.1:8080", custom=True)
    assert custom.custom and custom.display_name == "Acme AI"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "x"  # type: ignore[misc]


def test_bedrock_needs_a_region_but_no_base_url() -> None:
    spec = ProviderSpec.create("bedrock", "AWS Bedrock", region="us-east-1")
    assert spec.region == "us-east-1" and spec.base_url is None
    with pytest.raises(ValidationError, match="region is required for bedrock") as info:
        ProviderSpec.create("bedrock", base_url="https://bedrock.example.com")
    assert info.value.field == "region"
    with pytest.raises(ValidationError) as info:
        ProviderSpec.create("bedrock", region="r" * 51)
    assert info.value.field == "region"


@pytest.mark.parametrize("name", [p for p in KNOWN_PROVIDERS if p != "bedrock"])
def test_every_other_provider_needs_a_base_url(name: str) -> None:
    with pytest.raises(ValidationError, match="baseUrl is required") as info:
        ProviderSpec.create(name)
    assert info.value.field == "baseUrl"


@pytest.mark.parametrize("url", ["api.openai.com", "ftp://x.example", "https://", "not a url"])
def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        ProviderSpec.create("openai", base_url=url)
    assert info.value.field == "baseUrl"


URL_PASSWORD = "hunter2-LEAKCHECK-pw"


@pytest.mark.parametrize(
    "url",
    [
        f"https://admin:{URL_PASSWORD}@api.openai.com/v1",
        f"https://{URL_PASSWORD}@api.openai.com/v1",  # a key given as the user name
        f"ftp://admin:{URL_PASSWORD}@api.openai.com",  # refused for its scheme
        f"http://admin:{URL_PASSWORD}@[::1",  # unparseable
        f"https://admin:{URL_PASSWORD}@" + "x" * 500 + ".example.com",  # too long
    ],
)
def test_base_url_with_credentials_is_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        ProviderSpec.create("openai", base_url=url)
    err = info.value
    assert err.field == "baseUrl"
    for text in (str(err), repr(err), repr(err.args), repr(vars(err))):
        assert URL_PASSWORD not in text


def test_base_url_credentials_error_says_to_store_a_credential() -> None:
    with pytest.raises(ValidationError, match="store the key as a credential") as info:
        ProviderSpec.create("openai", base_url=f"https://admin:{URL_PASSWORD}@api.openai.com/v1")
    assert "'https://***@api.openai.com/v1'" in str(info.value)
    assert info.value.value == "https://***@api.openai.com/v1"


def test_provider_display_name_and_config_limits() -> None:
    with pytest.raises(ValidationError) as info:
        ProviderSpec.create("openai", "d" * 101, base_url="https://x.example")
    assert info.value.field == "displayName"
    with pytest.raises(ValidationError) as info:
        ProviderSpec.create("openai", base_url="https://x.example", config=["a"])  # type: ignore[arg-type]
    assert info.value.field == "config"


def test_unknown_provider_without_custom_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        ProviderSpec.create("mistral", base_url="https://api.mistral.ai")
    assert info.value.field == "provider"


# --- credential values -----------------------------------------------------------------------


def test_plain_string_api_key_means_api_key_field() -> None:
    assert normalise_credential_value("api_key", " sk-123 ") == {"api_key": "sk-123"}


def test_key_pair_and_custom_values() -> None:
    pair = {"access_key_id": "AKIA1", "secret_access_key": "s3cr3t"}
    assert normalise_credential_value("access_key_pair", pair) == pair
    assert normalise_credential_value("custom", {"token": "t", "org": "o", "skip": None}) == {
        "token": "t",
        "org": "o",
    }


@pytest.mark.parametrize(
    ("ctype", "value"),
    [
        ("api_key", ""),
        ("api_key", "   "),
        ("api_key", {}),
        ("custom", {"a": ""}),
        ("api_key", {"api_key": None}),
    ],
)
def test_empty_credentials_are_refused(ctype: str, value: object) -> None:
    with pytest.raises(ValidationError, match="Credential cannot be empty"):
        normalise_credential_value(ctype, value)


def test_key_pair_needs_both_fields() -> None:
    with pytest.raises(ValidationError, match="secret_access_key") as info:
        normalise_credential_value("access_key_pair", {"access_key_id": "AKIA1"})
    assert info.value.field == "secret_access_key"
    with pytest.raises(ValidationError, match="mapping"):
        normalise_credential_value("access_key_pair", "just-a-string")


def test_credential_fields_must_be_text() -> None:
    with pytest.raises(ValidationError) as info:
        normalise_credential_value("custom", {"port": 5})
    assert info.value.field == "port"
    with pytest.raises(ValidationError):
        normalise_credential_value("api_key", 12345)


# --- unit costs, caching, metadata -----------------------------------------------------------


def test_unit_costs_parse() -> None:
    costs = UnitCosts.parse({"input": "1.0003E-7", "output": 0.00001})
    assert costs == UnitCosts(Decimal("1.0003E-7"), Decimal("0.00001"))
    assert costs is not None and costs.is_eligible
    assert UnitCosts.parse({"input": 0}) == UnitCosts(Decimal(0), Decimal(0))
    assert not UnitCosts(Decimal(0), Decimal(0)).is_eligible
    assert UnitCosts.parse(None) is None
    assert costs.to_json() == {"input": "0.00000010003", "output": "0.00001"}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"input": -1, "output": 0}, "unitCosts.input"),
        ({"input": 0, "output": "NaN"}, "unitCosts.output"),
        ({"input": "abc"}, "unitCosts.input"),
        ({"input": True}, "unitCosts.input"),
        ("0.1", "unitCosts"),
    ],
)
def test_bad_unit_costs_name_the_field(raw: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        UnitCosts.parse(raw)
    assert info.value.field == field


def test_caching_zero_is_kept_and_missing_is_none() -> None:
    caching = Caching.parse({"readRate": 0, "writeRate": None})
    assert caching == Caching(read_rate=Decimal(0), write_rate=None)
    assert caching is not None and caching.to_json() == {"readRate": "0"}
    assert Caching.parse({}) is None
    assert Caching.parse(None) is None
    quantised = Caching.parse({"readRate": "0.00000000005"})
    assert quantised is not None and quantised.read_rate == Decimal("0.0000000001")
    with pytest.raises(ValidationError) as info:
        Caching.parse({"writeRate": -1})
    assert info.value.field == "caching.writeRate"


def test_model_metadata_shape() -> None:
    meta = {
        "maxTokens": 128000,
        "features": ["vision", "tools", "tools"],
        "imageGeneration": {"max": 4, "quality": ["hd"], "size": ["1024x1024"], "style": []},
    }
    assert validate_model_metadata(meta) == {
        "maxTokens": 128000,
        "features": ["tools", "vision"],
        "imageGeneration": {"max": 4, "quality": ["hd"], "size": ["1024x1024"], "style": []},
    }
    assert validate_model_metadata({"maxTokens": None}) == {"maxTokens": None}
    assert validate_model_metadata(None) is None


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        ({"maxTokens": 0}, "modelMetadata.maxTokens"),
        ({"maxTokens": True}, "modelMetadata.maxTokens"),
        ({"maxTokens": 1.5}, "modelMetadata.maxTokens"),
        ({"features": ["telepathy"]}, "modelMetadata.features"),
        ({"features": "tools"}, "modelMetadata.features"),
        ({"imageGeneration": {"max": 0}}, "modelMetadata.imageGeneration.max"),
        ({"imageGeneration": {"size": "big"}}, "modelMetadata.imageGeneration.size"),
        ({"imageGeneration": {"colour": []}}, "modelMetadata.imageGeneration.colour"),
        ({"imageGeneration": []}, "modelMetadata.imageGeneration"),
        ({"extra": 1}, "modelMetadata.extra"),
        ([1], "modelMetadata"),
    ],
)
def test_bad_model_metadata_names_the_field(meta: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_model_metadata(meta)
    assert info.value.field == field


# --- rate specs ------------------------------------------------------------------------------


def test_rate_spec_quantises_and_derives_model_display() -> None:
    spec = RateSpec.create(
        "OpenAI",
        "gpt-4o-mini",
        "chatCompletion",
        input_rate="0.00000000015",
        output_rate=Decimal("0.0000006"),
        unit_costs={"input": "0.00000015", "output": "0.0000006"},
        caching={"readRate": "0.000000075"},
        description="  small model ",
    )
    assert spec.provider == "openai"
    assert spec.model_display == "Gpt 4o Mini"
    assert spec.input_rate == Decimal("0.0000000002")  # ROUND_HALF_UP at 10 places
    assert spec.input_rate.as_tuple().exponent == -10
    assert spec.output_rate == Decimal("0.0000006")
    assert spec.description == "small model"
    assert spec.key == ("openai", "gpt-4o-mini", RateType.CHAT_COMPLETION)


def test_rate_spec_keeps_an_explicit_display_and_rate_zero() -> None:
    spec = RateSpec.create("openai", "dall-e-3", "imageGeneration", output_rate="0.04")
    assert spec.model_display == "Dall E 3"
    assert spec.input_rate == 0
    named = RateSpec.create("openai", "dall-e-3", "imageGeneration", model_display="DALL·E 3")
    assert named.model_display == "DALL·E 3"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": ""}, "model"),
        ({"model": "m" * 101}, "model"),
        ({"type": "audio"}, "type"),
        ({"input_rate": -1}, "inputRate"),
        ({"output_rate": "inf"}, "outputRate"),
        ({"output_rate": "twelve"}, "outputRate"),
        ({"input_rate": False}, "inputRate"),
        ({"model_display": "d" * 101}, "modelDisplay"),
        ({"description": "d" * 101}, "description"),
        ({"unit_costs": {"input": -0.1}}, "unitCosts.input"),
        ({"model_metadata": {"maxTokens": -5}}, "modelMetadata.maxTokens"),
    ],
)
def test_rate_spec_rejects_bad_fields(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"model": "gpt-4o", "type": "chatCompletion", **kwargs}
    model = args.pop("model")
    rtype = args.pop("type")
    with pytest.raises(ValidationError) as info:
        RateSpec.create("openai", model, rtype, **args)  # type: ignore[arg-type]
    assert info.value.field == field


def test_rate_value_is_frozen() -> None:
    rate = Rate(
        id=1,
        provider="openai",
        model="gpt-4o",
        type=RateType.CHAT_COMPLETION,
        input_rate=Decimal("0.0000025"),
        output_rate=Decimal("0.00001"),
        model_display="Gpt 4o",
        version=1,
    )
    assert rate.key == ("openai", "gpt-4o", RateType.CHAT_COMPLETION)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rate.input_rate = Decimal(0)  # type: ignore[misc]


def test_parse_csv_list() -> None:
    assert parse_csv_list("openai, anthropic,,") == ["openai", "anthropic"]
    assert parse_csv_list(["a", " b ", ""]) == ["a", "b"]
    assert parse_csv_list(None) == []
    assert parse_csv_list("") == []


@pytest.mark.parametrize("raw", ["1e400", "1e60", "10000000000", Decimal("1E+10")])
def test_rates_beyond_decimal_20_10_are_a_validation_error(raw: object) -> None:
    # domain.md: rates are DECIMAL(20,10); a huge value must not surface as
    # decimal.InvalidOperation from quantize (or a database overflow later)
    for field, kwargs in (
        ("inputRate", {"input_rate": raw}),
        ("outputRate", {"output_rate": raw}),
        ("caching.readRate", {"caching": {"readRate": raw}}),
    ):
        with pytest.raises(ValidationError) as info:
            RateSpec.create("openai", "gpt-4o", "chatCompletion", **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field


def test_largest_rate_that_fits_decimal_20_10() -> None:
    spec = RateSpec.create("openai", "m", "chatCompletion", input_rate="9999999999.9999999999")
    assert spec.input_rate == Decimal("9999999999.9999999999")


@pytest.mark.parametrize("raw", ["1e20", "1e400"])
def test_unit_costs_beyond_numeric_38_18_are_a_validation_error(raw: str) -> None:
    with pytest.raises(ValidationError) as info:
        UnitCosts.parse({"input": raw, "output": 0})
    assert info.value.field == "unitCosts.input"
