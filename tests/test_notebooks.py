"""Every workbench notebook: committed clean, and run top to bottom against a temp store.

The runs use nbclient with the ``python3`` kernel (this venv's Python) and cwd =
``notebooks/``, as JupyterLab would. Each executed notebook (outputs *and* the widget state
nbclient stores in its metadata) is then scanned for secrets.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from hubkit.store import Store
from hubkit.widgets import seed_sample_data

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
API_KEY = "sk-proj-notebookSECRET-0123456789abcdef"
#: served by Voilà to finance, without code
WEB_APPS = ("04-margin-scenarios.ipynb", "07-finance-month.ipynb")


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_the_workbench_notebooks_exist() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {
        "01-providers-and-credentials.ipynb",
        "02-model-rates.ipynb",
        "03-bulk-rate-update.ipynb",
        "04-margin-scenarios.ipynb",
        "05-hub-sync.ipynb",
        "07-finance-month.ipynb",
        "06-proposals.ipynb",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_is_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown"
    if path.name in WEB_APPS:
        # Voilà shows markdown to finance: the settings it reads are in notebooks/README.md
        shown = " ".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert not any(t in shown for t in ("HUBKIT_", "AIGNE_HUB_", "Store.open", "make "))
        assert "AIGNE_HUB_CREDIT_BASED_BILLING_ENABLED" in (NOTEBOOKS_DIR / "README.md").read_text()
    else:
        assert "HUBKIT_" in nb.cells[0].source  # which settings it reads, said up front
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: strip outputs before committing"
            assert cell.execution_count is None
    assert "widgets" not in nb.metadata, f"{path.name}: saved widget state must not be committed"


@pytest.fixture(autouse=True)
def _private_jupyter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user-level kernelspec or IPython startup file can change what the kernel runs."""
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        folder = tmp_path / var.lower()
        folder.mkdir()
        monkeypatch.setenv(var, str(folder))


def _execute(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    client.execute()
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_top_to_bottom_and_leaks_no_secret(
    path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBKIT_DATABASE_URL", sqlite_url)  # the kernel inherits the env
    with Store.open(sqlite_url) as store:
        seed_sample_data(store)
        store.add_credential("openai", "main", API_KEY)
    key_file = Path(os.environ["HUBKIT_DATA_DIR"]) / "secret.key"
    fernet_keys = [
        ln.strip() for ln in key_file.read_text().splitlines() if ln.strip() and ln[0] != "#"
    ]
    assert fernet_keys

    nb = _execute(path)

    text = json.dumps(nb)
    if any(c.cell_type == "code" and "app" in c.metadata.get("tags", []) for c in nb.cells):
        assert "application/vnd.jupyter.widget-state+json" in nb.metadata.get("widgets", {})
    for secret in (API_KEY, *fernet_keys):
        assert secret not in text, f"{path.name} leaked a secret into its outputs"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"database:  {sqlite_url}" in printed
    assert f"python:    {sys.executable}" in printed  # the kernel is this venv's Python


def test_bulk_notebook_seeds_a_fresh_store_and_shows_the_app(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBKIT_DATABASE_URL", sqlite_url)
    nb = _execute(NOTEBOOKS_DIR / "03-bulk-rate-update.ipynb")

    app_cell = next(c for c in nb.cells if "app" in c.metadata.get("tags", []))
    views = [
        o
        for o in app_cell.outputs
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(views) == 1
    with Store.open(sqlite_url) as store:
        assert len(store.list_rates()) > 100
        assert {p.name for p in store.list_providers()} >= {"openai", "anthropic"}


def _git(*args: str, stdin: bytes | None = None) -> str:
    import subprocess

    done = subprocess.run(
        ["git", "-C", str(NOTEBOOKS_DIR.parent), *args],
        input=stdin, capture_output=True, check=True,
    )  # fmt: skip
    return done.stdout.decode().strip()


@pytest.mark.parametrize("notebook", NOTEBOOKS + sorted((NOTEBOOKS_DIR / "jobs").glob("*.ipynb")),
                         ids=lambda p: p.stem)  # fmt: skip
def test_a_notebook_run_in_jupyterlab_is_committed_without_its_outputs(
    notebook: Path, tmp_path: Path
) -> None:
    """`make venv` sets up the nbstripout filter that .gitattributes names: whatever a run in
    JupyterLab autosaves, git stores the notebook as committed (the same blob)."""
    if not (NOTEBOOKS_DIR.parent / ".git").exists():
        pytest.skip("not a git checkout: the filter is git's")
    rel = str(notebook.relative_to(NOTEBOOKS_DIR.parent))
    assert _git("check-attr", "filter", "--", rel).endswith(": nbstripout")
    assert "nbstripout" in _git("config", "filter.nbstripout.clean"), "run `make venv`"
    nb = nbformat.read(notebook, as_version=4)
    for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = n + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran {n}\n")]
    dirty = tmp_path / notebook.name
    nbformat.write(nb, dirty)
    assert dirty.read_bytes() != notebook.read_bytes()
    stored_dirty = _git("hash-object", f"--path={rel}", str(dirty))
    stored_clean = _git("hash-object", f"--path={rel}", str(notebook))
    assert stored_dirty == stored_clean
    assert stored_clean == _git("hash-object", "--no-filters", str(notebook)), (
        f"{rel} is committed with outputs or ids the filter would change"
    )
