"""The local hub's stored keys: Fernet-sealed, key file apart, files 0600."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

from hubkit.hub import HubClient, start_local_hub

KEY_A = "sk-known-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
KEY_B = "sk-other-LEAKCHECK-9f8e7d6c5b4a39281706"


def _sealed(state: Path) -> list[str]:
    data = json.loads(state.read_text())
    return [v for c in data["credentials"] for v in c["_sealed"].values()]


def test_one_known_key_and_the_state_file_reveal_no_other_key(tmp_path: Path) -> None:
    state = tmp_path / "hub.json"
    old = os.umask(0o022)
    try:
        with start_local_hub(state) as local, HubClient(local.url, local.token) as client:
            provider = client.create_provider(
                "openai", "OpenAI", base_url="https://api.openai.com/v1"
            )
            client.create_credential(provider.id, "a", KEY_A)
            client.create_credential(provider.id, "b", KEY_B)
    finally:
        os.umask(old)
    text = state.read_text()
    assert KEY_A not in text and KEY_B not in text
    sealed_a, sealed_b = _sealed(state)
    # the XOR attack: ciphertext ⊕ known plaintext = pad; pad ⊕ other ciphertext = other key
    raw_a, raw_b = (
        base64.urlsafe_b64decode(v.split(":", 1)[1] + "==") for v in (sealed_a, sealed_b)
    )
    pad = bytes(c ^ p for c, p in zip(raw_a, KEY_A.encode(), strict=False))
    guess = bytes(c ^ p for c, p in zip(raw_b, pad, strict=False))
    assert KEY_B.encode()[:16] not in guess
    for path in (state, state.with_name("hub.json.key")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert KEY_B not in state.with_name("hub.json.key").read_text()


def test_sealed_keys_survive_a_restart_with_a_new_token(tmp_path: Path) -> None:
    state = tmp_path / "hub.json"
    with start_local_hub(state) as local, HubClient(local.url, local.token) as client:
        provider = client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
        client.create_credential(provider.id, "b", KEY_B)
    with start_local_hub(state) as again, HubClient(again.url, again.token) as client:
        ((cred,),) = [p.credentials for p in client.list_providers()]
        assert cred.display_text.startswith("sk-") and KEY_B not in cred.display_text


def test_a_version_1_state_file_is_resealed(tmp_path: Path) -> None:
    from hubkit.localhub.state import LocalHubState

    token = "local-test-token"
    pad = hashlib.sha256(b"hubkit-local-hub:" + token.encode()).digest()
    xored = bytes(a ^ b for a, b in zip(KEY_B.encode(), pad * 2, strict=False))
    cred = {"id": "1", "providerId": "p", "name": "b", "credentialType": "api_key",
            "_sealed": {"api_key": "enc:" + base64.b64encode(xored).decode()}}  # fmt: skip
    state = tmp_path / "hub.json"
    state.write_text(json.dumps({"version": 1, "nextId": 2, "seq": 0, "providers": [],
                                 "credentials": [cred], "rates": []}))  # fmt: skip
    hub = LocalHubState(state, token)
    assert hub.unseal(hub.credentials[0]["_sealed"]) == {"api_key": KEY_B}
    hub.write_now()
    assert json.loads(state.read_text())["version"] == 2
    assert all(v.startswith("fernet:") for v in _sealed(state))


def test_an_in_memory_hub_reads_its_file_once_and_never_writes_it(tmp_path: Path) -> None:
    state = tmp_path / "hub.json"
    with start_local_hub(state) as hub, HubClient(hub.url, hub.token) as client:
        client.create_provider("openai", "OpenAI", base_url="https://api.openai.com/v1")
    seeded = state.read_bytes()
    with start_local_hub(state, in_memory=True) as hub, HubClient(hub.url, hub.token) as client:
        assert [p.name for p in client.list_providers()] == ["openai"]  # read at start
        client.create_provider("xai", "xAI", base_url="https://api.x.ai/v1")
        assert [p.name for p in client.list_providers()] == ["openai", "xai"]  # kept in memory
    assert state.read_bytes() == seeded  # and never written
