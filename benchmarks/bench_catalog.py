"""Catalog import at catalog scale: ``rates import --create-missing`` against ``json.loads``.

    .venv/bin/python benchmarks/bench_catalog.py            # 200,000 entries, SQLite + PostgreSQL
    .venv/bin/python benchmarks/bench_catalog.py --smoke    # ~2,000 entries, SQLite, one round

The map is generated (:func:`generate_map`, deterministic by seed) from the reference LiteLLM
map's mapped entries, found as ``PROJECT_ROOT.parent / "shared" / "data"`` (the shipped
sample when it is absent, and the output says so): the real keys, then synthetic copies with
new model names spread over the known providers and costs scaled by a few factors. A share
of the entries is seeded into the store beforehand as existing rates, so the import creates
most rates and updates the rest: unchanged, small moves (``catalog_import``) and moves above
the drift threshold (``source_drift``).

Each back end gets a fresh, seeded store; the import runs in a child process, so its peak
memory (``ru_maxrss``) is its own: the child times ``json.loads`` of the file (the baseline
no catalog reader can avoid) and then ``load_catalog`` + ``Store.import_catalog(...,
create_missing=True)``, the two calls the CLI makes. On SQLite the CLI itself
(``python -m hubkit rates import FILE --create-missing``) is timed too, end to end
(interpreter start and imports included). Prints times, entries/s, peak memory and the
ratio import / json.loads; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import _postgres  # noqa: E402  (tests/_postgres.py: the suite's throwaway server)

from hubkit.catalog import Catalog, load_catalog, shipped_catalog_path  # noqa: E402
from hubkit.config import PROJECT_ROOT, Settings  # noqa: E402
from hubkit.domain import ProviderSpec  # noqa: E402

REFERENCE_NAME = "litellm-model-prices-1.110.2.json"
FULL_ENTRIES = 200_000
SMOKE_ENTRIES = 3_000
# Every AIGNE Hub provider a LiteLLM route maps to: create-missing creates rates only there.
PROVIDERS = ("anthropic", "bedrock", "deepseek", "doubao", "google", "ollama", "openai",
             "openrouter", "xai")  # fmt: skip
# litellm_provider → the key prefix LiteLLM uses for it (synthetic keys are built this way)
ROUTES = (
    ("openai", "openai"), ("anthropic", "anthropic"), ("gemini", "gemini"),
    ("vertex_ai-language-models", "vertex_ai"), ("bedrock", "bedrock"),
    ("bedrock_converse", "bedrock"), ("deepseek", "deepseek"), ("xai", "xai"),
    ("openrouter", "openrouter"), ("ollama", "ollama"), ("volcengine", "volcengine"),
)  # fmt: skip
COST_FIELDS = (
    "input_cost_per_token", "output_cost_per_token", "output_cost_per_image",
    "output_cost_per_second", "output_cost_per_video_per_second",
    "cache_read_input_token_cost", "cache_creation_input_token_cost",
)  # fmt: skip
# Synthetic copies scale the real costs by one of these (floats, as LiteLLM writes them)
FACTORS = (0.5, 0.8, 1.0, 1.1, 1.25, 2.0, 3.0)
EXISTING_SHARE = 10  # one entry in ten is already a rate in the store
DRIFT_MOVES = (Decimal(1), Decimal("1.05"), Decimal("1.5"))  # unchanged, small, > 10 %


def reference_path() -> tuple[Path, bool]:
    """The reference map beside the project (``../shared/data``), else the shipped sample."""
    path = PROJECT_ROOT.parent / "shared" / "data" / REFERENCE_NAME
    return (path, True) if path.exists() else (shipped_catalog_path(), False)


def generate_map(n_entries: int, *, seed: int = 20251203, base: Path | None = None) -> dict:
    """A LiteLLM-style map of ``n_entries`` keys built from ``base``'s mapped entries.

    The real mapped keys first, then copies ``<prefix>/<model>-s<copy>`` whose provider is
    drawn (by ``seed``) from :data:`ROUTES` and whose costs are the real ones times a factor
    from :data:`FACTORS`. Same arguments, same map.
    """
    base = base or reference_path()[0]
    raw = json.loads(base.read_text(encoding="utf-8"))
    mapped = [(e.source_key, e.model, raw[e.source_key]) for e in load_catalog(base).entries]
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    for key, _, entry in mapped[:n_entries]:
        out[key] = entry
    copy = 0
    while len(out) < n_entries:
        copy += 1
        for _, model, entry in mapped:
            if len(out) == n_entries:
                break
            litellm_provider, prefix = ROUTES[rng.randrange(len(ROUTES))]
            name = f"{model[:88]}-s{copy:04d}"
            if prefix == "bedrock":
                name = name.replace("/", ".")  # Bedrock ids never hold a '/'
            factor = FACTORS[rng.randrange(len(FACTORS))]
            synthetic = dict(entry, litellm_provider=litellm_provider)
            for field in COST_FIELDS:
                if isinstance(entry.get(field), float | int):
                    synthetic[field] = entry[field] * factor
            out[f"{prefix}/{name}"] = synthetic
    return out


def seed_store(url: str, catalog: Catalog, settings: Settings) -> int:
    """The providers, and every EXISTING_SHARE-th catalog entry as an existing rate.

    Their stored unit costs are the catalog's divided by one of DRIFT_MOVES, so the import
    leaves a third unchanged, moves a third by 5 % and a third by 50 % (source_drift).
    """
    from sqlalchemy import insert, select
    from sqlalchemy.orm import Session

    from hubkit.decimals import EXACT
    from hubkit.store import Store
    from hubkit.store.schema import ProviderRow, RateRow
    from hubkit.store.types import utcnow

    with Store.open(url, settings=settings) as store:
        for name in PROVIDERS:
            region = "us-east-1" if name == "bedrock" else None
            base_url = None if name == "bedrock" else f"https://{name}.example.com/v1"
            store.add_provider(ProviderSpec.create(name, base_url=base_url, region=region))
        with Session(store.engine) as session, session.begin():
            ids = dict(session.execute(select(ProviderRow.name, ProviderRow.id)).all())
            now = utcnow()
            rows = []
            for i, entry in enumerate(catalog.entries[::EXISTING_SHARE]):
                move = DRIFT_MOVES[i % len(DRIFT_MOVES)]
                rows.append(
                    {
                        "provider_id": ids[entry.provider],
                        "model": entry.model,
                        "model_display": entry.model[:100],
                        "type": entry.type.value,
                        "input_rate": Decimal("0.001"),
                        "output_rate": Decimal("0.002"),
                        "unit_cost_input": EXACT.divide(entry.unit_costs.input, move),
                        "unit_cost_output": EXACT.divide(entry.unit_costs.output, move),
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            if rows:
                session.execute(insert(RateRow), rows)
    return len(rows)


def _maxrss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def child_import(path: Path, url: str, data_dir: Path) -> dict[str, Any]:
    """In this (fresh) process: json.loads, then the CLI's two calls; times and peak RSS."""
    from hubkit.store import Store

    settings = Settings.from_env({"HUBKIT_DATA_DIR": str(data_dir), "HUBKIT_ACTOR": "bench"})
    started, cpu = time.perf_counter(), time.process_time()
    parsed = json.loads(path.read_text(encoding="utf-8"))
    baseline, baseline_cpu = time.perf_counter() - started, time.process_time() - cpu
    keys = len(parsed)
    del parsed
    with Store.open(url, settings=settings) as store:
        started, cpu = time.perf_counter(), time.process_time()
        catalog = load_catalog(path)
        loaded, loaded_cpu = time.perf_counter(), time.process_time()
        result = store.import_catalog(catalog, create_missing=True)
        done, done_cpu = time.perf_counter(), time.process_time()
    return {
        "keys": keys,
        "entries": len(catalog.entries),
        "unmapped": len(catalog.unmapped),
        "json_s": baseline,
        "load_s": loaded - started,
        "import_s": done - loaded,
        # CPU seconds of this process: on a shared machine wall time includes waiting
        "json_cpu_s": baseline_cpu,
        "load_cpu_s": loaded_cpu - cpu,
        "import_cpu_s": done_cpu - loaded_cpu,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "drifted": len(result.drifted),
        "history": len(result.history_ids),
        "peak_mib": _maxrss_mib(resource.RUSAGE_SELF),
    }


def run_child(path: Path, url: str, data_dir: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), url, str(data_dir)],
        capture_output=True, text=True, check=False, env=_child_env(),
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"import child failed:\n{out.stdout}\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(path: Path, url: str, data_dir: Path) -> tuple[float, float, str]:
    """``python -m hubkit rates import FILE --create-missing``: wall time, peak RSS, output."""
    env = dict(_child_env(), HUBKIT_DATABASE_URL=url, HUBKIT_DATA_DIR=str(data_dir))
    started = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-m", "hubkit", "rates", "import", str(path), "--create-missing"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        output = proc.stdout.read()
        # wait4: this child's own rusage (RUSAGE_CHILDREN would be the largest child's)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"CLI import failed ({proc.returncode}):\n{output}")
    return elapsed, usage.ru_maxrss / 1024, output.strip()


def _child_env() -> dict[str, str]:
    env = dict(os.environ, HUBKIT_ACTOR="bench")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


@contextmanager
def postgres_url() -> Iterator[str]:
    server = _postgres.start_server()
    try:
        name = _postgres.database_name("bench_catalog")
        _postgres.create_database(server, name)
        yield server.url(name)
    finally:
        _postgres.stop_server(server)


def report(backend: str, r: dict[str, Any]) -> None:
    total = r["load_s"] + r["import_s"]
    cpu = r["load_cpu_s"] + r["import_cpu_s"]
    print(
        f"{backend:<10} {r['entries']:>7,} entries ({r['unmapped']:,} unmapped of "
        f"{r['keys']:,} keys): json.loads {r['json_s']:6.2f} s | load_catalog "
        f"{r['load_s']:6.2f} s + import_catalog {r['import_s']:6.2f} s = {total:6.2f} s, "
        f"{r['entries'] / total:,.0f} entries/s, peak {r['peak_mib']:,.0f} MiB | "
        f"ratio import / json.loads {total / r['json_s']:.1f}",
        flush=True,
    )
    print(
        f"{'':<10} CPU seconds of the importing process: json.loads {r['json_cpu_s']:.2f}, "
        f"load_catalog {r['load_cpu_s']:.2f} + import_catalog {r['import_cpu_s']:.2f} = "
        f"{cpu:.2f} (ratio {cpu / r['json_cpu_s']:.1f})",
        flush=True,
    )
    print(
        f"{'':<10} created {r['created']:,}, updated {r['updated']:,} (source_drift "
        f"{r['drifted']:,}), unchanged {r['unchanged']:,}, history rows {r['history']:,}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--child"]:
        print(json.dumps(child_import(Path(args_in[1]), args_in[2], Path(args_in[3]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_ENTRIES} entries, SQLite")
    parser.add_argument("--entries", type=int, default=None, help=f"default {FULL_ENTRIES:,}")
    parser.add_argument("--seed", type=int, default=20251203)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default=None,
                        help="default: both (sqlite with --smoke)")  # fmt: skip
    args = parser.parse_args(args_in)
    n_entries = args.entries or (SMOKE_ENTRIES if args.smoke else FULL_ENTRIES)
    backend = args.backend or ("sqlite" if args.smoke else "both")
    base, is_reference = reference_path()
    if not is_reference:
        print(
            f"note: reference map {PROJECT_ROOT.parent / 'shared' / 'data' / REFERENCE_NAME} "
            f"not found; generating from the shipped sample {base.name} instead",
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="hubkit-bench-catalog-") as tmp:
        root = Path(tmp)
        path = root / "catalog.json"
        path.write_text(json.dumps(generate_map(n_entries, seed=args.seed, base=base)), "utf-8")
        catalog = load_catalog(path)
        settings = Settings.from_env({"HUBKIT_DATA_DIR": str(root), "HUBKIT_ACTOR": "bench"})
        seeded = root / "seeded.db"
        existing = seed_store(f"sqlite:///{seeded}", catalog, settings)
        print(
            f"catalog import benchmark: {n_entries:,} generated keys from {base.name} "
            f"({path.stat().st_size / 2**20:,.1f} MiB), {existing:,} already in the store; "
            f"--create-missing",
            flush=True,
        )
        del catalog
        if backend in ("sqlite", "both"):
            target = root / "import.db"
            shutil.copyfile(seeded, target)
            report("sqlite", run_child(path, f"sqlite:///{target}", root))
            shutil.copyfile(seeded, target)
            elapsed, peak, output = run_cli(path, f"sqlite:///{target}", root)
            print(f"{'':<10} CLI end to end: {elapsed:6.2f} s, peak {peak:,.0f} MiB: {output}")
        if backend in ("postgres", "both"):
            try:
                with postgres_url() as url:
                    seed_store(url, load_catalog(path), settings)
                    report("postgres", run_child(path, url, root))
            except _postgres.PostgresUnavailable as exc:
                print(f"postgres   skipped: {exc}; ratio not measured", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
