"""Options: chains, intraday snapshots, daily rollups, implied volatility and greeks.

Public math (`quant_platform.options.bsm`, Black-Scholes-Merton with a continuous dividend yield):

    >>> from quant_platform.options import implied_vol, greeks, price

The plain modules of the feature sit next to it: `chain` (contract naming and expiries), `sources`
(the synthetic chain and the source interface), `ib` (Interactive Brokers adapter), `rollup`,
`enrich` (IV, greeks, T+1 open interest), `rules` (row rules and parity), `qa` (QA metrics) and
`cli`. Their Dagster wiring is `quant_platform.options.dagster`. The math is imported on first use
(numba compiles it once and caches it on disk), so importing this package stays cheap.
"""

from __future__ import annotations

__all__ = ["greeks", "implied_vol", "price", "price_and_greeks"]


def __getattr__(name: str):
    if name in __all__:
        from quant_platform.options import bsm

        return getattr(bsm, name)
    raise AttributeError(f"module 'quant_platform.options' has no attribute {name!r}")
