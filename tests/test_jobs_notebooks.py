"""The job notebooks, really executed by papermill (kernel python3), on SQLite and PostgreSQL.

Each papermill run costs a few seconds (kernel start + imports), so the flows are chained:
one test per backend walks dry run → apply → idempotent re-run → guardrail → injected
failure → revert → refused revert, checking the store and the report after each step.
PostgreSQL runs that flow and the lock test; the rest (whose logic does not depend on the
backend, and is covered on both in test_jobs_logic/test_jobs_lock) run on SQLite only.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import nbformat
import papermill
import pytest
from _jobs import API_KEY, files_under, read_text, seed, snapshot
from papermill.exceptions import PapermillExecutionError

from hubkit.cli import main as cli_main
from hubkit.config import get_settings
from hubkit.jobs import JOBS, JobStatus, Lease, run_job
from hubkit.jobs.params import APPLY_DUE_DEFAULTS, BULK_DEFAULTS, FINANCE_DEFAULTS, SYNC_DEFAULTS
from hubkit.jobs.runs import get_run
from hubkit.store import Store

pytestmark = pytest.mark.store("sqlite", "postgres", seed=seed, url_in_env=True)

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = {name: spec.path for name, spec in JOBS.items()}
DEFAULTS = {
    "bulk-rate-update": BULK_DEFAULTS,
    "price-catalog-sync": SYNC_DEFAULTS,
    "finance-month": FINANCE_DEFAULTS,
    "apply-due-proposals": APPLY_DUE_DEFAULTS,
}
HUB_TOKEN = "hubtok-JOBLEAKCHECK-0123456789abcdef"


def _summary(outcome_dir: Path) -> dict:
    return json.loads((outcome_dir / "summary.json").read_text())


# ---- the notebooks as files ---------------------------------------------------------------
@pytest.mark.parametrize("job", sorted(NOTEBOOKS))
def test_notebook_is_committed_clean_with_a_python3_kernel(job: str) -> None:
    nb = nbformat.read(NOTEBOOKS[job], as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("job", sorted(NOTEBOOKS))
def test_papermill_lists_every_parameter_with_its_default_and_help(job: str) -> None:
    found = papermill.inspect_notebook(str(NOTEBOOKS[job]))
    defaults = DEFAULTS[job]
    assert list(found) and set(found) == set(defaults)
    for name, info in found.items():
        assert ast.literal_eval(info["default"]) == defaults[name], name
        assert len(info["help"]) > 20, f"{name}: papermill --help-notebook shows no help"
        assert info["inferred_type_name"] in ("str", "bool", "float"), name


@pytest.mark.parametrize("job", sorted(NOTEBOOKS))
def test_no_parameter_can_carry_a_secret(job: str) -> None:
    names = set(papermill.inspect_notebook(str(NOTEBOOKS[job])))
    assert not {n for n in names if any(w in n for w in ("url", "token", "key", "password"))}


# ---- plain papermill ----------------------------------------------------------------------
def test_a_bad_value_fails_in_the_first_cell_after_the_parameters(tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"
    with pytest.raises(PapermillExecutionError) as info:
        papermill.execute_notebook(
            str(NOTEBOOKS["bulk-rate-update"]), str(out), parameters={"credit_price": "0"},
            kernel_name="python3", progress_bar=False,
        )  # fmt: skip
    assert info.value.ename == "ValidationError"
    assert "parameter credit_price='0': creditPrice must be > 0" in info.value.evalue
    nb = nbformat.read(out, as_version=4)
    params_at = next(i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.tags)
    failed = [c for c in nb.cells if c.get("outputs") and c.outputs[-1].output_type == "error"]
    first_code_after = next(
        c for c in nb.cells[params_at + 1 :] if c.cell_type == "code"
    )  # fmt: skip
    assert failed == [first_code_after] and "validate" in first_code_after.metadata.tags


def test_plain_papermill_writes_the_run_folder_itself(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS["bulk-rate-update"]), str(out), parameters={"profit_margin": 25},
        kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    (folder,) = [p for p in get_settings().reports_dir.iterdir() if p.is_dir()]
    assert folder.name.endswith("Z-bulk-rate-update")
    summary = _summary(folder)
    assert summary["status"] == "dry_run" and summary["run_id"] == folder.name
    assert {"summary.json", "changes.csv", "figures/change_pct.html"} <= set(summary["files"])
    assert (get_settings().reports_dir / "runs.csv").exists()
    assert out.exists()  # the executed notebook goes where papermill's caller said


# ---- the runner, end to end ---------------------------------------------------------------
def test_bulk_update_flow(store: Store, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    before = snapshot(store)
    # dry run: a report, no change
    dry = run_job("bulk-rate-update", {"profit_margin": "25"})
    assert dry.status is JobStatus.DRY_RUN and dry.exit_code == 0, dry.reason
    assert snapshot(store) == before
    names = {p.name for p in dry.run_dir.iterdir()}
    assert {"bulk-rate-update.ipynb", "bulk-rate-update.html", "changes.csv",
            "summary.json", "figures"} <= names  # fmt: skip
    assert "dry run" in read_text(dry.run_dir / "bulk-rate-update.html")
    assert dry.summary["job_run_id"] == dry.run_id and dry.summary["exit_code"] == 0

    # apply: one transaction, history rows carry the run id
    applied = run_job("bulk-rate-update", {"profit_margin": "25", "dry_run": False})
    assert applied.status is JobStatus.APPLIED, applied.reason
    assert len(store.history(job_run_id=applied.run_id)) == 3
    assert get_run(store, applied.run_id).status is JobStatus.APPLIED
    after_apply = snapshot(store)
    assert after_apply != before

    # the same run again: nothing to change, and it says so
    again = run_job("bulk-rate-update", {"profit_margin": "25", "dry_run": False})
    assert again.status is JobStatus.UNCHANGED and again.exit_code == 0
    assert again.reason.startswith("nothing to change")
    assert snapshot(store) == after_apply

    # a guardrail trip: non-zero, nothing changed, every refused rate listed
    tripped = run_job("bulk-rate-update", {"profit_margin": "100", "dry_run": False})
    assert tripped.exit_code == 8 and tripped.status is JobStatus.GUARDRAIL
    assert snapshot(store) == after_apply
    assert len(tripped.summary["refused"]) == 3
    assert read_text(tripped.run_dir / "changes.csv").count(",True,") >= 3

    # a failure injected half-way through the write: all rolled back
    monkeypatch.setenv("HUBKIT_TEST_FAIL_AFTER_ROWS", "1")
    failed = run_job("bulk-rate-update", {"profit_margin": "30", "dry_run": False})
    monkeypatch.delenv("HUBKIT_TEST_FAIL_AFTER_ROWS")
    assert failed.status is JobStatus.FAILED and failed.exit_code == 1
    assert "injected failure" in failed.reason
    assert snapshot(store) == after_apply
    assert get_run(store, failed.run_id).status is JobStatus.FAILED

    # revert the applied run as a unit
    capsys.readouterr()
    assert cli_main(["job", "revert", applied.run_id]) == 0
    assert "3 rates put back" in capsys.readouterr().out
    assert {k: v[:2] for k, v in snapshot(store).items()} == {k: v[:2] for k, v in before.items()}
    assert get_run(store, applied.run_id).summary["reverted"]["history_rows"] == 3

    # a run whose rates changed since cannot be reverted, unless forced
    second = run_job("bulk-rate-update", {"profit_margin": "25", "dry_run": False})
    gpt = store.find_rate("openai", "gpt-4o", "chatCompletion")
    store.update_rate(gpt.id, gpt.version, input_rate="0.004", reason="operator edit")
    assert cli_main(["job", "revert", second.run_id]) == 4
    assert "changed again since" in capsys.readouterr().err
    assert store.find_rate("openai", "gpt-4o", "chatCompletion").input_rate == Decimal("0.004")
    assert cli_main(["job", "revert", second.run_id, "--force"]) == 0

    # the index lists every run, newest first
    index = read_text(get_settings().reports_dir / "runs.csv")
    for outcome in (dry, applied, again, tripped, failed, second):
        assert outcome.run_id in index
    assert cli_main(["job", "list"]) == 0
    assert applied.run_id in capsys.readouterr().out


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubkit", *args],
        capture_output=True, text=True, timeout=300, cwd=REPO, env=env,
    )  # fmt: skip


@pytest.mark.soak  # the job lock, across processes: `make soak` runs it under load
def test_a_second_run_exits_75_at_once_and_takes_over_a_dead_lease(store: Store) -> None:
    holder = Lease(store, run_id="still-running")
    holder.acquire()
    busy = _cli("job", "run", "bulk-rate-update", "-p", "profit_margin", "25")
    assert busy.returncode == 75, busy.stderr
    assert "another run holds the lock since" in busy.stderr
    assert "(run still-running)" in busy.stderr
    report = Path(busy.stdout.split("report:")[1].split()[0].rstrip("/"))
    run_dir = report if report.is_absolute() else REPO / report
    assert _summary(run_dir)["status"] == "lock_held"
    # it did not queue: no kernel was started, no notebook executed
    assert not (run_dir / "bulk-rate-update.ipynb").exists()

    # the holder dies without releasing: once its lease expires, the next run takes over
    from test_jobs_lock import expire

    expire(store)
    outcome = run_job("bulk-rate-update", {"profit_margin": "25"})
    assert outcome.status is JobStatus.DRY_RUN, outcome.reason
    assert "still-running" in outcome.summary["lock_taken_over_from"]
    assert Lease(store).current() is None  # released at the end


@pytest.mark.soak
@pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)
def test_wait_queues_behind_the_holder(store: Store) -> None:
    holder = Lease(store, run_id="long-job")
    holder.acquire()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubkit", "job", "run", "bulk-rate-update", "--wait",
         "-p", "profit_margin", "25"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("waiting for the lock: held by ") and "long-job" in line
        holder.release()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "status:   dry_run" in out


@pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)
def test_no_file_a_run_writes_holds_a_secret(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.add_credential("openai", "prod", API_KEY)
    monkeypatch.setenv("HUBKIT_HUB_TOKEN", HUB_TOKEN)
    secret_key = get_settings().key_file.read_text().strip()
    outcome = run_job("bulk-rate-update", {"profit_margin": "25", "dry_run": False})
    assert outcome.status is JobStatus.APPLIED, outcome.reason
    files = files_under(get_settings().reports_dir)
    assert len(files) >= 6
    for path in files:
        text = read_text(path)
        for secret in (API_KEY, HUB_TOKEN, secret_key, API_KEY[-12:]):
            assert secret not in text, f"{path.name} leaks a secret"


@pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)
def test_catalog_sync_runs_through_papermill(store: Store, tmp_path: Path) -> None:
    catalog = tmp_path / "prices.csv"
    catalog.write_text(
        "provider,model,type,input_cost,output_cost\n"
        "anthropic,claude-3-haiku,chatCompletion,0.0000002,0.000001\n"
    )
    outcome = run_job("price-catalog-sync", {"catalog_path": str(catalog), "dry_run": False})
    assert outcome.status is JobStatus.APPLIED, outcome.reason
    (entry,) = store.history(job_run_id=outcome.run_id)
    assert entry.change_type == "source_drift" and entry.model == "claude-3-haiku"
    assert (outcome.run_dir / "price-catalog-sync.html").exists()
    again = run_job("price-catalog-sync", {"catalog_path": str(catalog), "dry_run": False})
    assert again.status is JobStatus.UNCHANGED


@pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)
def test_the_cli_prints_where_the_report_is(store: Store) -> None:
    env = {**os.environ}
    done = _cli("job", "run", "bulk-rate-update", "-p", "profit_margin", "25", env=env)
    assert done.returncode == 0, done.stderr
    assert "status:   dry_run (exit 0)" in done.stdout and "report:" in done.stdout
    assert done.stderr == ""  # nothing for cron to mail on success
    bad = _cli("job", "run", "bulk-rate-update", "-p", "credit_price", "0", env=env)
    assert bad.returncode == 2
    assert "error: invalid: parameter credit_price='0'" in bad.stderr


def test_the_demo_previews_through_the_dry_run_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "dry run — nothing was written" in out
    report = next(line for line in out.splitlines() if line.startswith("report:"))
    (folder,) = get_settings().reports_dir.glob("*-bulk-rate-update")
    assert folder.name in report and "bulk-rate-update.html" in report
    assert _summary(folder)["status"] == "dry_run"
    assert {"bulk-rate-update.html", "changes.csv", "summary.json"} <= {
        p.name for p in folder.iterdir()
    }
