"""The main job on the embedded default: what `make demo` runs.

Initialises the SQLite store, adds the providers of the shipped sample catalog, imports
their unit costs (creating rates priced at the stored target margin), then runs the
bulk-rate-update job notebook in dry-run mode through papermill (as a scheduled run
would) and points at its report in ``reports/<UTC time>-bulk-rate-update/``.
Running it again changes nothing (the import finds every rate up to date).
"""

from __future__ import annotations

from pathlib import Path

from hubkit.catalog import load_catalog, shipped_catalog_path
from hubkit.domain import ProviderSpec
from hubkit.errors import NotFoundError
from hubkit.jobs import run_job
from hubkit.pricing import SkipReason
from hubkit.store import Store

#: Public API endpoints of the providers in the sample catalog (from each vendor's docs).
DEMO_PROVIDERS: dict[str, tuple[str, str | None, str | None]] = {
    "openai": ("OpenAI", "https://api.openai.com/v1", None),
    "anthropic": ("Anthropic", "https://api.anthropic.com", None),
    "google": ("Google Gemini", "https://generativelanguage.googleapis.com", None),
    "deepseek": ("DeepSeek", "https://api.deepseek.com", None),
    "xai": ("xAI", "https://api.x.ai/v1", None),
    "bedrock": ("AWS Bedrock", None, "us-east-1"),
}

DEMO_MARGIN = "25"


def ensure_demo_providers(store: Store) -> list[str]:
    added = []
    for name, (display, url, region) in DEMO_PROVIDERS.items():
        try:
            store.get_provider(name)
        except NotFoundError:
            store.add_provider(ProviderSpec.create(name, display, base_url=url, region=region))
            added.append(name)
    return added


def run_demo() -> int:
    store = Store.open()
    database = store.engine.url.render_as_string(hide_password=True)
    try:
        ensure_demo_providers(store)
        catalog = load_catalog(shipped_catalog_path())
        imported = store.import_catalog(
            catalog, create_missing=True, reason="demo: import shipped sample catalog"
        )
    finally:
        store.close()
    # The preview is the scheduled job itself, in dry-run mode: what cron would run.
    outcome = run_job(
        "bulk-rate-update",
        {"profit_margin": DEMO_MARGIN, "dry_run": True, "reason": "demo"},
    )
    counts = outcome.summary.get("counts") or {}

    print(f"store:    {database}")
    print(f"catalog:  {len(catalog.entries)} priced models imported "
          f"({imported.created} created, {imported.unchanged} already up to date)")  # fmt: skip
    report = (
        f"report:   {_relative(outcome.run_dir)}/ ({outcome.job}.html, changes.csv, summary.json)"
    )
    if outcome.exit_code != 0:
        print(f"preview:  the dry-run job ended {outcome.status.value}: {outcome.reason}")
        print(report)
        return outcome.exit_code
    print(
        f"preview:  a {DEMO_MARGIN}% margin bulk update would change "
        f"{counts.get('changed', 0)} rates ({counts.get('skipped', 0)} skipped, "
        f"{SkipReason.summary()})"
    )
    print("          dry run — nothing was written")
    print(report)
    return 0


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
