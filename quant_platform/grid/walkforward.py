"""Walk-forward validation of a grid search: N anchored folds over the search's window.

The window's trading days are cut into N + 1 equal segments. Fold k (1..N) chooses the best
combination on its in-sample part, from the window's start to the end of segment k - 1, and measures
it on segment k, which it never saw. Folds are anchored (every in-sample part starts at the window's
start) rather than rolling: research windows here are months of daily bars, and a rolling in-sample
part of 1/(N+1) of them would often be shorter than the strategies' warm-up; an anchored one also
re-optimises the way one would live, on all the history available at each point.

The out-of-sample segments follow each other, so the folds' out-of-sample returns chain into one
stitched curve: the performance of "re-optimise, then trade the next segment", which is what the
activation gate checks. Plain Python (no Dagster import).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from quant_platform.grid import evaluate as ev
from quant_platform.grid.spec import GridSpec
from quant_platform.grid.validation import combination_equity, curve_stats, window_stats


@dataclasses.dataclass(frozen=True)
class Fold:
    index: int  # 1-based
    is_start: dt.date
    is_end: dt.date
    oos_start: dt.date
    oos_end: dt.date


def trading_days(data: dict) -> list[dt.date]:
    """The sorted days on which any symbol of `data` ({symbol: Bars}) has a bar."""
    days: set[dt.date] = set()
    for bars in data.values():
        days.update(_days(bars.index).date.tolist())
    return sorted(days)


def _days(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    return (idx.tz_localize(None) if idx.tz is not None else idx).normalize()


def make_folds(days: list[dt.date], n: int) -> list[Fold]:
    """N anchored folds over `days`: N + 1 equal segments (the first ones one day longer when the days
    do not divide evenly); fold k is in-sample on segments 0..k-1 and out-of-sample on segment k."""
    if n < 1 or len(days) < 2 * (n + 1):
        raise ValueError(f"{len(days)} trading day(s) cannot make {n} walk-forward folds of 2+ days each")
    segments = np.array_split(np.array(days, dtype=object), n + 1)
    return [Fold(k, days[0], segments[k - 1][-1], segments[k][0], segments[k][-1]) for k in range(1, n + 1)]


def truncate(data: dict, end: dt.date) -> dict:
    """`data` ({symbol: Bars}) up to and including the day `end`; symbols with fewer than 2 bars left out."""
    out = {}
    stop = pd.Timestamp(end)
    for symbol, bars in data.items():
        keep = int((_days(bars.index) <= stop).sum())  # bars are sorted by time
        if keep < 2:
            continue
        arrays = {
            f.name: getattr(bars, f.name)[:keep]
            for f in dataclasses.fields(bars)
            if isinstance(getattr(bars, f.name), np.ndarray)
        }
        out[symbol] = dataclasses.replace(bars, index=bars.index[:keep], **arrays)
    return out


def choose(data: dict, spec: GridSpec, batches: list[ev.Batch]) -> tuple[dict[str, Any] | None, float | None]:
    """The best combination of `batches` on `data` by the search's objective (mean over symbols)."""
    rows = [ev.evaluate_batch(data, spec, b) for b in batches]
    rows = [r for r in rows if len(r)]
    if not rows:
        return None, None
    return ev.best_of(ev.aggregate(pd.concat(rows, ignore_index=True), spec), spec.direction)


def stitched(curves: list[tuple[pd.Series, Fold]], periods_per_year: float) -> dict[str, Any]:
    """One out-of-sample curve from the folds' winners: each fold's returns inside its out-of-sample
    segment (from the last equity before it), chained."""
    parts = []
    for equity, fold in curves:
        day = _days(equity.index)
        pos = np.flatnonzero((day >= pd.Timestamp(fold.oos_start)) & (day <= pd.Timestamp(fold.oos_end)))
        if pos.size == 0:
            continue
        eq = equity.to_numpy()[max(int(pos[0]) - 1, 0) : int(pos[-1]) + 1]
        parts.append(eq[1:] / eq[:-1] - 1.0)
    r = np.concatenate(parts) if parts else np.array([])
    curve = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    return {**curve_stats(curve, periods_per_year), "bars": int(r.size)}


def walk_forward_report(data: dict, spec: GridSpec, batches: list[ev.Batch]) -> dict[str, Any]:
    """Per fold: the combination chosen on the in-sample part only, its in-sample and out-of-sample
    statistics side by side; and the stitched out-of-sample figures (``oos``).

    `batches` are the combinations the search evaluated; `data` the window's bars ({symbol: Bars})."""
    n = int(spec.walk_forward or 0)
    ppy = float(spec.settings.get("periods_per_year", 252.0))
    folds = make_folds(trading_days(data), n)
    rows, curves = [], []
    for fold in folds:
        params, objective = choose(truncate(data, fold.is_end), spec, batches)
        row: dict[str, Any] = {
            "fold": fold.index,
            "in_sample": [fold.is_start.isoformat(), fold.is_end.isoformat()],
            "out_of_sample": [fold.oos_start.isoformat(), fold.oos_end.isoformat()],
            "params": params,
            "is_objective": objective,
        }
        if params is not None:
            equity = combination_equity(truncate(data, fold.oos_end), spec, params)
            ins = window_stats(equity, fold.is_start, fold.is_end, ppy)
            oos = window_stats(equity, fold.oos_start, fold.oos_end, ppy)
            row.update({f"is_{k}": v for k, v in ins.items()}, **{f"oos_{k}": v for k, v in oos.items()})
            curves.append((equity, fold))
        rows.append(row)
    return {"folds_n": n, "anchored": True, "folds": rows, "oos": stitched(curves, ppy)}


def walk_forward_markdown(report: dict[str, Any]) -> str:
    """The folds as a table: the in-sample choice and its in- and out-of-sample statistics side by side."""
    stats = ("total_return", "sharpe", "max_drawdown")
    nan = float("nan")
    table = pd.DataFrame(
        [
            {
                "fold": r["fold"],
                "in-sample": "..".join(r["in_sample"]),
                "out-of-sample": "..".join(r["out_of_sample"]),
                "params": r["params"],
                **{f"{w}_{k}": round(r.get(f"{w}_{k}", nan), 4) for w in ("is", "oos") for k in stats},
            }
            for r in report["folds"]
        ]
    )
    oos = report["oos"]
    tail = (
        f"\n\nstitched out-of-sample: total_return {oos['total_return']:.4f}, sharpe {oos['sharpe']:.3f}, "
        f"max_drawdown {oos['max_drawdown']:.4f} over {oos['bars']} bars"
    )
    return f"{report['folds_n']} anchored folds\n\n" + table.to_markdown(index=False) + tail
