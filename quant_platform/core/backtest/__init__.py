"""Backtest engine core: numpy/numba kernels, strategy registry, metrics and grid search.

The public entry point is `quant_platform.backtest`; this package must not import dagster.
"""

from .data import Bars, Panel, prepare_bars, prepare_panel
from .grid import PORTFOLIO_SYMBOL, grid
from .metrics import STAT_NAMES
from .runner import BacktestResult, run
from .settings import BacktestSettings
from .strategies import (
    STRATEGIES,
    Param,
    StrategySpec,
    expand_grid,
    get_strategy,
    register_strategy,
    validate_params,
)

__all__ = [
    "STAT_NAMES",
    "STRATEGIES",
    "BacktestResult",
    "BacktestSettings",
    "Bars",
    "Panel",
    "PORTFOLIO_SYMBOL",
    "Param",
    "StrategySpec",
    "expand_grid",
    "get_strategy",
    "grid",
    "prepare_bars",
    "prepare_panel",
    "register_strategy",
    "run",
    "validate_params",
]
