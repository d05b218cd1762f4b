"""Batched parameter grids: every combination x every symbol, streamed with bounded memory.

`grid` evaluates the cartesian product of a parameter grid on each symbol and returns one row per
(symbol, combination) with the parameters and every statistic of `run`. The numbers are identical to
calling `run` per combination: the same compiled simulation and statistics run on the same indicator
values.

Memory stays bounded: symbols are converted and processed one at a time, combinations in chunks, and
nothing of size combinations x bars is ever built. For ``sma_cross`` / ``ema_cross`` a fused compiled
loop handles a whole chunk of combinations per call: the symbol's running sum (SMA) is computed once,
one bars-sized moving-average array per distinct window, and each combination then costs one signal
pass and one simulation pass over the bars with its statistics computed right after, into a
preallocated row. Other strategies call their Python function per combination, then the same kernels.

Progress and budgets: ``on_progress(done, total)`` is called after every chunk (return ``False`` to
stop early); ``max_evals`` caps the number of evaluations and ``time_budget`` (seconds) the wall time.
The frame's ``attrs`` tell how the run ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .data import count_symbols, iter_universe, prepare_panel
from .engine import PortfolioContext, SingleAssetContext
from .kernels import cross_chunk, ma_matrix
from .metrics import BOOL_STATS, INT_STATS, N_STATS, STAT_NAMES
from .runner import make_settings
from .settings import BacktestSettings
from .strategies import StrategySpec, expand_grid, get_strategy, to_membership, to_want

PORTFOLIO_SYMBOL = "*"
"""`symbol` value of the rows of a portfolio strategy (one row per combination, whole universe)."""

ProgressFn = Callable[[int, int], bool | None]


class _Stop(Exception):
    pass


class _Driver:
    """Chunk bookkeeping: evaluation budget, time budget, progress callback."""

    def __init__(
        self, total: int, on_progress: ProgressFn | None, max_evals: int | None, time_budget: float | None
    ):
        self.total = total if max_evals is None else min(total, max_evals)
        self.grand_total = total
        self.on_progress = on_progress
        self.max_evals = max_evals
        self.time_budget = time_budget
        self.t0 = time.perf_counter()
        self.done = 0
        self.stopped = "completed"

    def allowance(self, want: int) -> int:
        """How many of the next `want` evaluations may run (raises _Stop when none)."""
        if self.max_evals is not None and self.done >= self.max_evals:
            self.stopped = "max_evals"
            raise _Stop
        if self.time_budget is not None and time.perf_counter() - self.t0 >= self.time_budget:
            self.stopped = "time_budget"
            raise _Stop
        if self.max_evals is not None:
            want = min(want, self.max_evals - self.done)
        return want

    def advance(self, k: int) -> None:
        self.done += k
        if self.on_progress is not None and self.on_progress(self.done, self.total) is False:
            self.stopped = "cancelled"
            raise _Stop
        if self.max_evals is not None and self.done >= self.max_evals and self.done < self.grand_total:
            self.stopped = "max_evals"
            raise _Stop


def _chunks(n: int, size: int):
    for a in range(0, n, size):
        yield a, min(n, a + size)


def grid(
    data: Any,
    strategy: str | StrategySpec | Callable[..., Any],
    grid: Mapping[str, Any],
    *,
    on_progress: ProgressFn | None = None,
    max_evals: int | None = None,
    time_budget: float | None = None,
    chunk_size: int = 256,
    **settings: Any,
) -> pd.DataFrame:
    """Evaluate every combination of `grid` on every symbol of `data`; see `quant_platform.backtest.grid`."""
    spec = get_strategy(strategy)
    cfg = make_settings(settings, spec)
    if max_evals is not None and (not isinstance(max_evals, int) or max_evals < 0):
        raise ValueError(f"max_evals must be a non-negative int, got {max_evals!r}")
    if time_budget is not None and not time_budget >= 0:
        raise ValueError(f"time_budget must be >= 0 seconds, got {time_budget!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    combos, skipped = expand_grid(spec, grid)
    param_names = list(spec.params) if spec.params is not None else list(grid)
    multi = spec.universe == "multi"
    n_sym = 1 if multi else count_symbols(data)
    driver = _Driver(len(combos) * n_sym, on_progress, max_evals, time_budget)

    symbols: list[Any] = []
    combo_ids: list[np.ndarray] = []
    blocks: list[np.ndarray] = []
    try:
        if combos:
            if multi:
                _run_portfolio(data, spec, cfg, combos, driver, chunk_size, symbols, combo_ids, blocks)
            else:
                _run_single(data, spec, cfg, combos, driver, chunk_size, symbols, combo_ids, blocks)
    except _Stop:
        pass
    return _frame(spec, cfg, combos, skipped, param_names, symbols, combo_ids, blocks, driver)


def _run_single(data, spec, cfg, combos, driver, chunk_size, symbols, combo_ids, blocks) -> None:
    fast_path = spec.grid_kernel in ("sma", "ema")
    if fast_path:
        windows = np.array(sorted({c["fast"] for c in combos} | {c["slow"] for c in combos}), dtype=np.int64)
        pos = {int(w): i for i, w in enumerate(windows)}
        fast_idx = np.array([pos[c["fast"]] for c in combos], dtype=np.int64)
        slow_idx = np.array([pos[c["slow"]] for c in combos], dtype=np.int64)
        kind = 0 if spec.grid_kernel == "sma" else 1
        ma_buffers: dict[int, np.ndarray] = {}  # by bar count: symbols usually share one length
    for bars in iter_universe(data):
        ctx = SingleAssetContext(bars, cfg)
        n = len(bars)
        if fast_path:
            mas = ma_buffers.get(n)
            if mas is None:
                if len(ma_buffers) > 8:
                    ma_buffers.clear()
                mas = ma_buffers[n] = np.empty((len(windows), n))
            ma_matrix(bars.close, windows, kind, mas)
        else:
            equity = np.empty(n)
        for a, b in _chunks(len(combos), chunk_size):
            b = a + driver.allowance(b - a)
            out = np.empty((b - a, N_STATS))
            if fast_path:
                cross_chunk(
                    bars.open, bars.close, ctx.day, ctx.lim_up, ctx.lim_dn, ctx.ip, ctx.fp, ctx.years,
                    ctx.ppy, ctx.buy_hold, mas, fast_idx[a:b], slow_idx[a:b], out,
                )  # fmt: skip
            else:
                for k in range(a, b):
                    want = to_want(spec.fn(bars, combos[k]), n, spec.output, spec.name)
                    ctx.stats_only(want, equity, out[k - a])
            symbols.append((bars.symbol, b - a))
            combo_ids.append(np.arange(a, b))
            blocks.append(out)
            driver.advance(b - a)


def _run_portfolio(data, spec, cfg, combos, driver, chunk_size, symbols, combo_ids, blocks) -> None:
    panel = prepare_panel(data)
    ctx = PortfolioContext(panel, cfg)
    for a, b in _chunks(len(combos), chunk_size):
        b = a + driver.allowance(b - a)
        out = np.empty((b - a, N_STATS))
        for k in range(a, b):
            member, rebalance = to_membership(spec.fn(panel, combos[k]), panel.close.shape, spec.name)
            _, _, stats = ctx.run(member, rebalance)
            out[k - a] = stats
        symbols.append((PORTFOLIO_SYMBOL, b - a))
        combo_ids.append(np.arange(a, b))
        blocks.append(out)
        driver.advance(b - a)


def _frame(
    spec, cfg: BacktestSettings, combos, skipped, param_names, symbols, combo_ids, blocks, driver
) -> pd.DataFrame:
    ids = np.concatenate(combo_ids) if combo_ids else np.empty(0, dtype=np.int64)
    values = np.vstack(blocks) if blocks else np.empty((0, N_STATS))
    cols: dict[str, Any] = {}
    sym = [s for s, k in symbols for _ in range(k)]
    cols["symbol"] = pd.array(sym, dtype=object) if sym else pd.array([], dtype=object)
    for name in param_names:
        col = [combos[i][name] for i in ids.tolist()]
        cols[name] = np.asarray(col) if col else np.empty(0)
    for j, name in enumerate(STAT_NAMES):
        v = values[:, j]
        if name in INT_STATS:
            v = v.astype(np.int64)
        elif name in BOOL_STATS:
            v = v > 0.5
        cols[name] = v
    df = pd.DataFrame(cols)
    df.attrs.update(
        strategy=spec.name,
        settings=cfg.to_dict(),
        total=driver.grand_total,
        done=driver.done,
        stopped=driver.stopped,
        elapsed=time.perf_counter() - driver.t0,
        skipped=skipped,
    )
    return df
