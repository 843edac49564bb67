"""Scenarios: one what-if on a replay base, a grid of them, and grids over partitioned data.

- :mod:`hubkit.scenarios.scenario`: :class:`ScenarioBase`, :func:`simulate`;
- :mod:`hubkit.scenarios.grid` and :mod:`hubkit.scenarios.sums`: :func:`scenario_grid`
  (and :func:`combine_grids`), its fast path and its running sums per user;
- :mod:`hubkit.scenarios.partitioned`: replays and grids over a partitioned usage dataset,
  in process or on Dask (not named ``distributed.py``, the Dask package it imports).

This package re-exports the names ``hubkit.scenarios`` has always offered.
"""

from __future__ import annotations

from hubkit.scenarios.grid import combine_grids, scenario_grid
from hubkit.scenarios.scenario import ScenarioBase, margin_rates_vec, scenario_row, simulate

__all__ = [
    "ScenarioBase",
    "combine_grids",
    "margin_rates_vec",
    "scenario_grid",
    "scenario_row",
    "simulate",
]
