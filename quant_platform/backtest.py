"""Backtest strategies on OHLCV bars: one run, or a batched parameter grid.

    >>> from backtesting.test import GOOG                 # any OHLCV DataFrame with a DatetimeIndex
    >>> from quant_platform import backtest
    >>> res = backtest.run(GOOG, "sma_cross", {"fast": 10, "slow": 20}, commission=0.002)
    >>> res.stats["total_return"], res.stats["sharpe"], len(res.trades)
    >>> table = backtest.grid(GOOG, "sma_cross", {"fast": [5, 10, 20], "slow": [20, 50, 100]})

`run(data, strategy, params=None, **settings) -> BacktestResult`; `grid(data, strategy, grid,
**settings) -> DataFrame` (one row per symbol and parameter combination with every stat of `run`,
the same numbers). Strategies are registered names (``sma_cross``, ``ema_cross``,
``rsi_reversion``, ``bollinger_breakout``, ``xs_momentum``) or callables
``fn(bars, params) -> signals``; register your own with `register_strategy`. Settings (fills,
sizing, fees, A-share T+1 and price limits) are described in `BacktestSettings` and, with every
formula, in docs/backtest.md.

How likely a winner is to be luck: `deflated_sharpe(returns, n_trials, trials_sharpe_std=None)` (a
probability in [0, 1]) and `probability_of_overfitting(returns_table, n_splits=16)` (CSCV, columns =
combinations, rows = periods); see docs/backtest.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from quant_platform.core.backtest import (
    PORTFOLIO_SYMBOL,
    STAT_NAMES,
    STRATEGIES,
    BacktestResult,
    BacktestSettings,
    Bars,
    Panel,
    Param,
    StrategySpec,
    expand_grid,
    get_strategy,
    register_strategy,
    validate_params,
)
from quant_platform.core.backtest import grid as _grid
from quant_platform.core.backtest import run as _run
from quant_platform.core.backtest.overfitting import deflated_sharpe, probability_of_overfitting

__all__ = [
    "PORTFOLIO_SYMBOL",
    "STAT_NAMES",
    "STRATEGIES",
    "BacktestResult",
    "BacktestSettings",
    "Bars",
    "Panel",
    "Param",
    "StrategySpec",
    "deflated_sharpe",
    "expand_grid",
    "get_strategy",
    "grid",
    "probability_of_overfitting",
    "register_strategy",
    "run",
    "strategies",
    "validate_params",
]


def run(data, strategy, params=None, **settings) -> BacktestResult:
    """Backtest one strategy with one parameter set.

    Args:
        data: OHLCV DataFrame with a DatetimeIndex (or a date column) and columns
            Open/High/Low/Close[/Volume] (lower-case accepted); optional ``limit_up``/``limit_down``.
            Portfolio strategies (``xs_momentum``) take a mapping ``{symbol: DataFrame}`` or a long
            DataFrame with a ``symbol`` column.
        strategy: a registered strategy name, a `StrategySpec`, or a callable
            ``fn(bars, params) -> signals`` (+1 long / -1 short / 0 nothing, one per bar).
        params: strategy parameters; missing ones take the registered defaults.
        **settings: engine settings -- cash, commission, min_commission, stamp_duty, slippage, fill,
            sizing, lot_size, direction, t_plus_1, price_limit, periods_per_year (see
            `BacktestSettings`).

    Returns:
        `BacktestResult` with ``stats``, ``equity``, ``trades``, ``settings``, ``params`` and
        ``result_hash``.

    Raises:
        ValueError: bad data (missing columns, unsorted index, NaN prices), unknown strategy,
            unknown or invalid parameters or settings.
    """
    return _run(data, strategy, params, **settings)


def grid(
    data,
    strategy,
    grid: Mapping[str, Any],
    *,
    on_progress: Callable[[int, int], bool | None] | None = None,
    max_evals: int | None = None,
    time_budget: float | None = None,
    chunk_size: int = 256,
    **settings,
) -> pd.DataFrame:
    """Backtest every parameter combination of `grid` on every symbol of `data`.

    Args:
        data: one OHLCV DataFrame, a mapping ``{symbol: DataFrame}`` or a long DataFrame with a
            ``symbol`` column and a date column (or DatetimeIndex). Symbols are processed one at a
            time.
        strategy: as for `run`.
        grid: ``{param: list of values}``; the cartesian product is evaluated. Combinations failing
            validation (e.g. ``slow <= fast``) are skipped and listed in ``df.attrs["skipped"]``
            (``{"params", "reason"}`` dicts); an unknown parameter name raises ValueError.
        on_progress: called as ``on_progress(done, total)`` after each chunk of evaluations; return
            False to stop early.
        max_evals: stop after this many (symbol, combination) evaluations.
        time_budget: stop starting new chunks after this many seconds.
        chunk_size: combinations per compiled call (granularity of progress and budgets).
        **settings: engine settings, as for `run`.

    Returns:
        DataFrame with one row per (symbol, combination), symbol-major: ``symbol`` (None for a
        single unnamed frame, ``"*"`` for portfolio strategies), one column per parameter, then every
        stat of `run` (`STAT_NAMES`), with the numbers `run` gives for that combination. ``attrs``:
        ``strategy``, ``settings``, ``total`` (evaluations requested), ``done``, ``stopped``
        (``"completed"``, ``"cancelled"``, ``"max_evals"`` or ``"time_budget"``), ``elapsed``
        seconds and ``skipped``.
    """
    return _grid(
        data,
        strategy,
        grid,
        on_progress=on_progress,
        max_evals=max_evals,
        time_budget=time_budget,
        chunk_size=chunk_size,
        **settings,
    )


def strategies() -> dict[str, dict]:
    """{name: {"params": {name: default}, "universe": ..., "output": ..., "doc": ...}}."""
    return {
        name: {
            "params": spec.defaults(),
            "universe": spec.universe,
            "output": spec.output,
            "doc": spec.doc.splitlines()[0] if spec.doc else "",
        }
        for name, spec in sorted(STRATEGIES.items())
    }
