"""Batched evaluation of a grid search: plan batches, evaluate one, aggregate, rank, store, plot.

A grid is the cartesian product of its parameter values, in lexicographic order (the first parameter
varies slowest), so every combination has a stable index, `combo_id`. Planning validates each
combination once, keeps the first `max_evals` valid ones, and cuts them into batches of about equal
size. A batch is a contiguous range of combo ids. It is evaluated with `backtest.grid` on a few
rectangular sub-grids that exactly cover that range. Invalid combinations inside a sub-grid are
skipped by `backtest.grid` itself.

A combination's score is the mean of its per-symbol statistics over the symbols; the objective
(e.g. the mean Sharpe ratio) ranks the combinations. Results go to the cold-tier table
`grid_search_results`. Each combination has one row with ``symbol = '*'`` (the mean over symbols)
and one row per symbol, all carrying the combination's rank.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quant_platform.core.plots import heatmap_axes, heatmap_png  # noqa: F401 - ev.heatmap_png, ev.heatmap_axes
from quant_platform.core.schema import GRID_METRICS, GRID_RESULTS
from quant_platform.grid.spec import GridSpec

AGGREGATE = "*"

# The table's contract and the stored statistics live with every other cold table in `core.schema`;
# re-exported here under their old names.
METRICS: tuple[str, ...] = GRID_METRICS

# Default batching: enough work per batch to amortise a step's overhead (milliseconds in process,
# about a second with a SQLite event log, seconds for a subprocess or a Celery task), and at most
# TARGET_BATCHES batches.
TARGET_BATCHES = 16
EVALS_PER_BATCH = 25_000  # (combination, symbol) backtests


# ------------------------------------------------------------------------------------------ planning


@dataclass(frozen=True)
class Batch:
    """Combo ids [lo, hi) of the cartesian product, as sub-grids `backtest.grid` evaluates."""

    index: int
    lo: int
    hi: int
    combinations: int  # valid combinations inside [lo, hi)
    subgrids: tuple[dict[str, list[Any]], ...]

    @property
    def key(self) -> str:
        return f"b{self.index:05d}"


@dataclass(frozen=True)
class Plan:
    batches: tuple[Batch, ...]
    valid: int  # valid combinations of the whole grid
    planned: int  # valid combinations that will be evaluated (<= max_evals)
    skipped: int  # invalid combinations of the whole grid

    @property
    def truncated(self) -> bool:
        return self.planned < self.valid


def valid_mask(spec: GridSpec) -> np.ndarray:
    """True for every combination (in combo-id order) that the strategy's validation accepts."""
    from quant_platform.core.backtest import get_strategy

    strategy = get_strategy(spec.strategy)
    keys = list(spec.grid)
    out = np.zeros(spec.size, dtype=bool)
    for i, combo in enumerate(itertools.product(*spec.grid.values())):
        try:
            strategy.validate(dict(zip(keys, combo, strict=True)))
            out[i] = True
        except ValueError:
            pass
    return out


def cover(values: Sequence[Sequence[Any]], lo: int, hi: int) -> list[list[list[Any]]]:
    """Sub-grids (one value list per parameter) whose union is exactly combos [lo, hi) of `values`."""
    if lo >= hi:
        return []
    if not values:
        return [[]]
    first, rest = list(values[0]), values[1:]
    inner = math.prod(len(v) for v in rest)
    a, ra = divmod(lo, inner)
    b, rb = divmod(hi, inner)
    if a == b:
        return [[[first[a]], *g] for g in cover(rest, ra, rb)]
    out: list[list[list[Any]]] = []
    if ra:
        out += [[[first[a]], *g] for g in cover(rest, ra, inner)]
        a += 1
    if b > a:
        out.append([first[a:b], *(list(v) for v in rest)])
    if rb:
        out += [[[first[b]], *g] for g in cover(rest, 0, rb)]
    return out


def default_batch_size(combinations: int, symbols: int = 1) -> int:
    """Combinations per batch: about EVALS_PER_BATCH backtests each, at most TARGET_BATCHES batches."""
    if combinations < 1:
        return 1
    batches = min(TARGET_BATCHES, max(1, math.ceil(combinations * max(1, symbols) / EVALS_PER_BATCH)))
    return math.ceil(combinations / batches)


def plan_batches(spec: GridSpec, symbols: int = 1, mask: np.ndarray | None = None) -> Plan:
    """Batches over the first `max_evals` valid combinations: `spec.batch_size` combinations each, or
    `default_batch_size` for a universe of `symbols`."""
    mask = valid_mask(spec) if mask is None else mask
    ids = np.flatnonzero(mask)
    valid = len(ids)
    if spec.max_evals is not None:
        ids = ids[: spec.max_evals]
    size = spec.batch_size or default_batch_size(len(ids), symbols)
    keys = list(spec.grid)
    values = list(spec.grid.values())
    batches = []
    for index, start in enumerate(range(0, len(ids), size)):
        chunk = ids[start : start + size]
        lo, hi = int(chunk[0]), int(chunk[-1]) + 1
        subgrids = tuple(dict(zip(keys, g, strict=True)) for g in cover(values, lo, hi))
        batches.append(Batch(index, lo, hi, len(chunk), subgrids))
    return Plan(tuple(batches), valid, len(ids), spec.size - valid)


# ---------------------------------------------------------------------------------------- evaluation


def universe(klines: pd.DataFrame) -> dict:
    """{symbol: Bars} of the klines: converted once per run, handed to every batch as plain data."""
    from quant_platform.core.backtest.data import prepare_universe

    return prepare_universe(klines)


def combo_ids(spec: GridSpec, rows: pd.DataFrame) -> np.ndarray:
    """Combo id of every row, from its grid parameter values."""
    ids = np.zeros(len(rows), dtype=np.int64)
    stride = 1
    for name in reversed(list(spec.grid)):
        values = spec.grid[name]
        pos = {v: i for i, v in enumerate(values)}
        ids += np.array([pos[v] for v in rows[name].tolist()], dtype=np.int64) * stride
        stride *= len(values)
    return ids


def evaluate_batch(data: Any, spec: GridSpec, batch: Batch) -> pd.DataFrame:
    """Per-symbol statistics of every valid combination of `batch`, with `combo_id`.

    `data` is anything `backtest.grid` accepts; pass `universe(klines)` to convert the klines once.
    """
    from quant_platform import backtest

    frames = [backtest.grid(data, spec.strategy, sub, **spec.settings) for sub in batch.subgrids]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["combo_id", "symbol", *spec.grid, *METRICS])
    rows = pd.concat(frames, ignore_index=True)
    rows.insert(0, "combo_id", combo_ids(spec, rows))
    rows["symbol"] = rows["symbol"].astype(object).where(rows["symbol"].notna(), AGGREGATE)
    return rows


def param_names(rows: pd.DataFrame) -> list[str]:
    """The strategy parameter columns of a `backtest.grid` frame (everything but ids and stats)."""
    from quant_platform.backtest import STAT_NAMES

    skip = {"combo_id", "symbol", *STAT_NAMES}
    return [c for c in rows.columns if c not in skip]


def aggregate(rows: pd.DataFrame, spec: GridSpec) -> pd.DataFrame:
    """One row per combination: its parameters, the mean of every metric over symbols, the objective.

    Index: combo_id. Columns: ``params`` (dict), ``symbols`` (count), ``objective`` and METRICS.
    """
    if rows.empty:
        return pd.DataFrame(columns=["params", "symbols", "objective", *METRICS]).rename_axis("combo_id")
    names = param_names(rows)
    metrics = rows[["combo_id", *[m for m in METRICS if m in rows]]].astype({"combo_id": np.int64})
    numeric = metrics.set_index("combo_id").astype(float)
    agg = numeric.groupby(level=0).mean()
    for m in METRICS:
        if m not in agg:
            agg[m] = np.nan
    first = rows.drop_duplicates("combo_id").set_index("combo_id")
    params = {int(cid): {n: _py(first.at[cid, n]) for n in names} for cid in first.index.tolist()}
    agg.insert(0, "params", pd.Series(params).reindex(agg.index))
    agg.insert(1, "symbols", rows.groupby("combo_id")["symbol"].nunique().reindex(agg.index))
    agg.insert(2, "objective", agg[spec.objective])
    return agg[["params", "symbols", "objective", *METRICS]]


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def rank(agg: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Sorted best first (NaN objectives last, ties by combo id), with a 1-based ``rank`` column."""
    if agg.empty:
        return agg.assign(rank=pd.Series(dtype="uint32"))
    key = agg["objective"].astype(float)
    key = -key if direction == "max" else key
    order = np.lexsort((agg.index.to_numpy(), key.fillna(np.inf).to_numpy()))
    out = agg.iloc[order].copy()
    out.insert(0, "rank", np.arange(1, len(out) + 1, dtype=np.uint32))
    return out


def best_of(agg: pd.DataFrame, direction: str) -> tuple[dict[str, Any] | None, float | None]:
    """Parameters and objective of the best combination (None when every objective is NaN)."""
    finite = agg[np.isfinite(agg["objective"].astype(float))] if len(agg) else agg
    if finite.empty:
        return None, None
    top = rank(finite, direction).iloc[0]
    return dict(top["params"]), float(top["objective"])


def better(a: float, b: float | None, direction: str) -> bool:
    if not math.isfinite(a):
        return False
    if b is None:
        return True
    return a > b if direction == "max" else a < b


def stalled_batches(history: Sequence[float | None], direction: str) -> int:
    """Batches since the objective last improved; `history` is each finished batch's best, in order."""
    best: float | None = None
    since = 0
    for value in history:
        if value is not None and better(value, best, direction):
            best, since = value, 0
        else:
            since += 1
    return since


# ------------------------------------------------------------------------------------------- results


def results_frame(request_id: str, rows: pd.DataFrame, ranked: pd.DataFrame, objective: str) -> pd.DataFrame:
    """Rows of `grid_search_results`: the ranked '*' rows, then the per-symbol rows."""
    now = pd.Timestamp.now(tz="UTC").as_unit("ms")
    if ranked.empty:
        return GRID_RESULTS.empty()
    params_json = {int(c): json.dumps(p, sort_keys=True) for c, p in ranked["params"].items()}
    ranks = ranked["rank"]
    top = pd.DataFrame(
        {
            "request_id": request_id,
            "rank": ranks.to_numpy(np.uint32),
            "combo_id": ranked.index.to_numpy(np.uint32),
            "symbol": AGGREGATE,
            "params": [params_json[int(c)] for c in ranked.index],
            "objective": ranked["objective"].astype(float).to_numpy(),
            **{m: ranked[m].astype(float).to_numpy() for m in METRICS},
            "created_at": now,
        }
    )
    per = rows[rows["symbol"] != AGGREGATE]
    if per.empty:
        return GRID_RESULTS.conform(top)
    cid = per["combo_id"].to_numpy(np.int64)
    per_frame = pd.DataFrame(
        {
            "request_id": request_id,
            "rank": ranks.reindex(cid).to_numpy(np.uint32),
            "combo_id": cid.astype(np.uint32),
            "symbol": per["symbol"].astype(str).to_numpy(),
            "params": pd.Series(cid).map(params_json).to_numpy(),
            "objective": per[objective].astype(float).to_numpy(),
            **{m: per[m].astype(float).to_numpy() if m in per else np.nan for m in METRICS},
            "created_at": now,
        }
    )
    per_frame = per_frame.sort_values(["rank", "symbol"], kind="stable")
    return GRID_RESULTS.conform(pd.concat([top, per_frame], ignore_index=True))


# ------------------------------------------------------------------------------------------- summary


def markdown_table(ranked: pd.DataFrame, rows: int = 10) -> str:
    if ranked.empty:
        return "_no results_"
    head = ranked.head(rows)
    table = pd.DataFrame([dict(p) for p in head["params"]], index=head.index)
    table.insert(0, "rank", head["rank"].to_numpy())
    for col in ("objective", "total_return", "sharpe", "max_drawdown", "num_trades", "win_rate"):
        table[col] = head[col].astype(float).round(4).to_numpy()
    return table.to_markdown(index=False)
