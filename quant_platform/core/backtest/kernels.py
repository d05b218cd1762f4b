"""All numba-compiled code of the backtest engine: indicators, simulations, statistics, grid loops.

Everything compiled lives in this one module on purpose: numba's on-disk cache (``cache=True``) is
invalidated per source file, and a cached function embeds the compiled code of the functions it calls,
so kernels spread over several files could silently keep running a stale copy of a changed callee.

Conventions (the Python drivers in engine.py, metrics.py and grid.py rely on them):

* ``ip`` (int64): fill_close, sizing (0 all-in integer, 1 all-in fractional, 2 fixed), long_only,
  t_plus_1, use_limits; ``fp`` (float64): cash, commission, min_commission, stamp_duty, slippage,
  fixed quantity, lot size.
* A *want* array holds, per bar, +1 / -1 / 0 (be long / short / flat) or NaN (no new decision).
* Trade records: rows of (entry_bar, exit_bar, entry_price, exit_price, size, pnl, fees, is_open,
  symbol index); ``tstats``: closed trades, wins, gross profit, gross loss, commissions, stamp duty,
  exposed bars, open positions.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# --------------------------------------------------------------------------------------------------
# Indicators: causal, NaN while warming up.


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
    head = min(w - 1, n)
    for t in range(head):
        out[t] = np.nan
    if w - 1 < n:
        out[w - 1] = x0 + cs[w - 1] / w
    # Branch-free body over local slices, so that the compiler vectorises it.
    dst = out[w:]
    hi = cs[w:]
    lo = cs[: max(n - w, 0)]
    for i in range(dst.shape[0]):
        dst[i] = x0 + (hi[i] - lo[i]) / w
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


# --------------------------------------------------------------------------------------------------
# Input checks


@njit(cache=True)
def all_positive_finite(a):  # pragma: no cover - compiled
    """True when every value is a finite number > 0 (False for NaN, inf, 0, negatives)."""
    for i in range(a.shape[0]):
        x = a[i]
        if not (x > 0.0 and x < np.inf):
            return False
    return True


# --------------------------------------------------------------------------------------------------
# Simulation

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
def _mark_equity(equity, close, base, pos, a, b):  # pragma: no cover - compiled
    """equity[a:b] = base + pos * close[a:b]; returns how many of those are <= 0.

    Written over local slices: once inlined into the simulation, a loop indexing the caller's arrays
    directly is not vectorised (the stores might alias the arrays' descriptors) and runs ~8x slower."""
    eq = equity[a:b]
    px = close[a:b]
    nbad = 0
    for k in range(px.shape[0]):
        e = base + pos * px[k]
        eq[k] = e
        nbad += e <= 0.0
    return nbad


@njit(cache=True)
def simulate(
    open_, close, want, events, day, lim_up, lim_dn, ip, fp, equity, tstats, trades, record
):  # pragma: no cover
    """Single-asset simulation. Fills `equity` (len n) and `tstats`; if `record`, writes trades into
    `trades` (capacity >= n + 1 rows) and returns their count.

    `events` lists, in increasing order, the bars whose `want` is not NaN. Between two of them, with
    no order pending, nothing can happen but marking the equity, which is done in a tight
    (vectorisable) loop."""
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

    pos = 0.0  # signed units held
    cur = 0.0  # sign of pos
    ep = 0.0  # entry price
    base = cash  # equity at a close = base + pos * close, base = cash - pos * ep
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
    ev = 0
    n_ev = events.shape[0]

    t = 0
    while t < n:
        if fill_close:
            w = want[t]
            if w == w:
                desired = 0.0 if (long_only and w < 0.0) else w
        held = cur != 0.0
        if desired != cur and (fill_close or t > 0):
            px = close[t] if fill_close else open_[t]
            if cur != 0.0:
                sell = cur > 0.0
                blocked = False
                if sell and t1 and day[t] == eday:
                    blocked = True
                if use_lim and ((sell and px <= lim_dn[t] + _TOL) or (not sell and px >= lim_up[t] - _TOL)):
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
                    cur = 0.0
                    ep = 0.0
                    base = cash
            if cur == 0.0 and desired != 0.0:
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
                        cur = 1.0 if buy else -1.0
                        ep = fpx
                        base = cash - pos * ep
                        efee = fee
                        ebar = t
                        eday = day[t] if t1 else 0
        if held or cur != 0.0:
            exposed += 1.0
        eq = base + pos * close[t]
        if eq <= 0.0:
            # Ruined: liquidate at this close (no fee) and stay flat at zero equity.
            if cur != 0.0:
                pnl = pos * (close[t] - ep) - efee
                closed += 1.0
                if pnl < 0.0:
                    gl -= pnl
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
                cur = 0.0
            for k in range(t, n):
                equity[k] = 0.0
            break
        equity[t] = eq
        if not fill_close:
            w = want[t]
            if w == w:
                desired = 0.0 if (long_only and w < 0.0) else w
        t += 1
        # Fast-forward to the next decision bar while nothing is pending: only mark the equity.
        if desired == cur and t < n:
            while ev < n_ev and events[ev] < t:
                ev += 1
            stop = events[ev] if ev < n_ev else n
            if stop > t:
                nbad = _mark_equity(equity, close, base, pos, t, stop)
                if nbad > 0:  # ruin inside the span: let the full step handle that bar
                    k = t
                    while equity[k] > 0.0:
                        k += 1
                    stop = k
                if cur != 0.0:
                    exposed += stop - t
                t = stop

    open_trades = 0.0
    if cur != 0.0:
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
    open_, close, want, events, day, lim_up, lim_dn, ip, fp, years, ppy, buy_hold, equity, out
):  # pragma: no cover
    """`simulate` without trade records followed by `compute_stats` into `out` (grid hot path)."""
    tstats = np.zeros(8)
    dummy = np.empty((0, 9))
    simulate(open_, close, want, events, day, lim_up, lim_dn, ip, fp, equity, tstats, dummy, False)
    compute_stats(equity, fp[0], ppy, years, tstats, buy_hold, out)
    return out


# --------------------------------------------------------------------------------------------------
# Statistics

# Layout of the per-run trade accumulator filled by the kernels.
T_CLOSED, T_WINS, T_GROSS_PROFIT, T_GROSS_LOSS, T_COMMISSION, T_STAMP, T_EXPOSED, T_OPEN = range(8)
N_TSTATS = 8


@njit(cache=True, fastmath={"reassoc", "nsz", "contract"})
def _return_sums(equity):  # pragma: no cover - compiled
    """sum(r), sum(r^2), sum(min(r, 0)^2) of the per-bar returns r_t = E_t / E_{t-1} - 1 (0 after a
    zero equity). Reassociation lets the compiler vectorise the divisions; the order of the sums is
    fixed by the compiled code, so equal inputs give bit-equal sums. Returns are small, so the one-pass
    variance sum(r^2) - k * mean^2 loses no meaningful precision."""
    s1 = 0.0
    s2 = 0.0
    dsq = 0.0
    for t in range(1, equity.shape[0]):
        p = equity[t - 1]
        r = equity[t] / p - 1.0 if p > 0.0 else 0.0
        s1 += r
        s2 += r * r
        m = min(r, 0.0)
        dsq += m * m
    return s1, s2, dsq


@njit(cache=True)
def _max_drawdown(equity):  # pragma: no cover - compiled
    """min_t(E_t / max_{s<=t} E_s - 1). Blocks of 4 bars are skipped when even their lowest value
    stays above the deepest drawdown level against the block's highest possible peak (so the running
    maximum is one dependent step per block); only the rare blocks that might deepen the drawdown are
    scanned bar by bar."""
    n = equity.shape[0]
    peak = equity[0]
    mdd = 0.0
    keep = 1.0  # 1 + mdd
    t = 1
    while t + 4 <= n:
        e0 = equity[t]
        e1 = equity[t + 1]
        e2 = equity[t + 2]
        e3 = equity[t + 3]
        top = max(peak, max(max(e0, e1), max(e2, e3)))
        if min(min(e0, e1), min(e2, e3)) < top * keep:
            for i in range(t, t + 4):
                e = equity[i]
                peak = max(peak, e)
                if e < peak * keep and peak > 0.0:
                    dd = e / peak - 1.0
                    if dd < mdd:
                        mdd = dd
                        keep = 1.0 + mdd
        else:
            peak = top
        t += 4
    for i in range(t, n):
        e = equity[i]
        peak = max(peak, e)
        if e < peak * keep and peak > 0.0:
            dd = e / peak - 1.0
            if dd < mdd:
                mdd = dd
                keep = 1.0 + mdd
    return mdd


@njit(cache=True)
def compute_stats(equity, cash0, ppy, years, tstats, buy_hold, out):  # pragma: no cover - compiled
    """Fill `out` (len N_STATS, order of STAT_NAMES) from the equity curve and trade accumulators."""
    n = equity.shape[0]
    final = equity[n - 1]
    mdd = _max_drawdown(equity)
    s1, s2, dsq = _return_sums(equity)
    k = n - 1
    mean = s1 / k if k > 0 else 0.0
    m2 = s2 - s1 * mean
    if m2 < 0.0:
        m2 = 0.0
    sq = np.sqrt(ppy)
    std = np.sqrt(m2 / (k - 1)) if k > 1 else np.nan
    out[0] = final / cash0 - 1.0
    if years > 0.0:
        out[1] = (final / cash0) ** (1.0 / years) - 1.0 if final > 0.0 else -1.0
    else:
        out[1] = np.nan
    out[2] = std * sq
    out[3] = mean / std * sq if std > 0.0 else np.nan
    down = np.sqrt(dsq / k) if k > 0 else 0.0
    out[4] = mean / down * sq if down > 0.0 else np.nan
    out[5] = mdd
    out[6] = out[1] / -mdd if mdd < 0.0 else np.nan
    closed = tstats[0]
    out[7] = closed
    out[8] = tstats[1] / closed if closed > 0 else np.nan
    out[9] = tstats[6] / n
    out[10] = final
    out[11] = buy_hold
    gp = tstats[2]
    gl = tstats[3]
    if gl > 0.0:
        out[12] = gp / gl
    elif gp > 0.0:
        out[12] = np.inf
    else:
        out[12] = np.nan
    out[13] = tstats[4]
    out[14] = tstats[5]
    out[15] = tstats[7]
    out[16] = 1.0 if tstats[7] > 0 else 0.0
    return out


# --------------------------------------------------------------------------------------------------
# Grid loops


@njit(cache=True)
def ma_matrix(close, windows, kind, out):  # pragma: no cover - compiled
    """Row k of `out` (windows x bars) = SMA (kind 0, from one running sum) or EMA (kind 1) of
    `close` over windows[k]."""
    if kind == 0:
        cs = centered_cumsum(close)
        for k in range(windows.shape[0]):
            sma_from_cumsum(cs, close[0], windows[k], out[k])
    else:
        for k in range(windows.shape[0]):
            ema_into(close, windows[k], out[k])
    return out


@njit(cache=True)
def cross_want_into(fast, slow, want, events):  # pragma: no cover - compiled
    """`cross_signals_into` written straight as a want array (+1 / -1 on a cross, NaN otherwise) by
    a branch-free (vectorisable) pass; the crossing bars then go to `events`, whose count is
    returned."""
    n = fast.shape[0]
    if n > 0:
        want[0] = np.nan
    for t in range(1, n):
        up = (fast[t - 1] < slow[t - 1]) & (fast[t] > slow[t])
        down = (fast[t - 1] > slow[t - 1]) & (fast[t] < slow[t])
        want[t] = 1.0 if up else (-1.0 if down else np.nan)
    m = 0
    for t in range(n):
        if want[t] == want[t]:
            events[m] = t
            m += 1
    return m


@njit(cache=True)
def cross_chunk(
    open_, close, day, lim_up, lim_dn, ip, fp, years, ppy, buy_hold, mas, fast_idx, slow_idx, out
):  # pragma: no cover
    """Fused loop of the MA-cross fast path: for each combination k, the want array from rows
    mas[fast_idx[k]] / mas[slow_idx[k]], the simulation, then the stats into out[k]. Buffers are
    bars-sized and reused across combinations."""
    n = close.shape[0]
    want = np.empty(n)
    events = np.empty(n, dtype=np.int64)
    equity = np.empty(n)
    tstats = np.zeros(8)
    dummy = np.empty((0, 9))
    for k in range(fast_idx.shape[0]):
        m = cross_want_into(mas[fast_idx[k]], mas[slow_idx[k]], want, events)
        simulate(open_, close, want, events[:m], day, lim_up, lim_dn, ip, fp, equity, tstats, dummy, False)
        compute_stats(equity, fp[0], ppy, years, tstats, buy_hold, out[k])
    return out
