"""The flat names of a rate's fields: one definition for every table, frame and CSV of rates.

A :class:`~hubkit.domain.Rate` nests its amounts (``unit_costs.input``,
``caching.read_rate``); wherever rates are flat — the store's columns and staging tables,
the rate timeline the replay reads, the SQL twin's rate periods, the rates frame and its
CSV, the hub's rates as a frame — the amounts go by these names. The groups are defined
once and composed; the two orders in use (a rate's view: prices, costs, cache; a timeline:
prices, cache, costs) are both built from them, so a new amount is added in one place.
"""

from __future__ import annotations

#: what names one rate: the key of the store, the timeline and the usage it prices
RATE_KEY = ("provider", "model", "type")
#: credits per unit the gateway bills (tokens, images or seconds by the rate's type)
PRICE_COLUMNS = ("input_rate", "output_rate")
#: what the provider charges per unit, in the operator's currency (None: not known)
COST_COLUMNS = ("unit_cost_input", "unit_cost_output")
#: credits per cached token read / written (None: the input rate applies)
CACHE_COLUMNS = ("cache_read_rate", "cache_write_rate")

#: every amount of a rate, in the order views and CSVs show them
RATE_AMOUNTS = (*PRICE_COLUMNS, *COST_COLUMNS, *CACHE_COLUMNS)
#: a rate's row in the rates-in-force timeline (``valid_to`` NaT = still in force)
TIMELINE_COLUMNS = (
    *RATE_KEY, *PRICE_COLUMNS, *CACHE_COLUMNS, *COST_COLUMNS, "valid_from", "valid_to",
)  # fmt: skip
