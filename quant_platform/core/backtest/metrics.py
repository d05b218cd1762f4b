"""Performance statistics of a backtest (compiled) and the deterministic result hash.

The same compiled function computes the stats for `run` and for every row of `grid`, so both report
bit-identical numbers. Formulas (also in docs/backtest.md), with E_t the equity at bar t's close,
E_0 the first bar's, C the starting cash, r_t = E_t / E_{t-1} - 1 for t >= 1 and A = periods_per_year:

* total_return = E_last / C - 1
* cagr = (E_last / C) ** (1 / years) - 1, years = calendar days first bar -> last bar / 365.25
* annual_volatility = std(r, ddof=1) * sqrt(A)
* sharpe = mean(r) / std(r, ddof=1) * sqrt(A)   (risk-free rate 0)
* sortino = mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(A)
* max_drawdown = min_t(E_t / max_{s<=t} E_s - 1)   (<= 0; -0.25 is a 25% drawdown)
* calmar = cagr / -max_drawdown
* num_trades = closed round trips; win_rate = share of them with pnl > 0
* profit_factor = sum(pnl > 0) / -sum(pnl < 0) over closed trades
* exposure = share of bars during which a position was held at any moment
* buy_and_hold_return = close_last / close_first - 1 (portfolio: mean over symbols)
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

from quant_platform.core.schema import GRID_METRICS

from .kernels import compute_stats  # noqa: F401 - the compiled implementation of the formulas above

# The statistics a grid search stores are the table's columns (core.schema, no numba to import);
# the engine adds one flag that only makes sense per run.
STAT_NAMES: tuple[str, ...] = (*GRID_METRICS, "open_position_marked_to_close")
N_STATS = len(STAT_NAMES)
INT_STATS = frozenset({"num_trades", "open_trades"})
BOOL_STATS = frozenset({"open_position_marked_to_close"})

# Layout of the per-run trade accumulator filled by the kernels.
T_CLOSED, T_WINS, T_GROSS_PROFIT, T_GROSS_LOSS, T_COMMISSION, T_STAMP, T_EXPOSED, T_OPEN = range(8)
N_TSTATS = 8


def stats_to_dict(values: np.ndarray) -> dict[str, Any]:
    """Kernel stat vector -> ordered dict with ints/bools typed as such."""
    out: dict[str, Any] = {}
    for name, v in zip(STAT_NAMES, values.tolist(), strict=True):
        if name in INT_STATS:
            out[name] = int(v)
        elif name in BOOL_STATS:
            out[name] = bool(v)
        else:
            out[name] = float(v)
    return out


def _rounded(x: float, ndigits: int) -> Any:
    if isinstance(x, bool | int):
        return x
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return round(x, ndigits)


def result_hash(equity: np.ndarray, trades: np.ndarray, stats: dict[str, Any], ndigits: int = 6) -> str:
    """sha256 over the equity curve, the trade records (entry/exit bar, prices, size, pnl, fees, open
    flag, symbol) and the stats, all rounded to `ndigits` decimals.

    Rounding makes the hash insensitive to last-bit floating-point noise; identical inputs and
    settings give the identical hash.
    """
    h = hashlib.sha256()
    h.update((np.round(np.asarray(equity, dtype=np.float64), ndigits) + 0.0).tobytes())
    h.update((np.round(np.ascontiguousarray(trades, dtype=np.float64), ndigits) + 0.0).tobytes())
    payload = {k: _rounded(v, ndigits) for k, v in stats.items()}
    h.update(json.dumps(payload, sort_keys=True).encode())
    return h.hexdigest()
