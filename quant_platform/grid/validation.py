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


HOLDOUT_TOP = 10  # combinations measured on the holdout, best in-sample first


def combination_equity(data: Any, spec: GridSpec, params: dict[str, Any]) -> pd.Series:
    """The portfolio equity of one parameter set on `data` (see `combination_returns`)."""
    from quant_platform import backtest

    if backtest.get_strategy(spec.strategy).universe == "multi":
        return backtest.run(data, spec.strategy, params, **spec.settings).equity
    cash = float(spec.settings.get("cash", 1_000_000.0))
    curves = {s: backtest.run(b, spec.strategy, params, **spec.settings).equity for s, b in data.items()}
    return pd.concat(curves, axis=1).sort_index().ffill().fillna(cash).sum(axis=1)


def window_stats(equity: pd.Series, start: Any, end: Any, periods_per_year: float = 252.0) -> dict:
    """total_return, sharpe (annualised) and max_drawdown of `equity` over [start, end] (dates),
    measured from the last value before `start` (the window's starting capital)."""
    idx = pd.DatetimeIndex(equity.index)
    day = idx.tz_localize(None).normalize() if idx.tz is not None else idx.normalize()
    inside = (day >= pd.Timestamp(start)) & (day <= pd.Timestamp(end))
    pos = np.flatnonzero(inside)
    if pos.size == 0:
        return {"total_return": float("nan"), "sharpe": float("nan"), "max_drawdown": float("nan"), "bars": 0}
    first = max(int(pos[0]) - 1, 0)
    return {
        **curve_stats(equity.to_numpy()[first : int(pos[-1]) + 1], periods_per_year),
        "bars": int(pos.size),
    }


def curve_stats(eq: np.ndarray, periods_per_year: float = 252.0) -> dict:
    """total_return, sharpe (annualised) and max_drawdown of an equity curve, from its first value."""
    if eq.size == 0:
        return {"total_return": float("nan"), "sharpe": float("nan"), "max_drawdown": float("nan")}
    r = eq[1:] / eq[:-1] - 1.0
    sd = float(np.std(r, ddof=1)) if r.size >= 2 else 0.0
    sharpe = float(np.mean(r) / sd * np.sqrt(periods_per_year)) if sd > 0 else float("nan")
    peak = np.maximum.accumulate(eq)
    return {
        "total_return": float(eq[-1] / eq[0] - 1.0),
        "sharpe": sharpe,
        "max_drawdown": float((eq / peak - 1.0).min()),
    }


def holdout_report(full: Any, spec: GridSpec, ranked: pd.DataFrame, top: int = HOLDOUT_TOP) -> list[dict]:
    """In-sample and out-of-sample statistics of the `top` best in-sample combinations, side by side.

    `full` holds the klines from the search's start to the holdout's end: each combination runs once
    over all of it (indicators warm up in-sample), and its equity is measured on [start, end]
    (``is_*``) and on the holdout (``oos_*``). Parameters were chosen on the in-sample window only."""
    if spec.holdout is None or ranked.empty:
        return []
    rows = []
    for _, row in ranked.head(top).iterrows():
        params = dict(row["params"])
        equity = combination_equity(full, spec, params)
        ppy = float(spec.settings.get("periods_per_year", 252.0))
        ins = window_stats(equity, spec.start, spec.end, ppy)
        oos = window_stats(equity, *spec.holdout, ppy)
        rows.append(
            {
                "rank": int(row["rank"]),
                "params": params,
                "objective": float(row["objective"]),
                **{f"is_{k}": v for k, v in ins.items()},
                **{f"oos_{k}": v for k, v in oos.items()},
            }
        )
    return rows


def holdout_markdown(spec: GridSpec, rows: list[dict]) -> str:
    """`holdout_report` rows as a table: in-sample and out-of-sample statistics side by side."""
    stats = ("total_return", "sharpe", "max_drawdown")
    table = pd.DataFrame(
        [
            {
                "rank": r["rank"],
                **r["params"],
                **{f"{w}_{k}": round(r[f"{w}_{k}"], 4) for w in ("is", "oos") for k in stats},
            }
            for r in rows
        ]
    )
    h0, h1 = spec.holdout or (None, None)
    head = f"in-sample (is) {spec.start}..{spec.end}, out-of-sample (oos) {h0}..{h1}\n\n"
    return head + table.to_markdown(index=False)


def combination_returns(data: Any, spec: GridSpec, params: list[dict[str, Any]]) -> pd.DataFrame:
    """Period returns (rows) of each parameter set (columns, in order) on the search's universe.

    A portfolio strategy runs once on the universe; a single-asset strategy on every symbol with the
    search's per-symbol cash, the portfolio being the sum of the symbols' equity (a symbol counts with
    its cash before its first bar and its last equity while it has none)."""
    columns = {i: combination_equity(data, spec, p).pct_change().iloc[1:] for i, p in enumerate(params)}
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
