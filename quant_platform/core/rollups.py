"""Intraday rollups and daily klines from Level-1 snapshots.

Bars are right-closed and labelled by their end, the A-share convention: the 09:31 bar covers
(09:30, 09:31], a trading day has 240 one-minute bars, 48 five-minute and 16 fifteen-minute bars.
A snapshot stamped exactly at an interval's start (09:30:00 after the call auction, 13:00:00 after
lunch) belongs to the first bar of that interval. Bar volume and amount are differences of the
cumulative day totals, so nothing traded between snapshots is lost.

Everything here is vectorised numpy over frames sorted by (symbol, ts): a day of 5,000 symbols
(4.8 M snapshots) rolls up in about a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_platform.core.markets import limit_prices, price_limit
from quant_platform.core.schema import BAR_SCHEMAS, KLINES_DAILY, TableSchema

FREQ_MINUTES = {"1m": 1, "5m": 5, "15m": 15}


def bar_labels(ts: pd.Series, minutes: int, interval_starts: pd.Series | None = None) -> np.ndarray:
    """Bar-end label (UTC, datetime64[ms]) of each instant: ceil to the bar size.

    An instant exactly on a bar boundary closes that bar, except at an interval start
    (`interval_starts`, the session open or the end of the lunch break) where it opens the next one.
    """
    step = np.int64(minutes * 60_000)
    t = _epoch_ms(ts)
    labels = -(-t // step) * step
    if interval_starts is not None:
        idx = pd.DatetimeIndex(interval_starts)
        idx = idx.tz_convert(None) if idx.tz is not None else idx
        starts = idx.as_unit("ms").asi8
        labels = np.where(np.isin(labels, starts), labels + step, labels)
    return labels.astype("datetime64[ms]")


def _group_bounds(*keys: np.ndarray) -> np.ndarray:
    """Start offsets of runs of equal consecutive keys (input already sorted by those keys)."""
    n = len(keys[0])
    change = np.zeros(n, dtype=bool)
    change[0] = True if n else change[:0]
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(change)


def _int_key(col: pd.Series) -> np.ndarray:
    """An integer array that orders/groups like `col` (datetimes as epoch ticks, strings factorised)."""
    if isinstance(col.dtype, pd.DatetimeTZDtype) or col.dtype.kind == "M":
        return col.array.asi8
    if pd.api.types.is_string_dtype(col.dtype) or col.dtype == object:
        return pd.factorize(col)[0]
    return col.to_numpy()


def _epoch_ms(col: pd.Series) -> np.ndarray:
    """UTC epoch milliseconds of a (tz-aware or naive-UTC) datetime column, without boxing Timestamps."""
    values = col.array
    return pd.DatetimeIndex(values).as_unit("ms").asi8


def _sorted(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Rows grouped by the first key (in order of first appearance) and sorted by the others.

    Grouping only needs contiguity, so strings are factorised to integers instead of compared:
    sorting 5 M rows by string keys takes minutes, by integer codes a fraction of a second.
    """
    if len(df) < 2:
        return df.reset_index(drop=True)
    keys = [_int_key(df[c]) for c in by]
    order = np.lexsort(tuple(reversed(keys)))
    if np.all(order[1:] > order[:-1]):
        return df.reset_index(drop=True)
    return df.iloc[order].reset_index(drop=True)


def bars_from_quotes(quotes: pd.DataFrame, freq: str = "1m", interval_starts=None) -> pd.DataFrame:
    """Roll snapshots (RAW_QUOTES) up into OHLCV bars (BAR_SCHEMAS[freq]).

    `interval_starts`: UTC instants where trading intervals begin (session open, end of lunch); a
    snapshot exactly there belongs to the following bar. Without it every instant is simply ceiled.
    """
    schema = BAR_SCHEMAS[freq]
    if quotes.empty:
        return schema.empty()
    q = _sorted(quotes, ["symbol", "ts"])
    label = bar_labels(q["ts"], FREQ_MINUTES[freq], interval_starts)
    sym = q["symbol"].to_numpy()
    day = q["trade_date"].to_numpy()
    starts = _group_bounds(sym, day, label)
    ends = np.append(starts[1:], len(q)) - 1
    price = q["price"].to_numpy(dtype=float)
    cum_vol = q["volume"].to_numpy(dtype=np.int64)
    cum_amt = q["amount"].to_numpy(dtype=float)

    first_of_day = np.ones(len(starts), dtype=bool)
    first_of_day[1:] = (sym[starts[1:]] != sym[starts[:-1]]) | (day[starts[1:]] != day[starts[:-1]])
    prev_cum_vol = np.where(first_of_day, 0, np.roll(cum_vol[ends], 1))
    prev_cum_amt = np.where(first_of_day, 0.0, np.roll(cum_amt[ends], 1))
    close = price[ends]
    ref = np.where(first_of_day, q["prev_close"].to_numpy(dtype=float)[starts], np.roll(close, 1))
    bars = pd.DataFrame(
        {
            "symbol": sym[starts],
            "trade_date": day[starts],
            "ts": pd.DatetimeIndex(label[starts]).tz_localize("UTC"),
            "open": price[starts],
            "high": np.maximum.reduceat(price, starts),
            "low": np.minimum.reduceat(price, starts),
            "close": close,
            "volume": cum_vol[ends] - prev_cum_vol,
            "amount": np.round(cum_amt[ends] - prev_cum_amt, 2),
            "change_rate": close / ref - 1.0,
        }
    )
    return schema.conform(bars)


def resample_bars(bars: pd.DataFrame, freq: str, prev_close: pd.Series | None = None) -> pd.DataFrame:
    """Coarser bars from finer ones (e.g. 1m -> 5m); identical to rolling the snapshots up directly.

    `prev_close`: previous-session close per symbol (index = symbol) for the first bar's change rate;
    when omitted it is recovered from the first fine bar (close / (1 + change_rate)).
    """
    schema = BAR_SCHEMAS[freq]
    if bars.empty:
        return schema.empty()
    b = _sorted(bars, ["symbol", "ts"])
    label = bar_labels(b["ts"], FREQ_MINUTES[freq])
    sym = b["symbol"].to_numpy()
    day = b["trade_date"].to_numpy()
    starts = _group_bounds(sym, day, label)
    ends = np.append(starts[1:], len(b)) - 1
    close = b["close"].to_numpy(dtype=float)[ends]
    first_of_day = np.ones(len(starts), dtype=bool)
    first_of_day[1:] = (sym[starts[1:]] != sym[starts[:-1]]) | (day[starts[1:]] != day[starts[:-1]])
    if prev_close is not None:
        day_ref = prev_close.reindex(sym[starts]).to_numpy(dtype=float)
    else:
        fine_close = b["close"].to_numpy(dtype=float)[starts]
        day_ref = fine_close / (1.0 + b["change_rate"].to_numpy(dtype=float)[starts])
    ref = np.where(first_of_day, day_ref, np.roll(close, 1))
    out = pd.DataFrame(
        {
            "symbol": sym[starts],
            "trade_date": day[starts],
            "ts": pd.DatetimeIndex(label[starts]).tz_localize("UTC"),
            "open": b["open"].to_numpy(dtype=float)[starts],
            "high": np.maximum.reduceat(b["high"].to_numpy(dtype=float), starts),
            "low": np.minimum.reduceat(b["low"].to_numpy(dtype=float), starts),
            "close": close,
            "volume": np.add.reduceat(b["volume"].to_numpy(dtype=np.int64), starts),
            "amount": np.round(np.add.reduceat(b["amount"].to_numpy(dtype=float), starts), 2),
            "change_rate": close / ref - 1.0,
        }
    )
    return schema.conform(out)


def intraday_bars(quotes: pd.DataFrame, interval_starts=None) -> dict[str, pd.DataFrame]:
    """1m bars from snapshots, then 5m and 15m from the 1m bars: {'1m': ..., '5m': ..., '15m': ...}."""
    one = bars_from_quotes(quotes, "1m", interval_starts)
    prev_close = None
    if not quotes.empty:
        prev_close = quotes.groupby("symbol", sort=False)["prev_close"].first()
    return {
        "1m": one,
        "5m": resample_bars(one, "5m", prev_close),
        "15m": resample_bars(one, "15m", prev_close),
    }


def daily_klines(quotes: pd.DataFrame) -> pd.DataFrame:
    """Daily klines from snapshots: the exchange's day fields of each symbol's last snapshot.

    open/high/low/volume/amount are the day-to-date values the exchange reports (they include trades
    between snapshots), close is the last price; limits follow the symbol's board.
    """
    if quotes.empty:
        return KLINES_DAILY.empty()
    q = _sorted(quotes, ["symbol", "trade_date", "ts"])
    sym = q["symbol"].to_numpy()
    day = q["trade_date"].to_numpy()
    starts = _group_bounds(sym, day)
    last = np.append(starts[1:], len(q)) - 1
    prev_close = q["prev_close"].to_numpy(dtype=float)[last]
    close = q["price"].to_numpy(dtype=float)[last]
    symbols = sym[last]
    limits = np.array([price_limit(s) for s in symbols], dtype=float)
    up, down = limit_prices(prev_close, limits)
    out = pd.DataFrame(
        {
            "symbol": symbols,
            "trade_date": day[last],
            "open": q["open"].to_numpy(dtype=float)[last],
            "high": q["high"].to_numpy(dtype=float)[last],
            "low": q["low"].to_numpy(dtype=float)[last],
            "close": close,
            "prev_close": prev_close,
            "volume": q["volume"].to_numpy(dtype=np.int64)[last],
            "amount": q["amount"].to_numpy(dtype=float)[last],
            "change_rate": close / prev_close - 1.0,
            "limit_up": up,
            "limit_down": down,
        }
    )
    return KLINES_DAILY.conform(out)


def schema_for(freq: str) -> TableSchema:
    return BAR_SCHEMAS[freq]
