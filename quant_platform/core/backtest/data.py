"""Validation and conversion of OHLCV input into the numpy arrays the engine runs on.

Input is converted to numpy exactly once per backtest (or once per symbol in a grid); strategies and
kernels then work on plain float64 arrays.

Accepted shapes:

* one OHLCV DataFrame: a DatetimeIndex (or a date column) and columns Open/High/Low/Close, optional
  Volume, any of them lower-case too; optional ``limit_up`` / ``limit_down`` columns for A-share price
  limits;
* a mapping ``{symbol: OHLCV DataFrame}``;
* a long DataFrame with a ``symbol`` column plus a date column (``ts``, ``datetime``, ``timestamp``,
  ``trade_date``, ``date`` or ``time``, the first present) or a DatetimeIndex, as the platform's daily
  klines (`Client.klines()`) and intraday bars (`Client.bars()`, which carry ``ts`` and ``trade_date``)
  are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .kernels import all_positive_finite

PRICE_COLUMNS = ("open", "high", "low", "close")
# A bar's own timestamp wins over its trading day: intraday bars (`Client.bars()`) carry both.
DATE_COLUMNS = ("ts", "datetime", "timestamp", "trade_date", "date", "time")


@dataclass(frozen=True, eq=False)
class Bars:
    """One instrument's bars as float64 numpy arrays (what single-asset strategies receive).

    ``bars.close[t]`` is bar t's close; use ``bars.df`` for a lower-case pandas DataFrame view.
    """

    index: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    limit_up: np.ndarray | None = None
    limit_down: np.ndarray | None = None
    symbol: str | None = None

    def __len__(self) -> int:
        return self.close.shape[0]

    @property
    def df(self) -> pd.DataFrame:
        cols = {
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
        }
        return pd.DataFrame(cols, index=self.index)

    @property
    def years(self) -> float:
        """Calendar span first bar -> last bar in years of 365.25 days (used by CAGR)."""
        return _years(self.index)

    def day_ids(self) -> np.ndarray:
        """Exchange-local calendar day number of each bar (for T+1)."""
        return _day_ids(self.index)


@dataclass(frozen=True, eq=False)
class Panel:
    """Several instruments aligned on the union of their timestamps (portfolio strategies' input).

    Arrays are (bars x symbols); a symbol without a bar at a timestamp has NaN there (it cannot trade
    on that bar). ``close_ffill`` carries the last close forward for valuation.
    """

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    close_ffill: np.ndarray
    limit_up: np.ndarray | None = None
    limit_down: np.ndarray | None = None

    def __len__(self) -> int:
        return self.close.shape[0]

    @property
    def years(self) -> float:
        return _years(self.index)

    def day_ids(self) -> np.ndarray:
        return _day_ids(self.index)


_UNIT_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def _years(index: pd.DatetimeIndex) -> float:
    if len(index) < 2:
        return 0.0
    a = index.asi8
    return float(a[-1] - a[0]) / _UNIT_PER_SECOND[index.unit] / (365.25 * 86_400.0)


def _day_ids(index: pd.DatetimeIndex) -> np.ndarray:
    idx = index.tz_localize(None) if index.tz is not None else index
    days = idx.values.astype("datetime64[D]").astype(np.int64)
    return np.ascontiguousarray(days, dtype=np.int64)


def _column_map(columns: Any) -> dict[str, Any]:
    cmap: dict[str, Any] = {}
    for c in columns:
        if not isinstance(c, str):
            continue
        key = c.lower()
        if key in cmap:
            raise ValueError(f"ambiguous columns {cmap[key]!r} and {c!r} (case-insensitive duplicates)")
        cmap[key] = c
    return cmap


def _datetime_index(df: pd.DataFrame, cmap: dict[str, Any], what: str) -> pd.DatetimeIndex:
    if isinstance(df.index, pd.DatetimeIndex):
        return df.index
    for name in DATE_COLUMNS:
        if name in cmap:
            try:
                return pd.DatetimeIndex(pd.to_datetime(df[cmap[name]].to_numpy()))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{what}: date column {cmap[name]!r} is not parseable: {exc}") from exc
    raise ValueError(
        f"{what}: needs a DatetimeIndex or a date column (one of {DATE_COLUMNS}); "
        f"got index of type {type(df.index).__name__}"
    )


def _float_col(df: pd.DataFrame, col: Any, what: str) -> np.ndarray:
    try:
        arr = df[col].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: column {col!r} is not numeric: {exc}") from exc
    return np.ascontiguousarray(arr)


def _bars_from_rows(
    index: pd.DatetimeIndex, rows: dict[str, np.ndarray], cmap: dict[str, Any], what: str, symbol: str | None
) -> Bars:
    if len(index) < 2:
        raise ValueError(f"{what} needs at least 2 bars, got {len(index)}")
    if not index.is_monotonic_increasing:
        raise ValueError(f"{what}: index is not sorted in increasing time order (sort it first)")
    if not index.is_unique:
        raise ValueError(f"{what}: index has duplicated timestamps")
    for c in PRICE_COLUMNS:
        arr = rows[c]
        if not all_positive_finite(arr):
            if np.isnan(arr).any():
                bad = list(index[np.isnan(arr)][:3])
                raise ValueError(f"{what}: column {cmap[c]!r} has NaN prices (first at {bad})")
            raise ValueError(f"{what}: column {cmap[c]!r} has non-positive or infinite prices")
    n = len(index)
    return Bars(
        index=index,
        open=rows["open"],
        high=rows["high"],
        low=rows["low"],
        close=rows["close"],
        volume=rows["volume"] if "volume" in rows else np.full(n, np.nan),
        limit_up=rows.get("limit_up"),
        limit_down=rows.get("limit_down"),
        symbol=symbol,
    )


def _check_columns(cmap: dict[str, Any], names: list, what: str) -> list[str]:
    missing = [c.capitalize() for c in PRICE_COLUMNS if c not in cmap]
    if missing:
        raise ValueError(
            f"{what} is missing column(s) {missing}; need Open, High, Low, Close "
            f"(optional Volume; lower-case accepted), got {names}"
        )
    return [k for k in (*PRICE_COLUMNS, "volume", "limit_up", "limit_down") if k in cmap]


def prepare_bars(data: Any, symbol: str | None = None) -> Bars:
    """Validate one OHLCV DataFrame and convert it to `Bars`.

    Raises ValueError on: not a DataFrame, fewer than 2 bars, missing Open/High/Low/Close, no
    DatetimeIndex/date column, unsorted or duplicated timestamps, NaN or non-positive prices.
    """
    what = f"data[{symbol!r}]" if symbol is not None else "data"
    if isinstance(data, Bars):
        return data
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame of OHLCV bars, got {type(data).__name__}")
    names = data.columns.tolist()
    cmap = _column_map(names)
    wanted = _check_columns(cmap, names, what)
    if len(data) < 2:
        raise ValueError(f"{what} needs at least 2 bars, got {len(data)}")
    index = _datetime_index(data, cmap, what)
    try:
        # One conversion of the whole frame is much cheaper than one per column.
        block = np.ascontiguousarray(data.to_numpy(dtype=np.float64, na_value=np.nan).T)
        pos = {c: i for i, c in enumerate(names)}
        rows = {k: block[pos[cmap[k]]] for k in wanted}
    except (TypeError, ValueError):
        rows = {k: _float_col(data, cmap[k], what) for k in wanted}
    return _bars_from_rows(index, rows, cmap, what, symbol)


def is_multi(data: Any) -> bool:
    """True for a mapping of frames or a long frame with a ``symbol`` column."""
    if isinstance(data, Mapping):
        return True
    return isinstance(data, pd.DataFrame) and "symbol" in data.columns


def count_symbols(data: Any) -> int:
    """Number of symbols `iter_universe(data)` yields."""
    if isinstance(data, Mapping):
        return len(data)
    if isinstance(data, pd.DataFrame) and "symbol" in data.columns:
        return int(data["symbol"].nunique(dropna=False))
    return 1


def _iter_long(data: pd.DataFrame) -> Iterator[Bars]:
    """Bars of each symbol of a long frame, in first-appearance order, without pandas groupby."""
    if data.empty:
        raise ValueError("long data frame is empty")
    names = data.columns.tolist()
    cmap = _column_map(names)
    wanted = _check_columns(cmap, names, "data")
    date_col = next((cmap[c] for c in DATE_COLUMNS if c in cmap), None)
    if date_col is not None:
        try:
            dates = pd.DatetimeIndex(pd.to_datetime(data[date_col].to_numpy()))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"data: date column {date_col!r} is not parseable: {exc}") from exc
    elif isinstance(data.index, pd.DatetimeIndex):
        dates = data.index
    else:
        raise ValueError(f"long data frame needs a DatetimeIndex or a date column (one of {DATE_COLUMNS})")
    codes, uniques = pd.factorize(data["symbol"], sort=False, use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError("long data frame has rows without a symbol")
    try:
        block = data[[cmap[k] for k in wanted]].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data: OHLCV columns are not numeric: {exc}") from exc
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(uniques)))])
    date_values = dates.asi8
    for j, sym in enumerate(uniques):
        sel = order[bounds[j] : bounds[j + 1]]
        d = date_values[sel]
        if (np.diff(d) < 0).any():
            sel = sel[np.argsort(d, kind="stable")]
        index = dates[sel]
        rows = {k: np.ascontiguousarray(block[sel, i]) for i, k in enumerate(wanted)}
        yield _bars_from_rows(index, rows, cmap, f"data[{str(sym)!r}]", str(sym))


def iter_universe(data: Any) -> Iterator[Bars]:
    """Yield the `Bars` of every symbol of `data`, one at a time (a grid streams through them).

    A single frame yields one `Bars` whose symbol is ``data.attrs.get("symbol")``.
    """
    if isinstance(data, Bars):
        yield data
    elif isinstance(data, Mapping):
        if not data:
            raise ValueError("data mapping is empty")
        for sym, frame in data.items():
            yield prepare_bars(frame, symbol=str(sym))
    elif isinstance(data, pd.DataFrame) and "symbol" in data.columns:
        yield from _iter_long(data)
    elif isinstance(data, pd.DataFrame):
        yield prepare_bars(data, symbol=data.attrs.get("symbol"))
    else:
        raise ValueError(
            "data must be an OHLCV DataFrame, a mapping {symbol: DataFrame} or a long DataFrame with a "
            f"'symbol' column; got {type(data).__name__}"
        )


def prepare_universe(data: Any) -> dict[str | None, Bars]:
    """{symbol: Bars} for any accepted input."""
    return {b.symbol: b for b in iter_universe(data)}


def prepare_panel(data: Any) -> Panel:
    """Align several symbols on the union of their timestamps."""
    if isinstance(data, Panel):
        return data
    bars = prepare_universe(data) if is_multi(data) else {"asset": prepare_bars(data, symbol="asset")}
    symbols = tuple(str(s) for s in bars)
    tz = {str(b.index.tz) for b in bars.values()}
    if len(tz) > 1:
        raise ValueError(f"symbols have different timezones: {sorted(tz)}")
    index = bars[next(iter(bars))].index
    for b in list(bars.values())[1:]:
        if not index.equals(b.index):
            index = index.union(b.index)
    n, m = len(index), len(symbols)
    arrs = {k: np.full((n, m), np.nan) for k in ("open", "high", "low", "close")}
    any_limits = any(b.limit_up is not None or b.limit_down is not None for b in bars.values())
    lim_up = np.full((n, m), np.inf) if any_limits else None
    lim_dn = np.full((n, m), 0.0) if any_limits else None
    for j, b in enumerate(bars.values()):
        pos = index.get_indexer(b.index)
        for k in arrs:
            arrs[k][pos, j] = getattr(b, k)
        if any_limits:
            if b.limit_up is not None:
                lim_up[pos, j] = b.limit_up  # type: ignore[index]
            if b.limit_down is not None:
                lim_dn[pos, j] = b.limit_down  # type: ignore[index]
    close_ffill = pd.DataFrame(arrs["close"]).ffill().to_numpy()
    if any_limits:
        lim_up = np.where(np.isnan(lim_up), np.inf, lim_up)  # type: ignore[arg-type]
        lim_dn = np.where(np.isnan(lim_dn), 0.0, lim_dn)  # type: ignore[arg-type]
    return Panel(
        index=index,
        symbols=symbols,
        open=arrs["open"],
        high=arrs["high"],
        low=arrs["low"],
        close=arrs["close"],
        close_ffill=np.ascontiguousarray(close_ffill),
        limit_up=lim_up,
        limit_down=lim_dn,
    )
