"""Causal technical indicators (numba-compiled; the code lives in kernels.py).

Every output value at bar t depends only on inputs at bars <= t (no look-ahead); the first bars where
an indicator is not defined yet are NaN. `run` and `grid` call the same compiled functions, so they
see bit-identical values.

* ``sma(x, n)``: simple moving average from a running sum of ``x - x[0]``;
* ``ema(x, n)``: alpha = 2 / (n + 1), seeded with x[0] (pandas ``ewm(span=n, adjust=False)``);
* ``rsi(x, n)``: Wilder's RSI;
* ``rolling_mean_std(x, n)``: rolling mean and population standard deviation;
* ``cross_signals(fast, slow)``: +1 / -1 on strict crossings (backtesting.py's ``crossover``).
"""

from .kernels import (
    centered_cumsum,
    cross_signals,
    cross_signals_into,
    ema,
    ema_into,
    rolling_mean_std,
    rsi,
    sma,
    sma_from_cumsum,
)

__all__ = [
    "centered_cumsum",
    "cross_signals",
    "cross_signals_into",
    "ema",
    "ema_into",
    "rolling_mean_std",
    "rsi",
    "sma",
    "sma_from_cumsum",
]
