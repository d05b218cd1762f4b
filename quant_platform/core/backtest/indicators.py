"""Causal technical indicators compiled with numba.

Every output value at bar t depends only on inputs at bars <= t (no look-ahead); the first bars where
an indicator is not defined yet are NaN. The grid search computes the same indicators with the same
functions, so `grid` and `run` see bit-identical values.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def centered_cumsum(x):  # pragma: no cover - compiled
    """cs[t] = sum_{i<=t} (x[i] - x[0]); centering keeps the running sum small (better precision)."""
    n = x.shape[0]
    cs = np.empty(n)
    acc = 0.0
    x0 = x[0] if n > 0 else 0.0
    for i in range(n):
        acc += x[i] - x0
        cs[i] = acc
    return cs


@njit(cache=True)
def sma_from_cumsum(cs, x0, window, out):  # pragma: no cover - compiled
    """Simple moving average from `centered_cumsum` output: out[t] = mean(x[t-window+1 .. t])."""
    n = cs.shape[0]
    w = window
    for t in range(n):
        if t < w - 1:
            out[t] = np.nan
        elif t == w - 1:
            out[t] = x0 + cs[t] / w
        else:
            out[t] = x0 + (cs[t] - cs[t - w]) / w
    return out


@njit(cache=True)
def sma(x, window):  # pragma: no cover - compiled
    """Simple moving average (NaN for the first window-1 bars)."""
    n = x.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    return sma_from_cumsum(centered_cumsum(x), x[0], window, out)


@njit(cache=True)
def ema_into(x, span, out):  # pragma: no cover - compiled
    """Exponential moving average, alpha = 2 / (span + 1), seeded with x[0] (pandas
    ``ewm(span, adjust=False)``); NaN for the first span-1 bars (warm-up)."""
    n = x.shape[0]
    alpha = 2.0 / (span + 1.0)
    e = 0.0
    for t in range(n):
        e = x[t] if t == 0 else alpha * x[t] + (1.0 - alpha) * e
        out[t] = e if t >= span - 1 else np.nan
    return out


@njit(cache=True)
def ema(x, span):  # pragma: no cover - compiled
    return ema_into(x, span, np.empty(x.shape[0]))


@njit(cache=True)
def rsi(x, period):  # pragma: no cover - compiled
    """Wilder's RSI: average gain/loss seeded with the simple mean of the first `period` changes, then
    avg = (avg * (period - 1) + change) / period; RSI = 100 - 100 / (1 + gain / loss) (100 when loss
    is 0). NaN for the first `period` bars."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n <= period:
        return out
    g = 0.0
    lo = 0.0
    for t in range(1, period + 1):
        d = x[t] - x[t - 1]
        if d > 0:
            g += d
        else:
            lo -= d
    g /= period
    lo /= period
    for t in range(period, n):
        if t > period:
            d = x[t] - x[t - 1]
            gain = d if d > 0 else 0.0
            loss = -d if d < 0 else 0.0
            g = (g * (period - 1) + gain) / period
            lo = (lo * (period - 1) + loss) / period
        out[t] = 100.0 if lo == 0.0 else 100.0 - 100.0 / (1.0 + g / lo)
    return out


@njit(cache=True)
def rolling_mean_std(x, window):  # pragma: no cover - compiled
    """Rolling mean and population standard deviation (ddof=0) over `window` bars, two-pass per
    window for accuracy. NaN for the first window-1 bars."""
    n = x.shape[0]
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    for t in range(window - 1, n):
        s = 0.0
        for i in range(t - window + 1, t + 1):
            s += x[i]
        m = s / window
        v = 0.0
        for i in range(t - window + 1, t + 1):
            d = x[i] - m
            v += d * d
        mean[t] = m
        std[t] = np.sqrt(v / window)
    return mean, std


@njit(cache=True)
def cross_signals_into(fast, slow, out):  # pragma: no cover - compiled
    """+1 where `fast` crosses above `slow` (fast[t-1] < slow[t-1] and fast[t] > slow[t]), -1 where it
    crosses below, else 0 -- the same strict test as backtesting.py's ``crossover``."""
    n = fast.shape[0]
    if n > 0:
        out[0] = 0
    for t in range(1, n):
        f0 = fast[t - 1]
        s0 = slow[t - 1]
        f1 = fast[t]
        s1 = slow[t]
        if f0 < s0 and f1 > s1:
            out[t] = 1
        elif f0 > s0 and f1 < s1:
            out[t] = -1
        else:
            out[t] = 0
    return out


@njit(cache=True)
def cross_signals(fast, slow):  # pragma: no cover - compiled
    return cross_signals_into(fast, slow, np.empty(fast.shape[0], dtype=np.int8))
