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

import math
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from .data import Bars, Panel
from .metrics import N_STATS, N_TSTATS, compute_stats
from .settings import BacktestSettings

# Columns of the kernels' trade record buffer.
TR_ENTRY_BAR, TR_EXIT_BAR, TR_ENTRY_PRICE, TR_EXIT_PRICE, TR_SIZE, TR_PNL, TR_FEE, TR_OPEN, TR_SYMBOL = range(
    9
)
TR_COLS = 9
_TOL = 1e-9  # price tolerance of the limit-up / limit-down test


@njit(cache=True, inline="always")
def _units(budget, px, comm, min_comm, extra, sizing, fixed, lot):  # pragma: no cover - compiled
    """Units a position of price `px` may have: the largest u with
    u * px * (1 + extra) + max(u * px * comm, min_comm) <= budget, then per sizing mode."""
    if budget <= 0.0 or px <= 0.0:
        return 0.0
    a = budget / (px * (1.0 + comm + extra))
    if min_comm > 0.0:
        b = (budget - min_comm) / (px * (1.0 + extra))
        if b < a:
            a = b
    if a <= 0.0:
        return 0.0
    if sizing == 1:  # all-in fractional
        return a
    afford = math.floor(a / lot) * lot
    if sizing == 0:  # all-in integer
        return afford
    u = math.floor(fixed / lot) * lot  # fixed quantity, capped at what the budget pays for
    return u if u <= afford else afford


@njit(cache=True)
def simulate(
    open_, close, want, day, lim_up, lim_dn, ip, fp, equity, tstats, trades, record
):  # pragma: no cover
    """Single-asset simulation. Fills `equity` (len n) and `tstats`; if `record`, writes trades into
    `trades` (capacity >= n + 1 rows) and returns their count."""
    n = close.shape[0]
    fill_close = ip[0] == 1
    sizing = ip[1]
    long_only = ip[2] == 1
    t1 = ip[3] == 1
    use_lim = ip[4] == 1
    cash = fp[0]
    comm = fp[1]
    min_comm = fp[2]
    stamp = fp[3]
    slip = fp[4]
    fixed = fp[5]
    lot = fp[6]

    pos = 0.0
    ep = 0.0
    efee = 0.0
    ebar = 0
    eday = -1
    desired = 0.0
    ntr = 0
    closed = 0.0
    wins = 0.0
    gp = 0.0
    gl = 0.0
    tot_comm = 0.0
    tot_stamp = 0.0
    exposed = 0.0
    dead = False

    for t in range(n):
        if dead:
            equity[t] = 0.0
            continue
        pos_start = pos
        if fill_close:
            w = want[t]
            if w == w:
                desired = 0.0 if (long_only and w < 0.0) else w
        if fill_close or t > 0:
            px = close[t] if fill_close else open_[t]
            cur = 1.0 if pos > 0.0 else (-1.0 if pos < 0.0 else 0.0)
            if desired != cur:
                if pos != 0.0:
                    sell = pos > 0.0
                    blocked = False
                    if sell and t1 and day[t] == eday:
                        blocked = True
                    if use_lim and (
                        (sell and px <= lim_dn[t] + _TOL) or (not sell and px >= lim_up[t] - _TOL)
                    ):
                        blocked = True
                    if not blocked:
                        xp = px * (1.0 - slip) if sell else px * (1.0 + slip)
                        notional = abs(pos) * xp
                        c = notional * comm
                        if c < min_comm:
                            c = min_comm
                        s = notional * stamp if sell else 0.0
                        fee = c + s
                        gross = pos * (xp - ep)
                        pnl = gross - efee - fee
                        cash += gross - fee
                        tot_comm += c
                        tot_stamp += s
                        closed += 1.0
                        if pnl > 0.0:
                            wins += 1.0
                            gp += pnl
                        elif pnl < 0.0:
                            gl -= pnl
                        if record:
                            trades[ntr, 0] = ebar
                            trades[ntr, 1] = t
                            trades[ntr, 2] = ep
                            trades[ntr, 3] = xp
                            trades[ntr, 4] = pos
                            trades[ntr, 5] = pnl
                            trades[ntr, 6] = efee + fee
                            trades[ntr, 7] = 0.0
                            trades[ntr, 8] = 0.0
                            ntr += 1
                        pos = 0.0
                        ep = 0.0
                if pos == 0.0 and desired != 0.0:
                    buy = desired > 0.0
                    blocked = False
                    if use_lim and ((buy and px >= lim_up[t] - _TOL) or (not buy and px <= lim_dn[t] + _TOL)):
                        blocked = True
                    if not blocked:
                        fpx = px * (1.0 + slip) if buy else px * (1.0 - slip)
                        extra = 0.0 if buy else stamp
                        u = _units(cash, fpx, comm, min_comm, extra, sizing, fixed, lot)
                        if u > 0.0:
                            notional = u * fpx
                            c = notional * comm
                            if c < min_comm:
                                c = min_comm
                            s = notional * extra
                            fee = c + s
                            cash -= fee
                            tot_comm += c
                            tot_stamp += s
                            pos = u if buy else -u
                            ep = fpx
                            efee = fee
                            ebar = t
                            eday = day[t] if t1 else 0
        eq = cash + pos * (close[t] - ep) if pos != 0.0 else cash
        if pos_start != 0.0 or pos != 0.0:
            exposed += 1.0
        if eq <= 0.0:
            # Ruined: liquidate at this close (no fee) and stay flat at zero equity.
            if pos != 0.0:
                gross = pos * (close[t] - ep)
                pnl = gross - efee
                closed += 1.0
                gl -= pnl if pnl < 0.0 else 0.0
                if record:
                    trades[ntr, 0] = ebar
                    trades[ntr, 1] = t
                    trades[ntr, 2] = ep
                    trades[ntr, 3] = close[t]
                    trades[ntr, 4] = pos
                    trades[ntr, 5] = pnl
                    trades[ntr, 6] = efee
                    trades[ntr, 7] = 0.0
                    trades[ntr, 8] = 0.0
                    ntr += 1
                pos = 0.0
            cash = 0.0
            eq = 0.0
            dead = True
        equity[t] = eq
        if not fill_close:
            w = want[t]
            if w == w:
                desired = 0.0 if (long_only and w < 0.0) else w

    open_trades = 0.0
    if pos != 0.0:
        open_trades = 1.0
        if record:
            last = close[n - 1]
            trades[ntr, 0] = ebar
            trades[ntr, 1] = n - 1
            trades[ntr, 2] = ep
            trades[ntr, 3] = last
            trades[ntr, 4] = pos
            trades[ntr, 5] = pos * (last - ep) - efee
            trades[ntr, 6] = efee
            trades[ntr, 7] = 1.0
            trades[ntr, 8] = 0.0
            ntr += 1
    tstats[0] = closed
    tstats[1] = wins
    tstats[2] = gp
    tstats[3] = gl
    tstats[4] = tot_comm
    tstats[5] = tot_stamp
    tstats[6] = exposed
    tstats[7] = open_trades
    return ntr


@njit(cache=True)
def simulate_portfolio(  # pragma: no cover - compiled
    open_, close, close_ff, rebalance, member, day, lim_up, lim_dn, ip, fp, equity, tstats, trades, record
):
    """Long-only multi-asset simulation over (bars x symbols) arrays.

    On a rebalance row `member[t, j]` says whether symbol j should be held. Held symbols that left the
    selection are sold first; then every selected symbol not yet held is bought, each with
    ``cash / (number of symbols still to buy)`` (all-in sizing) or the fixed quantity. Symbols that
    stay selected are kept as they are. A symbol without a price on a bar (NaN) or blocked by T+1 / a
    price limit is retried on later bars. Returns the number of recorded trades.
    """
    n, m = close.shape
    fill_close = ip[0] == 1
    sizing = ip[1]
    t1 = ip[3] == 1
    use_lim = ip[4] == 1
    cash = fp[0]
    comm = fp[1]
    min_comm = fp[2]
    stamp = fp[3]
    slip = fp[4]
    fixed = fp[5]
    lot = fp[6]

    units = np.zeros(m)
    ep = np.zeros(m)
    efee = np.zeros(m)
    ebar = np.zeros(m, dtype=np.int64)
    eday = np.full(m, -1, dtype=np.int64)
    target = np.zeros(m, dtype=np.bool_)
    pend = np.empty(m, dtype=np.int64)
    ntr = 0
    closed = 0.0
    wins = 0.0
    gp = 0.0
    gl = 0.0
    tot_comm = 0.0
    tot_stamp = 0.0
    exposed = 0.0

    for t in range(n):
        held_start = False
        for j in range(m):
            if units[j] != 0.0:
                held_start = True
                break
        if fill_close and rebalance[t]:
            for j in range(m):
                target[j] = member[t, j]
        if fill_close or t > 0:
            # 1) sells
            for j in range(m):
                if units[j] == 0.0 or target[j]:
                    continue
                px = close[t, j] if fill_close else open_[t, j]
                if px != px:
                    continue
                if t1 and day[t] == eday[j]:
                    continue
                if use_lim and px <= lim_dn[t, j] + _TOL:
                    continue
                xp = px * (1.0 - slip)
                notional = units[j] * xp
                c = notional * comm
                if c < min_comm:
                    c = min_comm
                s = notional * stamp
                fee = c + s
                pnl = units[j] * (xp - ep[j]) - efee[j] - fee
                cash += notional - fee
                tot_comm += c
                tot_stamp += s
                closed += 1.0
                if pnl > 0.0:
                    wins += 1.0
                    gp += pnl
                elif pnl < 0.0:
                    gl -= pnl
                if record:
                    trades[ntr, 0] = ebar[j]
                    trades[ntr, 1] = t
                    trades[ntr, 2] = ep[j]
                    trades[ntr, 3] = xp
                    trades[ntr, 4] = units[j]
                    trades[ntr, 5] = pnl
                    trades[ntr, 6] = efee[j] + fee
                    trades[ntr, 7] = 0.0
                    trades[ntr, 8] = j
                    ntr += 1
                units[j] = 0.0
            # 2) buys
            k = 0
            for j in range(m):
                if not target[j] or units[j] != 0.0:
                    continue
                px = close[t, j] if fill_close else open_[t, j]
                if px != px:
                    continue
                if use_lim and px >= lim_up[t, j] - _TOL:
                    continue
                pend[k] = j
                k += 1
            for q in range(k):
                j = pend[q]
                px = close[t, j] if fill_close else open_[t, j]
                fpx = px * (1.0 + slip)
                budget = cash / (k - q)
                if sizing == 2:
                    budget = cash
                u = _units(budget, fpx, comm, min_comm, 0.0, sizing, fixed, lot)
                if u <= 0.0:
                    continue
                notional = u * fpx
                c = notional * comm
                if c < min_comm:
                    c = min_comm
                cash -= notional + c
                tot_comm += c
                units[j] = u
                ep[j] = fpx
                efee[j] = c
                ebar[j] = t
                eday[j] = day[t] if t1 else 0
        eq = cash
        held_end = False
        for j in range(m):
            if units[j] != 0.0:
                held_end = True
                eq += units[j] * close_ff[t, j]
        if held_start or held_end:
            exposed += 1.0
        equity[t] = eq
        if (not fill_close) and rebalance[t]:
            for j in range(m):
                target[j] = member[t, j]

    open_trades = 0.0
    for j in range(m):
        if units[j] != 0.0:
            open_trades += 1.0
            if record:
                last = close_ff[n - 1, j]
                trades[ntr, 0] = ebar[j]
                trades[ntr, 1] = n - 1
                trades[ntr, 2] = ep[j]
                trades[ntr, 3] = last
                trades[ntr, 4] = units[j]
                trades[ntr, 5] = units[j] * (last - ep[j]) - efee[j]
                trades[ntr, 6] = efee[j]
                trades[ntr, 7] = 1.0
                trades[ntr, 8] = j
                ntr += 1
    tstats[0] = closed
    tstats[1] = wins
    tstats[2] = gp
    tstats[3] = gl
    tstats[4] = tot_comm
    tstats[5] = tot_stamp
    tstats[6] = exposed
    tstats[7] = open_trades
    return ntr


@njit(cache=True)
def simulate_stats(
    open_, close, want, day, lim_up, lim_dn, ip, fp, years, ppy, buy_hold, equity, out
):  # pragma: no cover
    """`simulate` without trade records followed by `compute_stats` into `out` (grid hot path)."""
    tstats = np.zeros(8)
    dummy = np.empty((0, 9))
    simulate(open_, close, want, day, lim_up, lim_dn, ip, fp, equity, tstats, dummy, False)
    compute_stats(equity, fp[0], ppy, years, tstats, buy_hold, out)
    return out


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
        ntr = simulate(
            b.open, b.close, want, self.day, self.lim_up, self.lim_dn, self.ip, self.fp, equity, tstats,
            trades, True,
        )  # fmt: skip
        stats = np.empty(N_STATS)
        compute_stats(equity, self.fp[0], self.ppy, self.years, tstats, self.buy_hold, stats)
        return equity, trades[:ntr], stats

    def stats_only(self, want: np.ndarray, equity_buf: np.ndarray, out: np.ndarray) -> np.ndarray:
        b = self.bars
        return simulate_stats(
            b.open, b.close, want, self.day, self.lim_up, self.lim_dn, self.ip, self.fp, self.years,
            self.ppy, self.buy_hold, equity_buf, out,
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
