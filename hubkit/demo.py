"""The main job on the embedded default: what `make demo` runs.

Initialises the SQLite store, adds the providers of the shipped sample catalog, imports
their unit costs (creating rates priced at the stored target margin), then previews a
margin bulk update without writing it and leaves a report in ``reports/``.
Running it again changes nothing (the import finds every rate up to date).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hubkit.catalog import load_catalog, shipped_catalog_path
from hubkit.config import get_settings
from hubkit.decimals import plain
from hubkit.domain import ProviderSpec
from hubkit.errors import NotFoundError
from hubkit.frames import preview_frame, skipped_frame, to_csv
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
    settings = get_settings()
    store = Store.open()
    added = ensure_demo_providers(store)
    catalog = load_catalog(shipped_catalog_path())
    imported = store.import_catalog(
        catalog, create_missing=True, reason="demo: import shipped sample catalog"
    )
    ops = store.get_operator_settings()
    preview = store.preview_bulk_update(DEMO_MARGIN, ops.credit_price)

    run_dir = settings.reports_dir / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-demo"
    run_dir.mkdir(parents=True, exist_ok=True)
    to_csv(preview_frame(preview), run_dir / "changes.csv")
    to_csv(skipped_frame(preview), run_dir / "skipped.csv")
    summary = {
        "job": "demo",
        "dry_run": True,
        "database": store.engine.url.render_as_string(hide_password=True),
        "providers_added": added,
        "catalog": {"entries": len(catalog.entries), "unmapped": len(catalog.unmapped)},
        "import": {"created": imported.created, "updated": imported.updated,
                   "unchanged": imported.unchanged},
        "bulk_update_preview": {
            "profit_margin_pct": DEMO_MARGIN,
            "credit_price": plain(ops.credit_price),
            "currency": ops.currency,
            "would_change": len(preview.changed),
            "unchanged": len(preview.unchanged),
            "skipped": len(preview.skipped),
        },
    }  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    store.close()

    print(f"store:    {summary['database']}")
    print(f"catalog:  {len(catalog.entries)} priced models imported "
          f"({imported.created} created, {imported.unchanged} already up to date)")  # fmt: skip
    print(
        f"preview:  a {DEMO_MARGIN}% margin bulk update would change "
        f"{len(preview.changed)} rates ({len(preview.skipped)} skipped, no unit costs)"
    )
    print("          dry run — nothing was written")
    print(f"report:   {_relative(run_dir)}/ (changes.csv, skipped.csv, summary.json)")
    return 0


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
