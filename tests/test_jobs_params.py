"""Job parameters, guardrails and exit codes: the pure parts of hubkit.jobs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hubkit.catalog import shipped_catalog_path
from hubkit.domain import RateType, UnitCosts
from hubkit.errors import ValidationError
from hubkit.jobs import guardrails
from hubkit.jobs.params import BULK_DEFAULTS, BulkRateParams, CatalogSyncParams
from hubkit.jobs.runner import cli_value
from hubkit.jobs.status import JobStatus


def test_defaults_are_a_guarded_dry_run_on_the_stored_pricing() -> None:
    p = BulkRateParams.create()
    assert p.dry_run is True and p.push_to_hub is False and p.allow_below_cost is False
    assert p.profit_margin is None and p.credit_price is None
    assert p.max_change_pct == Decimal(50)
    assert p.rate_filter.providers == () and p.rate_filter.types == ()
    assert p.as_dict()["max_change_pct"] == "50"


def test_values_as_papermill_injects_them_are_read_exactly() -> None:
    from_text = BulkRateParams.create(profit_margin="25", credit_price="0.001", dry_run="false")
    from_numbers = BulkRateParams.create(profit_margin=25, credit_price=0.001, dry_run=False)
    assert from_text == from_numbers
    assert from_text.credit_price == Decimal("0.001")  # not the binary float 0.001
    assert from_text.dry_run is False


def test_lists_are_comma_separated_and_normalised() -> None:
    p = BulkRateParams.create(
        providers=" OpenAI, anthropic ,", types="chatCompletion,embedding", model_pattern="gpt-*"
    )
    assert p.rate_filter.providers == ("openai", "anthropic")
    assert p.rate_filter.types == (RateType.CHAT_COMPLETION, RateType.EMBEDDING)
    assert p.as_dict()["providers"] == "openai,anthropic"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("profit_margin", "-5", "profit_margin"),
        ("profit_margin", "lots", "must be a number"),
        ("credit_price", "0", "creditPrice must be > 0"),
        ("dry_run", "maybe", "True or False"),
        ("types", "chat", "type must be one of"),
        ("providers", "Open AI!", "custom provider name"),
        ("max_change_pct", "-1", "max_change_pct"),
        ("reason", "x" * 501, "at most 500"),
    ],
)
def test_a_bad_value_names_the_parameter(name: str, value: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        BulkRateParams.create(**{name: value})
    assert str(info.value).startswith(f"parameter {name}=")
    assert words in str(info.value)
    assert info.value.field == name


def test_an_unknown_parameter_lists_the_real_ones() -> None:
    with pytest.raises(ValidationError, match="has no parameter margin; its parameters are: "):
        BulkRateParams.create(margin=25)


def test_push_needs_the_hub_in_the_environment_not_in_parameters() -> None:
    with pytest.raises(ValidationError, match="HUBKIT_HUB_URL and HUBKIT_HUB_TOKEN"):
        BulkRateParams.create(push_to_hub=True)


def test_push_is_accepted_once_the_hub_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBKIT_HUB_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HUBKIT_HUB_TOKEN", "hubtok-not-used")
    assert BulkRateParams.create(push_to_hub="true").push_to_hub is True


def test_catalog_sync_defaults_to_the_shipped_catalog(tmp_path: Path) -> None:
    p = CatalogSyncParams.create()
    assert p.catalog_path == shipped_catalog_path()
    assert p.drift_threshold_pct == Decimal(10) and p.rederive_rates is False
    with pytest.raises(ValidationError, match="parameter catalog_path=.*no such file"):
        CatalogSyncParams.create(catalog_path=str(tmp_path / "missing.json"))
    with pytest.raises(ValidationError, match="drift_threshold_pct"):
        CatalogSyncParams.create(drift_threshold_pct=None)


def test_bulk_defaults_are_every_bulk_parameter() -> None:
    assert set(BULK_DEFAULTS) == set(BulkRateParams.create().as_dict())


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("False", False), ("None", None), ("25", "25"), ("0.001", "0.001")],
)
def test_cli_values_keep_numbers_as_text(text: str, value: object) -> None:
    assert cli_value(text) == value


# ---- guardrails ---------------------------------------------------------------------------
def _cand(old_in: str | None, new_in: str, cost_in: str = "0.000001") -> guardrails.Candidate:
    return guardrails.Candidate(
        rate_id=1,
        provider="openai",
        model="m",
        type=RateType.CHAT_COMPLETION,
        old_input_rate=None if old_in is None else Decimal(old_in),
        old_output_rate=Decimal(0),
        new_input_rate=Decimal(new_in),
        new_output_rate=Decimal(0),
        unit_costs=UnitCosts(Decimal(cost_in), Decimal(0)),
    )


def _check(*cands: guardrails.Candidate, limit: str | None = "50", below: bool = False) -> list:
    return guardrails.check(
        cands,
        max_change_pct=None if limit is None else Decimal(limit),
        allow_below_cost=below,
        credit_price=Decimal("0.001"),
    )


def test_a_move_within_the_limit_passes_and_beyond_it_is_refused() -> None:
    assert _check(_cand("0.001", "0.0015")) == []  # +50 % exactly: not beyond
    refused = _check(_cand("0.001", "0.0016"))
    assert len(refused) == 1
    assert "+60.00 %" in refused[0].reasons[0] and "max_change_pct=50" in refused[0].reasons[0]
    assert _check(_cand("0.001", "0.0004")) != []  # −60 % is beyond too


def test_from_zero_is_always_beyond_even_with_a_huge_limit() -> None:
    refused = _check(_cand("0", "0.002"), limit="1000000")
    assert "from zero" in refused[0].reasons[0]
    assert _check(_cand("0", "0.002"), limit=None) == []  # no limit given: no change check


def test_below_cost_is_refused_unless_allowed() -> None:
    # unit cost 0.000001 at credit price 0.001 → break-even 0.001
    refused = _check(_cand("0.00099", "0.00099"), limit=None)
    assert "below cost (break-even 0.001" in refused[0].reasons[0]
    assert _check(_cand("0.00099", "0.00099"), limit=None, below=True) == []
    assert _check(_cand("0.00099", "0.001"), limit=None) == []  # at break-even is not below


def test_a_new_rate_has_no_change_to_limit() -> None:
    assert _check(_cand(None, "0.002"), limit="1") == []


def test_refusal_columns_line_up_with_the_table() -> None:
    refused = _check(_cand("0.001", "0.01"))
    flags, reasons = guardrails.refusal_columns(
        [("openai", "x", "chatCompletion"), ("openai", "m", "chatCompletion")], refused
    )
    assert flags == [False, True] and reasons[0] == "" and "beyond" in reasons[1]


# ---- exit codes ---------------------------------------------------------------------------
def test_each_ending_has_its_documented_exit_code() -> None:
    codes = {s.value: s.exit_code for s in JobStatus}
    assert codes == {
        "running": 1, "dry_run": 0, "applied": 0, "unchanged": 0, "reported": 0, "invalid": 2,
        "guardrail": 8, "push_partial": 9, "lock_held": 75, "failed": 1,
        "interrupted": 1, "nothing_matched": 10,
    }  # fmt: skip
    assert JobStatus.parse("nonsense") is JobStatus.FAILED


def test_the_cli_maps_the_job_exceptions_to_the_same_codes() -> None:
    from hubkit.cli import exit_code_for
    from hubkit.errors import GuardrailError, LockHeldError

    assert exit_code_for(GuardrailError("x")) == JobStatus.GUARDRAIL.exit_code
    assert exit_code_for(LockHeldError("x")) == JobStatus.LOCK_HELD.exit_code
