"""Every file reader turns a malformed file into a clear error naming the file (issue 16 B).

Before: ``EOFError``/``RecursionError``/``UnicodeDecodeError``/``IsADirectoryError`` and
pandas' ``ParserError``/``EmptyDataError`` escaped with a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubkit.catalog import load_catalog
from hubkit.config import Settings
from hubkit.crypto import Keyring
from hubkit.errors import CredentialError, HubkitError, ValidationError
from hubkit.hub.plan import Plan
from hubkit.usage import read_usage
from hubkit.usage.gateway import read_hub_database, read_hub_export

CASES: dict[str, bytes | None] = {
    "empty": b"",
    "truncated": b'{"gpt-4o": {"mode": "chat", "input_cost_per_token": 1',
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "binary": bytes(range(256)) * 8,
    "latin1": "provider,model\ncaf\xe9,x\n".encode("latin-1"),
    "wrong_top": b"[1, 2, 3]",
    "bad_csv": b'a,b\n"1,2\n3,4,5,6\n',
    "huge_field": b"a\n" + b"x" * 200_000 + b"\n",
    "directory": None,
    "missing": None,
}

READERS: dict[str, tuple[Callable[[Path], Any], str]] = {
    "catalog.json": (load_catalog, ".json"),
    "catalog.csv": (load_catalog, ".csv"),
    "usage.csv": (read_usage, ".csv"),
    "usage.parquet": (read_usage, ".parquet"),
    "hub-export": (read_hub_export, ".csv"),
    "hub-plan.json": (Plan.load, ".json"),
    "hub-plan.csv": (Plan.load, ".csv"),
}


def _make(tmp_path: Path, case: str, suffix: str) -> Path:
    path = tmp_path / f"{case}{suffix}"
    data = CASES[case]
    if case == "directory":
        path.mkdir()
    elif data is not None:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_malformed_file_is_a_validation_error_naming_it(
    tmp_path: Path, reader: str, case: str
) -> None:
    read, suffix = READERS[reader]
    path = _make(tmp_path, case, suffix)
    with pytest.raises(ValidationError) as info:
        read(path)
    assert path.name in str(info.value)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("directory", "is a directory"),
        ("binary", "not UTF-8"),
        ("deep", "nested too deeply"),
        ("empty", "empty"),
        ("bad_csv", "well-formed CSV"),
    ],
)
def test_the_message_says_what_is_wrong(tmp_path: Path, case: str, expected: str) -> None:
    reader = {"bad_csv": "usage.csv", "empty": "usage.csv"}.get(case, "catalog.json")
    read, suffix = READERS[reader]
    with pytest.raises(ValidationError, match=expected):
        read(_make(tmp_path, case, suffix))


@pytest.mark.parametrize("case", ["truncated", "binary", "wrong_top", "bad_csv"])
def test_a_file_that_is_not_a_sqlite_database_is_refused(tmp_path: Path, case: str) -> None:
    path = _make(tmp_path, case, ".sqlite")
    with pytest.raises(ValidationError, match="not a readable SQLite database"):
        read_hub_database(path)


@pytest.mark.parametrize("case", ["binary", "latin1", "directory"])
def test_an_unreadable_key_file_is_a_credential_error(tmp_path: Path, case: str) -> None:
    path = _make(tmp_path, case, ".key")
    with pytest.raises(CredentialError, match=path.name):
        Keyring.load(Settings.from_env({"HUBKIT_KEY_FILE": str(path)}))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=200).map(str.encode)),
       reader=st.sampled_from(sorted(READERS)))  # fmt: skip
def test_random_bytes_never_escape_as_raw_errors(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, reader: str
) -> None:
    read, suffix = READERS[reader]
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(data)
    try:
        read(path)
    except HubkitError:
        pass  # refused clearly; a raw Python/pandas error fails the test


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values, reader=st.sampled_from(["catalog.json", "hub-plan.json"]))
def test_random_json_never_escapes_as_raw_errors(
    tmp_path_factory: pytest.TempPathFactory, value: Any, reader: str
) -> None:
    import json

    read, suffix = READERS[reader]
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_text(json.dumps(value))
    try:
        read(path)
    except HubkitError:
        pass
