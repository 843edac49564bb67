"""Fuzz the CLI's numeric options and the job's parameters (issue 16 B).

Hostile text ('nan', 'inf', '-0', '1e400', '1e-400', huge, negative, garbage) must end in
a documented exit code, never a traceback, and a refusal must write nothing.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from _jobs import seed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubkit.cli import EXIT_CODES, main
from hubkit.decimals import QUANTUM
from hubkit.errors import ValidationError
from hubkit.jobs import bulk_rate_update
from hubkit.jobs.runner import cli_value
from hubkit.store import Store

DOCUMENTED = {code for _, code in EXIT_CODES} | {0}
HOSTILE = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-0", "-0.0", "0", "1e400",
           "1e-400", "-1e400", "1E+999999999", "9" * 80, "0." + "0" * 60 + "1", "-1", "-0.5",
           "1,5", "0x10", "1_000", " 25 ", "", "25%", "1e", "٣", "None", "true", "1/3",
           "0.001", "25", "1000000", "0.000001", "10000", "sNaN"]  # fmt: skip
numbers = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=12),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def url(sqlite_url: str) -> Iterator[str]:
    with Store.open(sqlite_url) as store:
        seed(store)
    yield sqlite_url


def _state(url: str) -> dict[str, Any]:
    """Every row the store holds, as the database has it (bypassing hubkit)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {
                table: sorted(map(tuple, conn.execute(sa.text(f"SELECT * FROM {table}"))), key=str)
                for table in ("model_rates", "rate_history", "operator_settings")
            }
    finally:
        engine.dispose()


def _run(url: str, *argv: str) -> int:
    try:
        return main(["--database-url", url, *argv])
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code or 0)


def _check(url: str, *argv: str) -> int:
    before = _state(url)
    code = _run(url, *argv)  # any exception but HubkitError escapes main(): a traceback
    assert code in DOCUMENTED, (argv, code)
    if code != 0:
        assert _state(url) == before, f"{argv} refused with {code} but wrote"
    return code


@FUZZ
@given(margin=numbers, price=numbers)
def test_bulk_update_options(url: str, margin: str, price: str) -> None:
    _check(url, "rates", "bulk-update", f"--margin={margin}", f"--credit-price={price}",
           "--apply", "--reason=fuzz")  # fmt: skip


@FUZZ
@given(price=numbers, margin=numbers)
def test_settings_options(url: str, price: str, margin: str) -> None:
    code = _check(url, "settings", f"--credit-price={price}", f"--target-margin={margin}")
    if code == 0:  # what was accepted lists without a crash
        assert _run(url, "rates", "list") == 0


@FUZZ
@given(input_rate=numbers, output_rate=numbers, cost=numbers)
def test_rate_set_options(url: str, input_rate: str, output_rate: str, cost: str) -> None:
    code = _check(url, "rates", "set", "openai", "fuzz-model", "chatCompletion",
                  f"--input-rate={input_rate}", f"--output-rate={output_rate}",
                  f"--unit-cost-input={cost}")  # fmt: skip
    if code == 0:
        with Store.open(url) as store:
            rate = store.find_rate("openai", "fuzz-model", "chatCompletion")
        assert not rate.input_rate.is_signed() and not rate.output_rate.is_signed()
        assert rate.input_rate == 0 or rate.input_rate >= QUANTUM


@FUZZ
@given(margin=numbers, price=numbers, max_change=numbers)
def test_job_parameters(url: str, margin: str, price: str, max_change: str) -> None:
    # as `job run -p NAME VALUE` reads them, through the job's own entry point
    before = _state(url)
    with Store.open(url) as store:
        try:
            result = bulk_rate_update(
                store=store, profit_margin=cli_value(margin), credit_price=cli_value(price),
                max_change_pct=cli_value(max_change), dry_run=False, reason="fuzz",
            )  # fmt: skip
        except ValidationError:
            assert _state(url) == before
            return
    if result.exit_code != 0:
        assert _state(url) == before


@pytest.mark.parametrize("value", ["1e400", "nan", "-0", "garbage"])
def test_no_traceback_from_the_real_command(url: str, value: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hubkit", "--database-url", url, "rates", "bulk-update",
         f"--credit-price={value}", "--apply"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode in DOCUMENTED and "Traceback" not in proc.stderr, proc.stderr
