"""A recorded run with its results: the warm-tier record plus the cold-tier equity and trades.

The same readers as `backtest export` and the API's artifacts route (`ColdStore.read_run`), so a
report or a comparison always shows what those export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from quant_platform.storage.warm import BacktestRun, NotFound

RUN_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # what the warm tier accepts as a run id
PORTFOLIO = "*"  # the equity rows of a run's whole portfolio (see assets/backtests.py)


class UnknownRun(ValueError):
    """A run id that is malformed, unknown, or names a run without results: the user's input is wrong."""


@dataclass(frozen=True)
class RunResult:
    run: BacktestRun
    equity: pd.Series  # the portfolio's equity, indexed by time (UTC)
    trades: pd.DataFrame  # round trips, as `backtest_trades` holds them

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self.run.stats or {})


def get_run(warm: Any, run_id: str) -> BacktestRun:
    """The succeeded run `run_id`; `UnknownRun` with the reason otherwise."""
    if not RUN_ID.match(run_id or ""):
        raise UnknownRun(f"not a run id: {run_id!r} (letters, digits, '_', '.', ':', '-'; at most 64)")
    try:
        run = warm.get_run(run_id)
    except NotFound:
        raise UnknownRun(f"run {run_id!r} does not exist (see `quant-platform backtest list`)") from None
    if str(run.status) != "succeeded":
        raise UnknownRun(f"run {run_id!r} has no results: it is {run.status}")
    return run


def portfolio_equity(equity: pd.DataFrame) -> pd.Series:
    """The portfolio curve of a run's `backtest_equity` rows (its only symbol's for older runs)."""
    rows = equity[equity["symbol"] == PORTFOLIO]
    if rows.empty and equity["symbol"].nunique() == 1:
        rows = equity
    series = pd.Series(rows["equity"].to_numpy(float), index=pd.DatetimeIndex(rows["ts"]), name="equity")
    return series.sort_index()


def load_run(warm: Any, cold: Any, run_id: str) -> RunResult:
    """The run's record, portfolio equity and trades; `UnknownRun` if any of them is missing."""
    run = get_run(warm, run_id)
    equity = portfolio_equity(cold.read_run("backtest_equity", run.id))
    if equity.empty:
        raise UnknownRun(f"run {run_id!r} has no equity curve in the cold tier")
    return RunResult(run, equity, cold.read_run("backtest_trades", run.id))
