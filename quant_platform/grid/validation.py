"""How likely a grid search's winner is to be luck: the return series of the combinations, the
probability of backtest overfitting (CSCV) over them and the deflated Sharpe ratio of the winner.

Plain Python (no Dagster import). The statistics are in `core.backtest.overfitting`; this module
builds their input from a finished search. Re-running every combination for its return series costs
one backtest per combination and symbol, so at most `MAX_TRIALS` combinations are re-run: the winner
and an even spread over the ranking (the deflated Sharpe ratio still counts every evaluated trial).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quant_platform.grid.spec import GridSpec

MAX_TRIALS = 100  # combinations re-run for their return series


def combination_returns(data: Any, spec: GridSpec, params: list[dict[str, Any]]) -> pd.DataFrame:
    """Period returns (rows) of each parameter set (columns, in order) on the search's universe.

    A portfolio strategy runs once on the universe; a single-asset strategy on every symbol with the
    search's per-symbol cash, the portfolio being the sum of the symbols' equity (a symbol counts with
    its cash before its first bar and its last equity while it has none)."""
    from quant_platform import backtest

    strategy = backtest.get_strategy(spec.strategy)
    cash = float(spec.settings.get("cash", 1_000_000.0))
    columns = {}
    for i, p in enumerate(params):
        if strategy.universe == "multi":
            equity = backtest.run(data, spec.strategy, p, **spec.settings).equity
        else:
            curves = {s: backtest.run(b, spec.strategy, p, **spec.settings).equity for s, b in data.items()}
            equity = pd.concat(curves, axis=1).sort_index().ffill().fillna(cash).sum(axis=1)
        columns[i] = equity.pct_change().iloc[1:]
    return pd.DataFrame(columns)


def n_splits_for(periods: int, preferred: int = 16) -> int | None:
    """The largest even number of CSCV splits up to `preferred` with at least 4 periods per split."""
    s = min(preferred, periods // 4)
    s -= s % 2
    return s if s >= 2 else None


def overfitting_report(data: Any, spec: GridSpec, ranked: pd.DataFrame) -> dict[str, Any]:
    """PBO and deflated Sharpe ratio of a ranked search (`evaluate.rank` output, best first).

    Returns ``pbo``, ``deflated_sharpe`` (None when they cannot be computed, with ``note``),
    ``n_trials`` (combinations evaluated), ``trials_used`` (re-run for PBO), ``n_splits``,
    ``periods`` and ``winner_sharpe`` / ``trials_sharpe_std`` (per period)."""
    from quant_platform.core.backtest.overfitting import (
        deflated_sharpe,
        probability_of_overfitting,
        sharpe_per_period,
    )

    out: dict[str, Any] = {"n_trials": int(len(ranked)), "pbo": None, "deflated_sharpe": None}
    finite = ranked[np.isfinite(ranked["objective"].astype(float))] if len(ranked) else ranked
    if finite.empty:
        return {**out, "note": "no combination has a finite objective"}
    k = min(len(finite), MAX_TRIALS)
    picks = np.unique(np.linspace(0, len(finite) - 1, k).round().astype(int))  # 0 = the winner
    table = combination_returns(data, spec, [dict(p) for p in finite["params"].iloc[picks]])
    sharpes = np.array([sharpe_per_period(table[c]) for c in table.columns])
    spread = sharpes[np.isfinite(sharpes)]
    std = float(np.std(spread, ddof=1)) if spread.size >= 2 else None
    out.update(trials_used=int(table.shape[1]), periods=int(len(table)), winner_sharpe=float(sharpes[0]))
    out["trials_sharpe_std"] = std
    if len(table) >= 3:
        dsr = deflated_sharpe(table[0], out["n_trials"], std)
        out["deflated_sharpe"] = dsr if np.isfinite(dsr) else None
    splits = n_splits_for(len(table))
    if table.shape[1] >= 2 and splits is not None:
        out["n_splits"] = splits
        out["pbo"] = probability_of_overfitting(table, splits)
    else:
        out["note"] = "PBO needs at least 2 combinations and 8 periods"
    return out
