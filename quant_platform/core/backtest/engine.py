"""The compiled simulation kernels and the Python drivers around them.

Decision timeline of bar t (no look-ahead: a decision only ever sees bars <= t):

* ``fill="next_open"``: at bar t's open the engine fills whatever the decisions up to bar t-1 asked
  for; it marks the equity at bar t's close; then it reads bar t's decision (known at t's close).
* ``fill="close"``: it reads bar t's decision and fills it at bar t's close, then marks the equity.

A *want* array drives the kernel: want[t] is +1 (be long), -1 (be short; flat when long-only), 0 (be
flat) or NaN (no new decision: keep the previous one). The engine keeps the latest decision as the
desired state and trades whenever the held direction differs from it, so an order blocked by T+1 or a
price limit is retried on the following bars until it fills or the decision changes.

Accounting is backtesting.py's margin-style model: opening a position only pays its fees out of
cash, closing it adds ``size * (exit - entry) - fees``, and equity at a close is
``cash + size * (close - entry)``. Positions still open after the last bar are marked to the last
close without an exit fee.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .data import Bars, Panel
from .kernels import (  # noqa: F401 - re-exported for the drivers and tests
    TR_COLS,
    TR_ENTRY_BAR,
    TR_ENTRY_PRICE,
    TR_EXIT_BAR,
    TR_EXIT_PRICE,
    TR_FEE,
    TR_OPEN,
    TR_PNL,
    TR_SIZE,
    TR_SYMBOL,
    compute_stats,
    simulate,
    simulate_portfolio,
    simulate_stats,
)
from .metrics import N_STATS, N_TSTATS
from .settings import BacktestSettings

# --------------------------------------------------------------------------------------------------
# Python drivers


_EMPTY_F = np.empty(0, dtype=np.float64)
_EMPTY_I = np.empty(0, dtype=np.int64)


def _limit_arrays_single(bars: Bars, cfg: BacktestSettings) -> tuple[np.ndarray, np.ndarray, bool]:
    pl = cfg.price_limit
    if pl is False:
        return _EMPTY_F, _EMPTY_F, False
    if bars.limit_up is not None or bars.limit_down is not None:
        n = len(bars)
        up = bars.limit_up if bars.limit_up is not None else np.full(n, np.inf)
        dn = bars.limit_down if bars.limit_down is not None else np.zeros(n)
        return up, dn, True
    if pl is True:
        raise ValueError(
            "price_limit=True needs 'limit_up'/'limit_down' columns in the data; "
            "pass a fraction (e.g. price_limit=0.1) to derive limits from the previous close"
        )
    return *_limits_from_prev_close(bars.close, float(pl)), True


def _limits_from_prev_close(close: np.ndarray, frac: float) -> tuple[np.ndarray, np.ndarray]:
    """round(prev_close * (1 +/- frac), 2), half-up; no limit on the first bar (or after a NaN)."""
    prev = np.empty_like(close)
    prev[0] = np.nan
    prev[1:] = close[:-1]
    up = np.floor(prev * (1.0 + frac) * 100.0 + 0.5) / 100.0
    dn = np.floor(prev * (1.0 - frac) * 100.0 + 0.5) / 100.0
    up = np.where(np.isnan(up), np.inf, up)
    dn = np.where(np.isnan(dn), 0.0, dn)
    return up, dn


class SingleAssetContext:
    """Everything a single-asset simulation needs besides the want array, prepared once per
    (bars, settings) so a grid can reuse it across parameter combinations."""

    __slots__ = ("bars", "cfg", "ip", "fp", "day", "lim_up", "lim_dn", "years", "ppy", "buy_hold")

    def __init__(self, bars: Bars, cfg: BacktestSettings):
        self.bars = bars
        self.cfg = cfg
        up, dn, use = _limit_arrays_single(bars, cfg)
        self.lim_up, self.lim_dn = up, dn
        self.ip, self.fp = cfg.kernel_params(use)
        self.day = bars.day_ids() if cfg.t_plus_1 else _EMPTY_I
        self.years = bars.years
        self.ppy = float(cfg.periods_per_year)
        c = bars.close
        self.buy_hold = float(c[-1] / c[0] - 1.0)

    def run(self, want: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(equity, trade records, stats vector)."""
        b = self.bars
        n = len(b)
        equity = np.empty(n)
        tstats = np.zeros(N_TSTATS)
        trades = np.empty((n + 1, TR_COLS))
        events = np.flatnonzero(~np.isnan(want))
        ntr = simulate(
            b.open, b.close, want, events, self.day, self.lim_up, self.lim_dn, self.ip, self.fp,
            equity, tstats, trades, True,
        )  # fmt: skip
        stats = np.empty(N_STATS)
        compute_stats(equity, self.fp[0], self.ppy, self.years, tstats, self.buy_hold, stats)
        return equity, trades[:ntr], stats

    def stats_only(self, want: np.ndarray, equity_buf: np.ndarray, out: np.ndarray) -> np.ndarray:
        b = self.bars
        events = np.flatnonzero(~np.isnan(want))
        return simulate_stats(
            b.open, b.close, want, events, self.day, self.lim_up, self.lim_dn, self.ip, self.fp,
            self.years, self.ppy, self.buy_hold, equity_buf, out,
        )  # fmt: skip


class PortfolioContext:
    """Prepared inputs of a portfolio simulation (see `simulate_portfolio`)."""

    __slots__ = ("panel", "cfg", "ip", "fp", "day", "lim_up", "lim_dn", "years", "ppy", "buy_hold")

    def __init__(self, panel: Panel, cfg: BacktestSettings):
        self.panel = panel
        self.cfg = cfg
        pl = cfg.price_limit
        n, m = panel.close.shape
        use = pl is not False
        if not use:
            up = dn = np.empty((0, 0))
        elif panel.limit_up is not None:
            up, dn = panel.limit_up, panel.limit_down
        elif pl is True:
            raise ValueError("price_limit=True needs 'limit_up'/'limit_down' columns in the data")
        else:
            prev = np.vstack([np.full((1, m), np.nan), panel.close_ffill[:-1]])
            up = np.floor(prev * (1.0 + pl) * 100.0 + 0.5) / 100.0
            dn = np.floor(prev * (1.0 - pl) * 100.0 + 0.5) / 100.0
            up = np.where(np.isnan(up), np.inf, up)
            dn = np.where(np.isnan(dn), 0.0, dn)
        self.lim_up, self.lim_dn = np.ascontiguousarray(up), np.ascontiguousarray(dn)
        self.ip, self.fp = cfg.kernel_params(use)
        self.day = panel.day_ids() if cfg.t_plus_1 else _EMPTY_I
        self.years = panel.years
        self.ppy = float(cfg.periods_per_year)
        first = np.array(
            [panel.close[~np.isnan(panel.close[:, j]), j][0] for j in range(m)], dtype=np.float64
        )
        self.buy_hold = float(np.mean(panel.close_ffill[-1] / first - 1.0))

    def run(self, member: np.ndarray, rebalance: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.panel
        n, m = p.close.shape
        equity = np.empty(n)
        tstats = np.zeros(N_TSTATS)
        # A symbol can only be bought again after a rebalance row re-selects it.
        trades = np.empty(((int(rebalance.sum()) + 1) * m, TR_COLS))
        ntr = simulate_portfolio(
            p.open, p.close, p.close_ffill, rebalance, member, self.day, self.lim_up, self.lim_dn,
            self.ip, self.fp, equity, tstats, trades, True,
        )  # fmt: skip
        stats = np.empty(N_STATS)
        compute_stats(equity, self.fp[0], self.ppy, self.years, tstats, self.buy_hold, stats)
        rec = trades[:ntr]
        # Records are written when a trade closes; list them by entry bar, then symbol.
        rec = rec[np.lexsort((rec[:, TR_SYMBOL], rec[:, TR_ENTRY_BAR]))]
        return equity, rec, stats


_TRADE_FLOAT_COLS = ("entry_price", "exit_price", "size", "pnl", "commission")


def trades_frame(
    records: np.ndarray, index: pd.DatetimeIndex, symbols: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Kernel trade records -> the public trades DataFrame."""
    eb = records[:, TR_ENTRY_BAR].astype(np.int64)
    xb = records[:, TR_EXIT_BAR].astype(np.int64)
    times = index.values if index.tz is None else index  # numpy take is much cheaper
    cols: dict[str, Any] = {}
    if symbols is not None:
        cols["symbol"] = np.asarray(symbols, dtype=object)[records[:, TR_SYMBOL].astype(np.int64)]
    cols["entry_time"] = times[eb]
    cols["exit_time"] = times[xb]
    for k, name in zip(
        (TR_ENTRY_PRICE, TR_EXIT_PRICE, TR_SIZE, TR_PNL, TR_FEE), _TRADE_FLOAT_COLS, strict=True
    ):
        cols[name] = np.ascontiguousarray(records[:, k])
    cols["entry_bar"] = eb
    cols["exit_bar"] = xb
    cols["is_open"] = records[:, TR_OPEN] > 0.5
    return pd.DataFrame(cols)


def symbol_trades_frame(parts: list[tuple[str, np.ndarray, pd.DatetimeIndex]]) -> pd.DataFrame:
    """Single-asset results of many symbols -> one trades DataFrame with a trailing ``symbol`` column.

    Equal to concatenating ``trades_frame(records, index).assign(symbol=s)`` over the parts (empty
    ones skipped), without building a DataFrame per symbol: a universe of 100 symbols costs a few ms
    instead of ~100 ms. Empty when no part has a trade.
    """
    parts = [(s, rec, idx) for s, rec, idx in parts if len(rec)]
    if not parts:
        return pd.DataFrame()
    rec = np.concatenate([p[1] for p in parts])
    entry, exit_ = [], []
    for _, r, idx in parts:
        times = idx.values if idx.tz is None else idx
        entry.append(times[r[:, TR_ENTRY_BAR].astype(np.int64)])
        exit_.append(times[r[:, TR_EXIT_BAR].astype(np.int64)])
    cols: dict[str, Any] = {"entry_time": np.concatenate(entry), "exit_time": np.concatenate(exit_)}
    for k, name in zip(
        (TR_ENTRY_PRICE, TR_EXIT_PRICE, TR_SIZE, TR_PNL, TR_FEE), _TRADE_FLOAT_COLS, strict=True
    ):
        cols[name] = np.ascontiguousarray(rec[:, k])
    cols["entry_bar"] = rec[:, TR_ENTRY_BAR].astype(np.int64)
    cols["exit_bar"] = rec[:, TR_EXIT_BAR].astype(np.int64)
    cols["is_open"] = rec[:, TR_OPEN] > 0.5
    cols["symbol"] = np.repeat(np.array([p[0] for p in parts], dtype=object), [len(p[1]) for p in parts])
    return pd.DataFrame(cols)
