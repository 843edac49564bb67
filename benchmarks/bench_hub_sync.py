"""Hub sync: what plan and apply cost over the bare hub calls they make, same run.

    python benchmarks/bench_hub_sync.py            # 300 rates over 3 providers
    python benchmarks/bench_hub_sync.py --smoke    # 24 rates (CI: still prints the ratios)

Against the bundled local hub on 127.0.0.1 (started here, in a subprocess):

- **apply** — ``apply(plan(store, hub))`` creating every rate (it re-reads the hub, checks
  each item, records a ``hub_push`` history row per rate) against the baseline: the same
  rates created with bare ``HubClient.create_rate`` calls on the reset hub. Ratio = apply /
  baseline: hubkit's overhead per pushed rate.
- **plan** — ``plan(store, client)`` on a hub that already matches (every rate compared
  field by field) against the baseline: ``pull(client)``, the one request plan makes.
  Ratio = plan / pull.

Both runs end with the same rates on the hub (checked). Times are wall clock, best of
three for the plan; the local hub rewrites its JSON state file on every write, so
absolute apply times say more about it than about hubkit — the ratio is the point.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hubkit.config import Settings  # noqa: E402
from hubkit.domain import ProviderSpec, RateSpec  # noqa: E402
from hubkit.hub.apply import apply  # noqa: E402
from hubkit.hub.client import HubClient  # noqa: E402
from hubkit.hub.plan import plan  # noqa: E402
from hubkit.hub.pull import pull  # noqa: E402
from hubkit.localhub.process import LocalHubProcess, start_local_hub  # noqa: E402
from hubkit.pricing import margin_rate  # noqa: E402
from hubkit.store import Store  # noqa: E402

PROVIDERS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com",
             "deepseek": "https://api.deepseek.com"}  # fmt: skip


def seed(store: Store, n_rates: int) -> list[RateSpec]:
    specs = []
    names = list(PROVIDERS)
    for name, url in PROVIDERS.items():
        store.add_provider(ProviderSpec.create(name, name.title(), base_url=url))
    for i in range(n_rates):
        cost = f"0.00000{i % 9 + 1}{i:04d}"
        spec = RateSpec.create(
            names[i % len(names)], f"model-{i:05d}", "chatCompletion",
            input_rate=margin_rate(cost, 25, 1), output_rate=margin_rate(cost, 30, 1),
            unit_costs={"input": cost, "output": cost},
        )  # fmt: skip
        store.create_rate(spec)
        specs.append(spec)
    return specs


def reset(hub: LocalHubProcess) -> None:
    headers = {"Authorization": f"Bearer {hub.token}"}
    httpx.post(f"{hub.url}/__test__/reset", headers=headers, timeout=30).raise_for_status()


def baseline_creates(client: HubClient, specs: list[RateSpec]) -> float:
    started = time.perf_counter()
    ids = {}
    for name, url in PROVIDERS.items():
        ids[name] = client.create_provider(name, name.title(), base_url=url).id
    for spec in specs:
        client.create_rate_from_spec(ids[spec.provider], spec)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    args = parser.parse_args()
    n = 24 if args.smoke else 300
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HUBKIT_REPORTS_DIR"] = str(Path(tmp) / "reports")
        settings = Settings.from_env({"HUBKIT_DATA_DIR": tmp, "HUBKIT_ACTOR": "bench"})
        store = Store.open(f"sqlite:///{tmp}/bench.db", settings=settings)
        specs = seed(store, n)
        with (
            start_local_hub(Path(tmp) / "hub.json", test_faults=True) as hub,  # for reset()
            HubClient(hub.url, hub.token, timeout=30) as client,
        ):
            raw = baseline_creates(client, specs)
            reset(hub)
            started = time.perf_counter()
            report = apply(plan(store, client), store, client, dry_run=False)
            applied = time.perf_counter() - started
            assert report.complete, report.summary()
            assert len(pull(client).rates) == n
            plans, pulls = [], []
            for _ in range(3):
                t0 = time.perf_counter()
                in_sync = plan(store, client)
                plans.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                pull(client)
                pulls.append(time.perf_counter() - t0)
            assert in_sync.items == () and in_sync.in_sync == n + len(PROVIDERS)
        store.close()
    print(f"hub sync, {n} rates over {len(PROVIDERS)} providers, local hub on loopback")
    print(f"  apply (plan + checked creates + history): {applied:8.3f} s")
    print(f"  bare client.create_rate calls (baseline):  {raw:8.3f} s")
    print(f"  apply overhead ratio: {applied / raw:.2f}x the bare calls")
    print(f"  plan of an in-sync hub: {min(plans) * 1000:8.1f} ms; pull alone: "
          f"{min(pulls) * 1000:.1f} ms")  # fmt: skip
    print(f"  plan/pull ratio: {min(plans) / min(pulls):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
