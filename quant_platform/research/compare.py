"""Recorded runs side by side: one stats table and their curves on one aligned time axis.

Runs of different windows or frequencies share the union of their timestamps; each curve is
carried forward inside its own span only (an equity does not change between its bars) and left
empty outside it, so a curve never claims a value before its run started or after it ended.
Equity is also shown as growth of 1 so that runs with different starting cash overlay.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from quant_platform.core.plots import drawdown
from quant_platform.research.runs import RunResult

MIN_RUNS, MAX_RUNS = 2, 12  # more curves than this do not read on one plot
# The stats shown first, in this order; other scalar stats of the records follow.
LEADING_STATS = (
    "total_return",
    "annual_return",
    "sharpe",
    "mean_sharpe",
    "sortino",
    "max_drawdown",
    "num_trades",
    "win_rate",
    "final_equity",
    "commissions",
    "bars",
    "symbols",
)


def check_run_ids(run_ids: Sequence[str]) -> list[str]:
    """2..12 distinct ids, in the order given; ValueError otherwise."""
    ids = [r.strip() for r in run_ids]
    if not MIN_RUNS <= len(ids) <= MAX_RUNS:
        raise ValueError(f"compare takes {MIN_RUNS} to {MAX_RUNS} run ids, got {len(ids)}")
    seen = {r for r in ids if ids.count(r) > 1}
    if seen:
        raise ValueError(f"run id given more than once: {sorted(seen)[0]}")
    return ids


def align(curves: dict[str, pd.Series]) -> pd.DataFrame:
    """One column per curve on the union of their timestamps, carried forward inside each span only."""
    frame = pd.concat(curves, axis=1).sort_index()
    for name, curve in curves.items():
        inside = (frame.index >= curve.index.min()) & (frame.index <= curve.index.max())
        frame[name] = frame[name].ffill().where(inside)
    return frame


def aligned_curves(results: Sequence[RunResult]) -> pd.DataFrame:
    """Per run: equity, growth of 1 and drawdown, aligned (columns `<run id>:<what>`, index `ts`)."""
    equity = align({r.id: r.equity for r in results})
    parts = {}
    for r in results:
        eq = equity[r.id]
        first = r.equity.iloc[0]
        parts[f"{r.id}:equity"] = eq
        parts[f"{r.id}:growth"] = eq / first
        parts[f"{r.id}:drawdown"] = drawdown(eq.dropna()).reindex(eq.index)
    out = pd.DataFrame(parts, index=equity.index)
    out.index.name = "ts"
    return out


def _common_span(results: Sequence[RunResult]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    start = max(r.equity.index.min() for r in results)
    end = min(r.equity.index.max() for r in results)
    return (start, end) if start < end else None


def stats_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """One row per run: what ran (strategy, params, window, data version), its recorded stats, and
    return and drawdown over the span all runs cover (comparable even when the windows differ)."""
    span = _common_span(results)
    rows = []
    for r in results:
        stats = r.stats
        row: dict[str, Any] = {
            "run_id": r.id,
            "strategy": r.run.strategy,
            "params": json.dumps(r.run.params, sort_keys=True),
            "window": "..".join(
                stats.get("window") or [str(r.equity.index.min().date()), str(r.equity.index.max().date())]
            ),
            "data_version": r.run.data_version,
        }
        scalars = {
            k: v for k, v in stats.items() if isinstance(v, int | float | str | bool) and k != "window"
        }
        if "sharpe" not in scalars and "mean_sharpe" in scalars:  # single-asset runs: mean over symbols
            scalars["sharpe"] = scalars["mean_sharpe"]
        row.update({k: scalars.pop(k) for k in LEADING_STATS if k in scalars})
        row.update(scalars)
        if span is not None:
            eq = r.equity[(r.equity.index >= span[0]) & (r.equity.index <= span[1])]
            row["common_return"] = float(eq.iloc[-1] / eq.iloc[0] - 1.0) if len(eq) else np.nan
            row["common_max_drawdown"] = float(drawdown(eq).min()) if len(eq) else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("run_id")


def curves_png(curves: pd.DataFrame, results: Sequence[RunResult]) -> bytes:
    """The overlaid growth-of-1 and drawdown curves (core/plots.py draws them)."""
    from quant_platform.core.plots import compare_png

    labels = {r.id: f"{r.run.strategy} {r.id[:16]}" for r in results}
    growth = pd.DataFrame({labels[r.id]: curves[f"{r.id}:growth"] for r in results})
    drawdowns = pd.DataFrame({labels[r.id]: curves[f"{r.id}:drawdown"] for r in results})
    return compare_png(growth, drawdowns, title=f"{len(results)} backtest runs")
