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

**A distant hub** (issue 13): the same local hub answering every request after 50 ms
(``--latency-ms``), as across a network, keeping its changes in memory (``--in-memory``:
rewriting its JSON state file costs it ~20 ms a write, which is the local hub, not the
network or hubkit; that run is printed too). It is seeded through the gateway's own
sync-mode bulk route (one request creates every rate) and a store bootstrapped from it, so
both start equal:

- **apply of 2,000 rate updates** (a margin change) with ``concurrency=8`` against the
  baseline, the same kind of update one at a time (``concurrency=1``), same run. Goals:
  ≥ 6× faster; 10,000 updates extrapolated from the measured rate ≤ 90 s.
- **plan of 10,000 rates** on a hub that matches (one pull, every rate compared). Goal ≤ 10 s.

``--smoke`` runs 24 rates, 60 updates and a plan of 300 at the same latency.
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
from hubkit.domain import ProviderSpec, RateSpec, UnitCosts  # noqa: E402
from hubkit.hub.apply import apply  # noqa: E402
from hubkit.hub.client import HubClient  # noqa: E402
from hubkit.hub.models import SyncUpdate  # noqa: E402
from hubkit.hub.plan import plan  # noqa: E402
from hubkit.hub.pull import bootstrap, pull  # noqa: E402
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


def seed_distant_hub(url: str, token: str, n_rates: int) -> None:
    """``n_rates`` on a hub with no latency, through the sync-mode route (one request)."""
    with HubClient(url, token, timeout=600) as client:
        for name, base in PROVIDERS.items():
            client.create_provider(name, name.title(), base_url=base)
        names = list(PROVIDERS)
        updates = [
            SyncUpdate(
                names[i % len(names)], f"far-model-{i:05d}",
                UnitCosts.parse({"input": f"0.00000{i % 9 + 1}{i:04d}",
                                 "output": f"0.0000{i % 7 + 1}{i:04d}"}),
                is_new=True,
            )
            for i in range(n_rates)
        ]  # fmt: skip
        result = client.sync_rates(
            updates, dry_run=False, apply_rates=True, profit_margin=20, credit_price=1
        )
        assert len(result.created) == n_rates, result


def distant_store(tmp: Path, name: str, url: str, token: str) -> Store:
    """A store bootstrapped from the distant hub: equal to it, as after a pull."""
    settings = Settings.from_env({"HUBKIT_DATA_DIR": tmp, "HUBKIT_ACTOR": "bench"})
    store = Store.open(f"sqlite:///{tmp}/{name}.db", settings=settings)
    with HubClient(url, token, timeout=600) as client:
        bootstrap(store, client)
    return store


def timed_margin_push(store: Store, client: HubClient, margin: int, concurrency: int) -> float:
    """Change every rate's margin locally, then push the updates: seconds for the push."""
    store.apply_bulk_update(store.preview_bulk_update(margin, 1), reason=f"bench {margin} %")
    made = plan(store, client)
    started = time.perf_counter()
    report = apply(made, store, client, dry_run=False, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    assert report.complete, report.summary()
    return elapsed


def distant(tmp: Path, *, updates: int, plan_rates: int, latency_ms: float) -> None:
    print(f"\na distant hub: every request answered after {latency_ms:g} ms")
    state = Path(tmp) / "far.json"
    with start_local_hub(state) as near:  # seeding needs no latency
        seed_distant_hub(near.url, near.token, updates)
    with start_local_hub(state, latency_ms=latency_ms) as far:
        store = distant_store(Path(tmp), "far", far.url, far.token)
        with HubClient(far.url, far.token, timeout=60) as client:
            # as it rewrites its state file: the local hub's own write cost is in it
            on_file = timed_margin_push(store, client, 25, concurrency=8)
        store.close()
    # what the push costs across the network: the hub keeps its changes in memory
    with start_local_hub(state, latency_ms=latency_ms, in_memory=True) as far:
        store = distant_store(Path(tmp), "far-memory", far.url, far.token)
        with HubClient(far.url, far.token, timeout=60) as client:
            one = timed_margin_push(store, client, 30, concurrency=1)
            eight = timed_margin_push(store, client, 35, concurrency=8)
        store.close()
    per_second = updates / eight
    print(f"  apply of {updates:,} rate updates, one at a time (baseline): {one:8.2f} s "
          f"({updates / one:,.0f}/s)")  # fmt: skip
    print(f"  apply of {updates:,} rate updates, 8 in flight:             {eight:8.2f} s "
          f"({per_second:,.0f}/s)")  # fmt: skip
    print(f"  concurrency 8 vs 1: {one / eight:.1f}x faster (goal ≥ 6x)")
    print(f"  10,000 updates at this rate: {10_000 / per_second:6.1f} s (goal ≤ 90 s)")
    print(f"  (8 in flight to the same hub rewriting its state file per group of writes: "
          f"{on_file:.2f} s, {updates / on_file:,.0f}/s; 10,000 would take "
          f"{10_000 / updates * on_file:.0f} s)")  # fmt: skip

    state = Path(tmp) / "far-plan.json"
    with start_local_hub(state) as near:
        seed_distant_hub(near.url, near.token, plan_rates)
    with start_local_hub(state, latency_ms=latency_ms) as far:
        store = distant_store(Path(tmp), "far-plan", far.url, far.token)
        with HubClient(far.url, far.token, timeout=60) as client:
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                made = plan(store, client)
                times.append(time.perf_counter() - t0)
            assert made.items == () and made.in_sync == plan_rates + len(PROVIDERS)
        store.close()
    print(f"  plan of {plan_rates:,} rates in sync: {min(times):6.2f} s (goal ≤ 10 s; "
          f"{latency_ms:g} ms of it is the one round trip)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the distant hub's delay")
    parser.add_argument("--updates", type=int, help="rate updates pushed to the distant hub")
    parser.add_argument("--plan-rates", type=int, help="rates in the distant hub's plan")
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
    with tempfile.TemporaryDirectory() as tmp:
        distant(
            Path(tmp),
            updates=args.updates or (60 if args.smoke else 2_000),
            plan_rates=args.plan_rates or (300 if args.smoke else 10_000),
            latency_ms=args.latency_ms,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
