"""`run`: one backtest of one strategy and parameter set, and its `BacktestResult`."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .data import Bars, count_symbols, is_multi, iter_universe, prepare_bars, prepare_panel
from .engine import PortfolioContext, SingleAssetContext, trades_frame
from .metrics import result_hash, stats_to_dict
from .settings import BacktestSettings
from .strategies import StrategySpec, get_strategy, to_membership, to_want


class BacktestResult:
    """Outcome of `run`.

    Attributes:
        stats: dict of performance statistics (fractions: 0.25 = 25%); see docs/backtest.md.
        equity: pd.Series of equity at every bar's close.
        trades: DataFrame with entry_time, exit_time, entry_price, exit_price, size (negative =
            short), pnl (after all fees of the trade), commission (entry + exit fees incl. stamp duty),
            entry_bar, exit_bar, is_open (True for a position still open at the end, marked to the
            last close); portfolio results add a ``symbol`` column first.
        settings: the `BacktestSettings` used.
        params: the validated strategy parameters (defaults filled in).
        strategy: the strategy name.
        result_hash: sha256 over the rounded equity, trades and stats (same inputs -> same hash).
    """

    def __init__(
        self,
        *,
        stats: dict[str, Any],
        equity_values: np.ndarray,
        index: pd.DatetimeIndex,
        trade_records: np.ndarray,
        symbols: tuple[str, ...] | None,
        settings: BacktestSettings,
        params: dict[str, Any],
        strategy: str,
    ):
        self.stats = stats
        self.settings = settings
        self.params = params
        self.strategy = strategy
        self._equity_values = equity_values
        self._index = index
        self._records = trade_records
        self._symbols = symbols

    @property
    def equity_values(self) -> np.ndarray:
        """The equity curve as a float64 array (`equity` without building a Series)."""
        return self._equity_values

    @property
    def index(self) -> pd.DatetimeIndex:
        """The bars' timestamps (the equity curve's index)."""
        return self._index

    @property
    def trade_records(self) -> np.ndarray:
        """The engine's raw trade records (`trades` without building a DataFrame)."""
        return self._records

    @cached_property
    def equity(self) -> pd.Series:
        return pd.Series(self._equity_values, index=self._index, name="equity")

    @cached_property
    def trades(self) -> pd.DataFrame:
        return trades_frame(self._records, self._index, self._symbols)

    @cached_property
    def result_hash(self) -> str:
        return result_hash(self._equity_values, self._records, self.stats)

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<BacktestResult {self.strategy} {self.params} total_return={s['total_return']:.4f} "
            f"sharpe={s['sharpe']:.3f} max_drawdown={s['max_drawdown']:.4f} trades={s['num_trades']}>"
        )


def _single_bars(data: Any, strategy: str) -> Bars:
    if isinstance(data, Bars):
        return data
    if is_multi(data):
        n = count_symbols(data)
        if n != 1:
            raise ValueError(
                f"strategy {strategy!r} is single-asset but data holds {n} symbols; "
                "pass one symbol's frame, or use grid() to test every symbol"
            )
        return next(iter_universe(data))
    return prepare_bars(data)


_SETTINGS_CACHE: dict[tuple, BacktestSettings] = {}


def make_settings(settings: dict[str, Any], spec: StrategySpec | None = None) -> BacktestSettings:
    """Validated settings; identical keyword sets are cached (BacktestSettings is immutable)."""
    try:
        key = tuple(sorted((k, type(v), v) for k, v in settings.items()))
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _SETTINGS_CACHE:
        return _SETTINGS_CACHE[key]
    try:
        cfg = BacktestSettings.from_kwargs(settings)
    except ValueError as exc:
        if spec is not None and spec.params and set(settings) & set(spec.params):
            raise ValueError(f"{exc}. Strategy parameters go in params={{...}}") from None
        raise
    if key is not None:
        if len(_SETTINGS_CACHE) > 256:
            _SETTINGS_CACHE.clear()
        _SETTINGS_CACHE[key] = cfg
    return cfg


def run(
    data: Any,
    strategy: str | StrategySpec | Any,
    params: dict[str, Any] | None = None,
    **settings: Any,
) -> BacktestResult:
    """Backtest `strategy` with `params` on `data`; see `quant_platform.backtest.run`."""
    spec = get_strategy(strategy)
    cfg = make_settings(settings, spec)
    p = spec.validate(params)
    if spec.universe == "single":
        bars = _single_bars(data, spec.name)
        ctx = SingleAssetContext(bars, cfg)
        want = to_want(spec.fn(bars, p), len(bars), spec.output, spec.name)
        equity, records, stats = ctx.run(want)
        return BacktestResult(
            stats=stats_to_dict(stats),
            equity_values=equity,
            index=bars.index,
            trade_records=records,
            symbols=None,
            settings=cfg,
            params=p,
            strategy=spec.name,
        )
    panel = prepare_panel(data)
    pctx = PortfolioContext(panel, cfg)
    member, rebalance = to_membership(spec.fn(panel, p), panel.close.shape, spec.name)
    equity, records, stats = pctx.run(member, rebalance)
    return BacktestResult(
        stats=stats_to_dict(stats),
        equity_values=equity,
        index=panel.index,
        trade_records=records,
        symbols=panel.symbols,
        settings=cfg,
        params=p,
        strategy=spec.name,
    )


__all__ = ["BacktestResult", "make_settings", "run"]
