"""Backtest strategies on OHLCV bars: one run, or a batched parameter grid.

    >>> from backtesting.test import GOOG                 # any OHLCV DataFrame with a DatetimeIndex
    >>> from quant_platform import backtest
    >>> res = backtest.run(GOOG, "sma_cross", {"fast": 10, "slow": 20}, commission=0.002)
    >>> res.stats["total_return"], res.stats["sharpe"], len(res.trades)
    >>> res.trades[["entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl"]].head()

`run(data, strategy, params=None, **settings) -> BacktestResult`. Strategies are registered
names (``sma_cross``, ``ema_cross``, ``rsi_reversion``, ``bollinger_breakout``, ``xs_momentum``) or
callables ``fn(bars, params) -> signals``; register your own with `register_strategy`. Settings
(fills, sizing, fees, A-share T+1 and price limits) are described in `BacktestSettings` and, with
every formula, in docs/backtest.md.
"""

from __future__ import annotations

from quant_platform.core.backtest import (
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
from quant_platform.core.backtest import run as _run

__all__ = [
    "STAT_NAMES",
    "STRATEGIES",
    "BacktestResult",
    "BacktestSettings",
    "Bars",
    "Panel",
    "Param",
    "StrategySpec",
    "expand_grid",
    "get_strategy",
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
