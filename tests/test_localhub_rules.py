"""The local hub keeps its own copy of the gateway's rules, and that copy agrees with hubkit's.

``hubkit.localhub`` imitates AIGNE Hub: its margin rate, display names, masks and Joi
enumerations are written from the gateway's documented behaviour, not imported from
hubkit. Only then does a client test against it compare two implementations — shared
code would make a wrong rule pass on both sides. Checked here both ways:

- nothing in ``hubkit/localhub`` imports hubkit's rule modules or its client (every
  import statement, and what a fresh interpreter really loads);
- on generated cases the two copies agree: function against function, and hubkit's rule
  against the running hub's own answers (margin-mode bulk update, blank modelDisplay,
  credential masks).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Collection, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hubkit.localhub
from hubkit.decimals import plain, quantize
from hubkit.domain import KNOWN_PROVIDERS, CredentialType, RateType
from hubkit.localhub import rules
from hubkit.pricing import credential_display_text, default_model_display, margin_rate, mask_secret

if TYPE_CHECKING:
    from hub_fixtures import HubHandle

LOCALHUB = Path(hubkit.localhub.__file__).resolve().parent
HUBKIT_DIR = LOCALHUB.parent
BASE = "/api/ai-providers"

#: third-party packages the local hub may use (besides the standard library)
ALLOWED_PACKAGES = {"starlette", "uvicorn", "cryptography", "httpx"}
#: hubkit modules outside the local hub that one of its modules may import, and why
ALLOWED_HUBKIT: dict[str, Collection[str]] = {
    # the process starter raises hubkit's HubError when the server does not come up:
    # an exception type (no rule) that callers of start_local_hub already catch
    "process.py": {"hubkit.errors"},
}


# --- independence: what the local hub imports --------------------------------------------------


def _imported_modules(source: str, package: str) -> list[str]:
    """Every module an import statement in ``source`` names (nested ones included)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.append(f"{base}.{node.module}" if node.module else base)
            else:
                assert node.module is not None
                names.append(node.module)
    return names


def _foreign_imports(source: str, allowed_hubkit: Collection[str] = ()) -> list[str]:
    bad = []
    for name in _imported_modules(source, "hubkit.localhub"):
        top = name.split(".")[0]
        if name == "hubkit.localhub" or name.startswith("hubkit.localhub."):
            continue
        if top == "hubkit":
            if name not in allowed_hubkit:
                bad.append(name)
        elif top not in sys.stdlib_module_names and top not in ALLOWED_PACKAGES:
            bad.append(name)
    return bad


def test_the_import_check_sees_hubkit_rules_and_nested_imports() -> None:
    # the checker itself: a rule import, a nested one and a relative one are all caught
    source = (
        "from hubkit.pricing import margin_rate\n"
        "def f():\n    import hubkit.hub.client\n"
        "from ..domain import RateType\n"
        "import numpy\n"
        "from hubkit.localhub.rules import mask_secret\nimport json\n"
    )
    assert sorted(_foreign_imports(source)) == [
        "hubkit.domain",
        "hubkit.hub.client",
        "hubkit.pricing",
        "numpy",
    ]


def test_the_local_hub_imports_no_hubkit_rule_module_or_client() -> None:
    modules = sorted(LOCALHUB.glob("*.py"))
    assert {p.name for p in modules} >= {
        "app.py", "state.py", "validation.py", "bulk.py", "faults.py", "process.py", "rules.py",
    }  # fmt: skip
    bad = {
        path.name: found
        for path in modules
        if (found := _foreign_imports(path.read_text(), ALLOWED_HUBKIT.get(path.name, ())))
    }
    assert bad == {}, f"the local hub must keep its own copy of the gateway's rules: {bad}"


def test_a_fresh_interpreter_serves_the_local_hub_without_loading_hubkit(tmp_path: Path) -> None:
    # hubkit/__init__.py (the front door) is bypassed: if any local hub module needed
    # pricing, domain, decimals or the client, it would have to load it here, and show up.
    code = f"""
import asyncio, importlib, json, sys, types
pkg = types.ModuleType("hubkit")
pkg.__path__ = [{str(HUBKIT_DIR)!r}]
sys.modules["hubkit"] = pkg
import httpx
from hubkit.localhub.app import create_app
for name in ("bulk", "faults", "process", "routing", "rules", "state", "validation"):
    importlib.import_module("hubkit.localhub." + name)
app = create_app({str(tmp_path / "hub.json")!r}, "tok-0123456789", test_faults=True)

async def ask():
    auth = {{"Authorization": "Bearer tok-0123456789"}}
    body = {{"name": "openai", "displayName": "OpenAI", "baseUrl": "https://api.openai.com/v1"}}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://h") as web:
        made = await web.post("/api/ai-providers", headers=auth, json=body)
        stats = await web.get("/__test__/stats", headers=auth)
    return made.status_code, stats.status_code

made, stats = asyncio.run(ask())
loaded = sorted(m for m in sys.modules
                if m.split(".")[0] == "hubkit" and not m.startswith("hubkit.localhub")
                and m != "hubkit")
print(json.dumps({{"loaded": loaded, "made": made, "stats": stats}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"loaded": ["hubkit.errors"], "made": 200, "stats": 200}


# --- agreement, function against function ---------------------------------------------------------


def _scaled(digits: st.SearchStrategy[int], exponents: st.SearchStrategy[int]) -> Any:
    return st.builds(lambda d, e: Decimal(d).scaleb(e), digits, exponents)


# Few digits and round margins/prices often: that is where ties (…5 at the 11th place)
# show whether both copies round half up.
_costs = st.one_of(
    _scaled(st.integers(0, 99), st.integers(-14, 0)),
    _scaled(st.integers(0, 10**9), st.integers(-20, 0)),
)
_margins = st.one_of(
    st.sampled_from([Decimal(m) for m in ("0", "2", "25", "50", "100", "150", "2.5")]),
    _scaled(st.integers(0, 10**6), st.integers(-4, 0)),
)
_prices = st.one_of(
    st.sampled_from([Decimal(p) for p in ("1", "2", "4", "8", "0.5", "0.001", "0.0025")]),
    _scaled(st.integers(1, 10**4), st.integers(-10, 2)),
)
_ids = st.text(alphabet="abcxyzABC019-_./ :é", max_size=40)
_secrets = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=48)


def test_the_vocabularies_are_the_same() -> None:
    assert rules.PROVIDER_NAMES == KNOWN_PROVIDERS  # order too: the 400 message lists them
    assert set(rules.RATE_TYPES) == {t.value for t in RateType}
    assert set(rules.CREDENTIAL_TYPES) == {t.value for t in CredentialType}


@given(_costs, _margins, _prices)
def test_margin_rate_agrees(cost: Decimal, margin: Decimal, price: Decimal) -> None:
    ours = margin_rate(cost, margin, price)
    assert rules.margin_rate(cost, margin, price) == ours
    assert rules.rate_text(ours) == plain(quantize(ours))


@given(_costs)
def test_stored_numbers_agree(value: Decimal) -> None:
    assert rules.decimal_text(value) == plain(value)
    assert rules.decimal_text(-value) == plain(-value)
    assert rules.rate_text(value) == plain(quantize(value))


@given(_ids)
def test_default_display_agrees(model: str) -> None:
    assert rules.default_model_display(model) == default_model_display(model)


_fields = st.sampled_from(["api_key", "access_key_id", "secret_access_key", "token"])


@given(_secrets, st.dictionaries(_fields, _secrets))
def test_masks_agree(secret: str, value: dict[str, str]) -> None:
    assert rules.mask_secret(secret) == mask_secret(secret)
    for kind in rules.CREDENTIAL_TYPES:
        assert rules.credential_display_text(kind, value) == credential_display_text(kind, value)


def test_known_cases_from_the_gateway_documentation() -> None:
    # domain.md's examples, so that the two copies cannot agree on something else
    assert [
        rules.default_model_display(m)
        for m in ("gpt-4o-mini", "openai/gpt-4.1", "dall-e-3",
                  "meta-llama/llama-3.1-8b-instruct", "text_embedding-3", "a/")
    ] == ["Gpt 4o Mini", "Gpt 4.1", "Dall E 3", "Llama 3.1 8b Instruct", "Text_embedding 3",
          "a/"]  # fmt: skip
    assert rules.mask_secret("sk-proj-abcdefghijklmnop1234") == "sk-p****************1234"
    assert rules.margin_rate(Decimal("0.0000025"), Decimal(25), Decimal("0.001")) == Decimal(
        "0.003125"
    )
    assert rules.margin_rate(Decimal("0.00000000005"), Decimal(0), Decimal(1)) == Decimal(
        "0.0000000001"
    )  # half up
    assert str(rules.margin_rate(Decimal("-0"), Decimal(2), Decimal(1))) == "0E-10"


# --- agreement, hubkit's rule against the running hub's answers -----------------------------------

_HUB_SETTINGS = settings(
    max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def api(hub: HubHandle) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=hub.url, headers={"Authorization": f"Bearer {hub.token}"}, timeout=30.0
    ) as client:
        yield client


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _fresh_provider(api: httpx.Client, hub: HubHandle) -> str:
    hub.reset()
    body = {"name": "openai", "displayName": "OpenAI", "baseUrl": "https://api.openai.com/v1"}
    return str(_ok(api.post(BASE, json=body))["id"])


# Realistic token prices (≤ 0.001 per token): a JSON number then carries every digit.
_token_costs = st.one_of(
    _scaled(st.integers(0, 99), st.integers(-11, -8)),
    _scaled(st.integers(0, 99_999), st.integers(-14, -8)),
)


@pytest.mark.hub_needs("disposable", "margin mode rewrites every rate of the hub at once")
@_HUB_SETTINGS
@given(
    costs=st.lists(st.tuples(_token_costs, _token_costs), min_size=1, max_size=8),
    margin=st.one_of(
        st.sampled_from([Decimal(0), Decimal(25)]), _scaled(st.integers(0, 5000), st.just(-1))
    ),
    price=st.sampled_from(["1", "2", "0.001", "0.0025", "0.3"]),
)
def test_margin_mode_bulk_update_agrees_with_margin_rate(
    api: httpx.Client, hub: HubHandle, costs: list[tuple[Decimal, Decimal]], margin: Decimal,
    price: str,
) -> None:  # fmt: skip
    pid = _fresh_provider(api, hub)
    for i, (cin, cout) in enumerate(costs):
        body = {"model": f"m-{i}", "type": "chatCompletion", "inputRate": "1", "outputRate": "1",
                "unitCosts": {"input": plain(cin), "output": plain(cout)}}  # fmt: skip
        _ok(api.post(f"{BASE}/{pid}/model-rates", json=body))
    answer = _ok(api.post(f"{BASE}/bulk-rate-update",
                          json={"profitMargin": plain(margin), "creditPrice": price}))  # fmt: skip
    eligible = {f"m-{i}": c for i, c in enumerate(costs) if c[0] > 0 or c[1] > 0}
    assert answer["updated"] == len(eligible)
    stored = {r["model"]: r for r in _ok(api.get(f"{BASE}/{pid}/model-rates"))}
    for item in answer["summary"]:
        cin, cout = eligible[item["model"]]
        want_in, want_out = margin_rate(cin, margin, price), margin_rate(cout, margin, price)
        # the summary's JSON numbers and the stored strings, both as hubkit computes them
        assert quantize(Decimal(str(item["newInputRate"]))) == want_in
        assert quantize(Decimal(str(item["newOutputRate"]))) == want_out
        row = stored[item["model"]]
        assert (row["inputRate"], row["outputRate"]) == (plain(want_in), plain(want_out))


@pytest.mark.hub_needs("disposable", "wipes the hub before each generated example")
@_HUB_SETTINGS
@given(models=st.lists(_ids.filter(lambda m: 0 < len(m) <= 100), min_size=1, max_size=6,
                       unique=True))  # fmt: skip
def test_a_blank_model_display_is_what_hubkit_derives(
    api: httpx.Client, hub: HubHandle, models: list[str]
) -> None:
    pid = _fresh_provider(api, hub)
    for model in models:
        body = {"model": model, "modelDisplay": "", "type": "embedding", "inputRate": 0,
                "outputRate": 0}  # fmt: skip
        created = _ok(api.post(f"{BASE}/{pid}/model-rates", json=body))
        assert created["modelDisplay"] == default_model_display(model), model


_keys = st.text(alphabet="abcdefskXYZ0123456789-_", min_size=1, max_size=40).filter(
    lambda k: not k.startswith("sk-bad")  # the local hub's live test refuses those
)


@pytest.mark.hub_needs("fake_keys", "generates them")
@_HUB_SETTINGS
@given(keys=st.lists(_keys, min_size=1, max_size=4, unique=True), pair_secret=_keys)
def test_credential_masks_are_what_hubkit_shows(
    api: httpx.Client, hub: HubHandle, keys: list[str], pair_secret: str
) -> None:
    pid = _fresh_provider(api, hub)
    for i, key in enumerate(keys):
        made = _ok(api.post(f"{BASE}/{pid}/credentials", json={"name": f"k{i}", "value": key}))
        assert made["displayText"] == credential_display_text("api_key", {"api_key": key})
        assert made["maskedValue"] == {"api_key": mask_secret(key)}
    pair = {"access_key_id": "AKIAEXAMPLE", "secret_access_key": pair_secret}
    body = {"name": "pair", "value": pair, "credentialType": "access_key_pair"}
    made = _ok(api.post(f"{BASE}/{pid}/credentials", json=body))
    assert made["displayText"] == credential_display_text("access_key_pair", pair)
