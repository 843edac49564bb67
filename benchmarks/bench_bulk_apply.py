"""Bulk update: hubkit's preview + apply against a per-rate ORM baseline, same run.

    python benchmarks/bench_bulk_apply.py            # 10,000 rates, SQLite and PostgreSQL
    python benchmarks/bench_bulk_apply.py --smoke    # ~300 rates (CI: still prints the ratio)

For each back end two identical databases are seeded with the same rates (unit costs set).
On one, hubkit's path is timed, cold (new store, first call): ``Store.preview_bulk_update``
(reads the columns it prices, rule ``hubkit.pricing.bulk_preview``) + ``Store.apply_bulk_update``
(new rates staged in a temporary table, version-checked, one history row per rate written by
one INSERT … SELECT, rates by one UPDATE, one transaction). On the other, the baseline: one ORM
session and transaction that loads every rate, sets its new rates with
``hubkit.pricing.margin_rate``, adds a history row and flushes, row by row. The script checks
that both databases end with the same rates and the same number of history rows, then prints
the times and the speed-up ratio (goal: at least 20x). Each side starts from a collected heap
(``gc.collect()``) so neither pays for the seeding's garbage. One run times each side once:
the machine is shared, so compare the best of a few runs. PostgreSQL is a throwaway server on
127.0.0.1 started as the test suite does (``tests/_postgres.py``); without its binaries that
part is skipped with a note.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import _postgres  # noqa: E402  (tests/_postgres.py: the suite's throwaway server)
from _many_rates import seed  # noqa: E402

from hubkit.config import Settings  # noqa: E402
from hubkit.domain import ChangeType  # noqa: E402
from hubkit.pricing import margin_rate  # noqa: E402
from hubkit.store import Store  # noqa: E402
from hubkit.store.schema import RateHistoryRow, RateRow  # noqa: E402
from hubkit.store.types import utcnow  # noqa: E402

MARGIN = Decimal("25")
CREDIT_PRICE = Decimal("0.002")
GOAL = 20.0


@dataclass(frozen=True)
class Timing:
    backend: str
    rates: int
    preview_s: float
    apply_s: float
    baseline_s: float

    @property
    def hubkit_s(self) -> float:
        return self.preview_s + self.apply_s

    @property
    def ratio(self) -> float:
        return self.baseline_s / self.hubkit_s


def _settings(data_dir: Path) -> Settings:
    return Settings.from_env({"HUBKIT_DATA_DIR": str(data_dir), "HUBKIT_ACTOR": "bench"})


def hubkit_path(store: Store) -> tuple[float, float, int]:
    started = time.perf_counter()
    preview = store.preview_bulk_update(MARGIN, CREDIT_PRICE)
    previewed = time.perf_counter()
    result = store.apply_bulk_update(preview, reason="benchmark")
    applied = time.perf_counter()
    return previewed - started, applied - previewed, result.updated


def baseline_path(store: Store) -> tuple[float, int]:
    """Per-rate ORM update with a flush per row and a history row per rate, one transaction."""
    started = time.perf_counter()
    updated = 0
    with Session(store.engine) as session, session.begin():
        rows = session.scalars(
            select(RateRow).options(selectinload(RateRow.provider)).order_by(RateRow.id)
        ).all()
        for row in rows:
            if row.unit_cost_input is None or row.unit_cost_output is None:
                continue
            old_in, old_out = row.input_rate, row.output_rate
            row.input_rate = margin_rate(row.unit_cost_input, MARGIN, CREDIT_PRICE)
            row.output_rate = margin_rate(row.unit_cost_output, MARGIN, CREDIT_PRICE)
            now = utcnow()
            row.updated_at = now
            session.add(
                RateHistoryRow(
                    rate_id=row.id,
                    provider=row.provider.name,
                    model=row.model,
                    type=row.type,
                    change_type=ChangeType.BULK_UPDATE.value,
                    previous_input_rate=old_in,
                    previous_output_rate=old_out,
                    current_input_rate=row.input_rate,
                    current_output_rate=row.output_rate,
                    previous_unit_cost_input=row.unit_cost_input,
                    previous_unit_cost_output=row.unit_cost_output,
                    current_unit_cost_input=row.unit_cost_input,
                    current_unit_cost_output=row.unit_cost_output,
                    changed_at=now,
                    actor="bench",
                    reason="benchmark",
                )
            )
            session.flush()
            updated += 1
    return time.perf_counter() - started, updated


def _state(store: Store) -> tuple[list[tuple[str, str, Decimal, Decimal, int]], int]:
    rates = [
        (r.provider, r.model, r.input_rate, r.output_rate, r.version) for r in store.list_rates()
    ]
    with Session(store.engine) as session:
        history = session.scalar(select(func.count()).select_from(RateHistoryRow)) or 0
    return rates, history


def measure(backend: str, urls: tuple[str, str], n_rates: int, data_dir: Path) -> Timing:
    settings = _settings(data_dir)
    with (
        Store.open(urls[0], settings=settings) as fast,
        Store.open(urls[1], settings=settings) as slow,
    ):
        seed(fast, n_rates)
        seed(slow, n_rates)
        # Neither side pays for the seeding's garbage: each starts from a collected heap (the
        # collector still runs as usual while it is timed).
        gc.collect()
        preview_s, apply_s, n_fast = hubkit_path(fast)
        gc.collect()
        baseline_s, n_slow = baseline_path(slow)
        if not n_fast == n_slow == n_rates:
            raise SystemExit(f"{backend}: updated {n_fast} vs {n_slow}, expected {n_rates}")
        if _state(fast) != _state(slow):
            raise SystemExit(f"{backend}: hubkit and the baseline wrote different rates")
    return Timing(backend, n_rates, preview_s, apply_s, baseline_s)


@contextmanager
def sqlite_urls(root: Path) -> Iterator[tuple[str, str]]:
    yield (f"sqlite:///{root / 'hubkit.db'}", f"sqlite:///{root / 'baseline.db'}")


@contextmanager
def postgres_urls() -> Iterator[tuple[str, str]]:
    server = _postgres.start_server()
    try:
        names = (_postgres.database_name("bench_hubkit"), _postgres.database_name("bench_orm"))
        for name in names:
            _postgres.create_database(server, name)
        yield (server.url(names[0]), server.url(names[1]))
    finally:
        _postgres.stop_server(server)


def report(timing: Timing) -> None:
    print(
        f"{timing.backend:<10} {timing.rates:>7} rates  "
        f"hubkit preview {timing.preview_s:7.3f} s + apply {timing.apply_s:7.3f} s "
        f"= {timing.hubkit_s:7.3f} s   baseline (ORM, flush per row) {timing.baseline_s:8.3f} s   "
        f"ratio {timing.ratio:6.1f}x  ({'meets' if timing.ratio >= GOAL else 'misses'} "
        f"the {GOAL:.0f}x goal)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="~300 rates: a quick end-to-end run")
    parser.add_argument("--rates", type=int, default=None, help="number of rates (default 10000)")
    parser.add_argument(
        "--backend", choices=("sqlite", "postgres", "both"), default="both", help="which database"
    )
    args = parser.parse_args(argv)
    n_rates = args.rates or (300 if args.smoke else 10_000)
    print(
        f"bulk update benchmark: {n_rates} rates, margin {MARGIN} %, credit price "
        f"{CREDIT_PRICE}; history rows included on both sides",
        flush=True,
    )
    runs: list[tuple[str, Callable[[Path], object]]] = []
    if args.backend in ("sqlite", "both"):
        runs.append(("sqlite", lambda root: sqlite_urls(root)))
    if args.backend in ("postgres", "both"):
        runs.append(("postgres", lambda root: postgres_urls()))
    for backend, urls_for in runs:
        with tempfile.TemporaryDirectory(prefix="hubkit-bench-") as tmp:
            root = Path(tmp)
            try:
                with urls_for(root) as urls:  # type: ignore[attr-defined]
                    report(measure(backend, urls, n_rates, root))
            except _postgres.PostgresUnavailable as exc:
                print(f"{backend:<10} skipped: {exc}; ratio not measured", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
