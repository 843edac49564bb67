"""Build hubkit's shipped sample price catalog from the LiteLLM reference map.

    .venv/bin/python scripts/build_sample_catalog.py            # (re)write the sample
    .venv/bin/python scripts/build_sample_catalog.py --check    # exit 1 if it is stale

The sample is a LiteLLM-format subset of ``model_prices_and_context_window_backup.json``
(LiteLLM 1.110.2): only keys that ``hubkit.catalog`` maps, and of those only the key that
wins for its (provider, model, type), so every key of the sample maps. Providers: openai,
anthropic, google (Gemini API keys only), deepseek, xai, and a Bedrock subset (Claude,
Amazon Nova/Titan, Stability image models). Fields are trimmed to what hubkit reads plus
provenance (``source``, ``deprecation_date``). Output is deterministic: same input, same bytes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from hubkit.catalog import load_catalog, shipped_catalog_path

DEFAULT_SOURCE = Path("/work/shared/data/litellm-model-prices-1.110.2.json")
PROVIDERS = ("openai", "anthropic", "google", "deepseek", "xai", "bedrock")
_BEDROCK_SUBSET = re.compile(r"anthropic\.claude|amazon\.(?:nova|titan)|stability\.")
KEEP_FIELDS = (
    "litellm_provider",
    "mode",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_image",
    "output_cost_per_video_per_second",
    "output_cost_per_second",
    "max_input_tokens",
    "max_output_tokens",
    "supports_function_calling",
    "supports_vision",
    "supports_reasoning",
    "supports_prompt_caching",
    "deprecation_date",
    "source",
)
MAX_BYTES = 300_000


def build(source: Path) -> str:
    """The sample catalog's JSON text, built from the full LiteLLM map at ``source``."""
    raw: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    catalog = load_catalog(source, providers=PROVIDERS)
    keep: set[str] = set()
    for entry in catalog.entries:
        provider = raw[entry.source_key]["litellm_provider"]
        if entry.provider == "google" and provider != "gemini":
            continue  # AIGNE Hub's google provider is the Gemini API
        if entry.provider == "bedrock" and not _BEDROCK_SUBSET.match(entry.model):
            continue
        keep.add(entry.source_key)
    out: dict[str, Any] = {}
    if "sample_spec" in raw:  # LiteLLM's own field documentation travels with the format
        out["sample_spec"] = raw["sample_spec"]
    for key, value in raw.items():  # the reference's order, so diffs against it stay readable
        if key in keep:
            out[key] = {f: value[f] for f in KEEP_FIELDS if f in value}
    return json.dumps(out, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=shipped_catalog_path())
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = build(args.source)
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        print(f"sample would be {size} bytes, over the {MAX_BYTES} limit", file=sys.stderr)
        return 1
    entries = len(json.loads(text)) - 1
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: rerun {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{args.output}: up to date ({entries} entries, {size} bytes)")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}: {entries} entries, {size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
