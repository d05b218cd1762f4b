"""Vendor payloads -> our column contracts, in one place.

Every vendor name, unit and symbol convention the platform understands is listed here, so an
upstream rename is a one-line change and a reviewer can see the whole mapping at once:

- AKShare daily klines (`stock_zh_a_hist`) and whole-market spot (`stock_zh_a_spot_em`), whose
  columns are Chinese and whose volume is in lots (手, 100 shares);
- files dropped into the file-drop folder (our own names, a few common English aliases, or an
  AKShare export with its Chinese headers);
- ticks of the streaming collector's WebSocket feed (short exchange-style keys).

Conversions never lose rows silently: a row that cannot be converted comes back in a rejected
frame shaped like `core.schema.QUARANTINE` (rule, readable reason, the offending row as JSON), which
the caller can write to the `quarantine` table. A payload that lacks required columns raises
`VendorPayloadError` naming them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from quant_platform.core.calendar import get_calendar
from quant_platform.core.markets import limit_prices, price_limit
from quant_platform.core.quality.quarantine import quarantine_frame
from quant_platform.core.schema import KLINES_DAILY, QUARANTINE, RAW_QUOTES

SHARES_PER_LOT = 100

# ---------------------------------------------------------------------------------- AKShare

# stock_zh_a_hist(symbol, period="daily", start_date, end_date, adjust): one row per trading day.
AKSHARE_HIST_COLUMNS: dict[str, str] = {
    "日期": "trade_date",
    "股票代码": "code",  # present in recent AKShare releases only
    "开盘": "open",
    "收盘": "close",
    "最高": "high",
    "最低": "low",
    "成交量": "volume_lots",  # 手 (lots of 100 shares)
    "成交额": "amount",  # yuan
    "振幅": "amplitude_pct",
    "涨跌幅": "change_pct",
    "涨跌额": "change",  # close - previous close, yuan
    "换手率": "turnover_pct",
}
AKSHARE_HIST_REQUIRED = ("日期", "开盘", "收盘", "最高", "最低", "成交量", "成交额")

# stock_zh_a_spot_em(): one row per listed A-share, the state of the market at call time.
AKSHARE_SPOT_COLUMNS: dict[str, str] = {
    "代码": "code",
    "名称": "name",
    "最新价": "price",
    "今开": "open",
    "最高": "high",
    "最低": "low",
    "昨收": "prev_close",
    "成交量": "volume_lots",  # 手
    "成交额": "amount",
    "买入": "bid",  # only in some spot variants; NaN otherwise
    "卖出": "ask",
    "涨跌幅": "change_pct",
    "涨跌额": "change",
}
AKSHARE_SPOT_REQUIRED = ("代码", "最新价", "今开", "最高", "最低", "昨收", "成交量", "成交额")

# ------------------------------------------------------------------------------- file drops

# Lower-cased header -> our column. Our own names map to themselves.
FILE_COLUMN_ALIASES: dict[str, str] = {
    **{n: n for n in RAW_QUOTES.names + KLINES_DAILY.names},
    "code": "symbol",
    "ticker": "symbol",
    "date": "trade_date",
    "tradedate": "trade_date",
    "datetime": "ts",
    "time": "ts",
    "timestamp": "ts",
    "last": "price",
    "last_price": "price",
    "preclose": "prev_close",
    "pre_close": "prev_close",
    "vol": "volume",
    "turnover": "amount",
    "bid1": "bid",
    "ask1": "ask",
}

# -------------------------------------------------------------------------- streaming ticks

# Exchange-style tick keys of the collector's feed -> our columns.
STREAM_TICK_FIELDS: dict[str, str] = {
    "s": "symbol",
    "seq": "seq",
    "E": "ts",  # event time, epoch milliseconds
    "c": "price",
    "o": "open",
    "h": "high",
    "l": "low",
    "pc": "prev_close",
    "v": "volume",  # cumulative base-asset volume of the rolling day
    "q": "amount",  # cumulative quote-asset turnover
    "b": "bid",
    "a": "ask",
}
STREAM_REQUIRED = ("s", "seq", "E", "c")


class VendorPayloadError(ValueError):
    """A vendor payload is unusable as a whole (missing columns, wrong shape)."""


# ---------------------------------------------------------------------------------- symbols

_SUFFIXES = {"SH": "SH", "SS": "SH", "XSHG": "SH", "SZ": "SZ", "XSHE": "SZ", "BJ": "BJ", "BSE": "BJ"}
_CODE = re.compile(r"^\d{1,6}$", re.ASCII)  # ASCII digits only: "６０００００" is not a code


def exchange_of(code: str) -> str:
    """Exchange suffix of a 6-digit A-share code ('600000' -> 'SH', '000001' -> 'SZ', '830799' -> 'BJ')."""
    if code.startswith(("92", "4", "8")):
        return "BJ"
    if code.startswith(("5", "6", "9")):
        return "SH"
    if code.startswith(("0", "1", "2", "3")):
        return "SZ"
    raise ValueError(f"cannot tell the exchange of A-share code {code!r}")


def normalise_symbol(value: object) -> str:
    """'600000', 600000, 'sh600000', 'SH.600000', '600000.XSHG', '600000.ss' -> '600000.SH'.

    Raises ValueError for anything that is not an A-share code.
    """
    text = str(value).strip().upper()
    if isinstance(value, (int, np.integer)) or _CODE.match(text):
        code = text.zfill(6)
        return f"{code}.{exchange_of(code)}"
    m = re.match(r"^(\d{6})\.([A-Z]+)$", text, re.ASCII)
    if m and m.group(2) in _SUFFIXES:
        return f"{m.group(1)}.{_SUFFIXES[m.group(2)]}"
    m = re.match(r"^([A-Z]{2})\.?(\d{6})$", text, re.ASCII)
    if m and m.group(1) in _SUFFIXES:
        return f"{m.group(2)}.{_SUFFIXES[m.group(1)]}"
    raise ValueError(f"not an A-share symbol: {value!r}")


def vendor_code(symbol: str) -> str:
    """'600000.SH' -> '600000' (what AKShare's per-symbol calls take)."""
    return normalise_symbol(symbol).split(".")[0]


# --------------------------------------------------------------------------------- rejects


def concat_rejected(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else QUARANTINE.empty()


def require_columns(raw: pd.DataFrame, required: tuple[str, ...], what: str) -> None:
    if not isinstance(raw, pd.DataFrame):
        raise VendorPayloadError(f"{what}: expected a DataFrame, got {type(raw).__name__}")
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise VendorPayloadError(f"{what}: payload lacks columns {missing}; got {list(raw.columns)}")


def _numeric(raw: pd.DataFrame, columns: Mapping[str, str]) -> tuple[pd.DataFrame, pd.Series]:
    """Vendor columns coerced to float; `bad` is a per-row reason ('' when fine) for values that are
    present but not numbers (a vendor NaN/None stays NaN and is not 'bad')."""
    out = {}
    bad = pd.Series("", index=raw.index, dtype=object)
    for vendor, ours in columns.items():
        if vendor not in raw.columns:
            continue
        col = raw[vendor]
        num = pd.to_numeric(col, errors="coerce")
        broken = num.isna() & col.notna() & (col.astype(str).str.strip() != "")
        if broken.any():
            notes = pd.Series(
                [f"{vendor}={v!r} is not a number; " for v in col[broken]], index=col[broken].index
            )
            bad.loc[broken] = bad.loc[broken] + notes
        out[ours] = num.astype("float64")
    return pd.DataFrame(out, index=raw.index), bad.str.rstrip("; ")


# ------------------------------------------------------------------------ AKShare conversions


def klines_from_akshare_hist(
    raw: pd.DataFrame, symbol: str, *, dedupe: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`stock_zh_a_hist` rows of one symbol -> (KLINES_DAILY frame, rejected QUARANTINE frame).

    Volume lots become shares. `prev_close` is `收盘 - 涨跌额` when the vendor sends the change,
    otherwise the previous row's close (NaN for the first row). Limits follow the symbol's board.
    `dedupe=False` keeps every row of a repeated day (file drops: the row rules judge the copies).
    """
    what = f"akshare stock_zh_a_hist({vendor_code(symbol)})"
    require_columns(raw, AKSHARE_HIST_REQUIRED, what)
    symbol = normalise_symbol(symbol)
    if raw.empty:
        return KLINES_DAILY.empty(), QUARANTINE.empty()
    raw = raw.reset_index(drop=True)
    days = pd.to_datetime(raw["日期"].astype(str), errors="coerce", format="mixed")
    nums, bad = _numeric(
        raw,
        {
            k: v
            for k, v in AKSHARE_HIST_COLUMNS.items()
            if v in ("open", "close", "high", "low", "volume_lots", "amount", "change")
        },
    )
    reasons = bad.copy()
    reasons[days.isna()] = [f"日期={v!r} is not a date" for v in raw.loc[days.isna(), "日期"]]
    missing = nums[["open", "close", "high", "low", "volume_lots", "amount"]].isna().any(axis=1) & (
        reasons == ""
    )
    reasons[missing] = "a required price/volume field is empty"
    good = reasons == ""
    rejected = quarantine_frame(
        KLINES_DAILY.name,
        raw[~good],
        rule="vendor_payload",
        reason=reasons[~good].tolist(),
        trade_date=days[~good],
        symbol=symbol,
        source="vendor",
    )
    n = nums[good].reset_index(drop=True)
    day = days[good].reset_index(drop=True).dt.normalize()
    prev_close = (n["close"] - n["change"]).round(4) if "change" in n else n["close"].shift(1)
    limits = np.full(len(n), price_limit(symbol))
    up, down = limit_prices(prev_close.to_numpy(), limits)
    out = pd.DataFrame(
        {
            "symbol": symbol,
            "trade_date": day.astype("datetime64[s]"),
            "open": n["open"],
            "high": n["high"],
            "low": n["low"],
            "close": n["close"],
            "prev_close": prev_close,
            "volume": (n["volume_lots"] * SHARES_PER_LOT).round().astype("int64"),
            "amount": n["amount"],
            "change_rate": n["close"] / prev_close - 1.0,
            "limit_up": np.where(prev_close.notna(), up, np.nan),
            "limit_down": np.where(prev_close.notna(), down, np.nan),
        }
    )
    if dedupe:
        out = out.drop_duplicates(["symbol", "trade_date"], keep="last")
    out = out.sort_values("trade_date", kind="stable")
    return KLINES_DAILY.conform(out), rejected


def quotes_from_akshare_spot(
    raw: pd.DataFrame, *, ts: pd.Timestamp, trade_date: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`stock_zh_a_spot_em` (whole market) -> (RAW_QUOTES frame, rejected QUARANTINE frame).

    Every row is stamped `ts` (the fetch instant; the vendor sends none). Rows without a last price
    (suspended, not yet traded) and rows with non-numeric values or unknown codes are rejected with
    their reason. Bid/ask are NaN unless the payload has 买入/卖出.
    """
    what = "akshare stock_zh_a_spot_em"
    require_columns(raw, AKSHARE_SPOT_REQUIRED, what)
    if raw.empty:
        raise VendorPayloadError(f"{what}: empty payload (the whole-market spot never is)")
    raw = raw.reset_index(drop=True)
    nums, bad = _numeric(raw, {k: v for k, v in AKSHARE_SPOT_COLUMNS.items() if k not in ("代码", "名称")})
    reasons = bad.copy()
    symbols = []
    for i, code in enumerate(raw["代码"].tolist()):
        try:
            symbols.append(normalise_symbol(code))
        except ValueError as exc:
            symbols.append(str(code))
            reasons[i] = (reasons[i] + "; " if reasons[i] else "") + str(exc)
    symbols = pd.Series(symbols, index=raw.index)
    no_trade = (reasons == "") & nums[["price", "volume_lots"]].isna().any(axis=1)
    good = (reasons == "") & ~no_trade
    rules = pd.Series("vendor_payload", index=raw.index)
    rules[no_trade] = "no_trade"
    reasons[no_trade] = "no last price or volume (suspended or not traded yet)"
    rejected = concat_rejected(
        [
            quarantine_frame(
                RAW_QUOTES.name,
                raw[~good & (rules == r)],
                rule=r,
                reason=reasons[~good & (rules == r)].tolist(),
                trade_date=pd.Timestamp(trade_date),
                symbol=symbols[~good & (rules == r)].tolist(),
                source="vendor",
            )
            for r in ("vendor_payload", "no_trade")
        ]
    )
    n = nums[good].reset_index(drop=True)
    nan = pd.Series(np.nan, index=n.index)
    out = pd.DataFrame(
        {
            "symbol": symbols[good].reset_index(drop=True),
            "trade_date": pd.Timestamp(trade_date),
            "ts": pd.Timestamp(ts).tz_convert("UTC")
            if pd.Timestamp(ts).tzinfo
            else pd.Timestamp(ts, tz="UTC"),
            "price": n["price"],
            "open": n["open"],
            "high": n["high"],
            "low": n["low"],
            "prev_close": n["prev_close"],
            "volume": (n["volume_lots"] * SHARES_PER_LOT).round().astype("int64"),
            "amount": n["amount"].fillna(0.0),
            "bid": n.get("bid", nan),
            "ask": n.get("ask", nan),
        }
    )
    out = out.drop_duplicates("symbol", keep="last")
    return RAW_QUOTES.conform(out), rejected


# ------------------------------------------------------------------------------- file drops


def rename_file_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Headers of a dropped file -> our names (case-insensitive aliases); unknown columns are kept."""
    mapping = {}
    for col in df.columns:
        ours = FILE_COLUMN_ALIASES.get(str(col).strip().lower())
        if ours and ours not in mapping.values():
            mapping[col] = ours
    return df.rename(columns=mapping)


def is_akshare_hist(df: pd.DataFrame) -> bool:
    return all(c in df.columns for c in AKSHARE_HIST_REQUIRED)


# --------------------------------------------------------------------- derived close snapshot


def close_snapshots(klines: pd.DataFrame, calendar: str = "XSHG") -> pd.DataFrame:
    """One RAW_QUOTES row per kline: the state at the session close (price = close, day fields).

    For sources that only have daily bars for a day (AKShare history, kline file drops): the
    `klines_daily` rollup of these snapshots gives back the same open/high/low/close/volume/amount.
    """
    if klines.empty:
        return RAW_QUOTES.empty()
    cal = get_calendar(calendar)
    closes = {
        d: cal.session(d).close for d in pd.DatetimeIndex(klines["trade_date"]).date if cal.is_session(d)
    }
    k = klines[pd.DatetimeIndex(klines["trade_date"]).map(lambda d: d.date() in closes).to_numpy(dtype=bool)]
    if k.empty:
        return RAW_QUOTES.empty()
    ts = pd.DatetimeIndex([closes[d] for d in pd.DatetimeIndex(k["trade_date"]).date]).tz_convert("UTC")
    out = pd.DataFrame(
        {
            "symbol": k["symbol"].to_numpy(),
            "trade_date": k["trade_date"].to_numpy(),
            "ts": ts.as_unit("ms"),
            "price": k["close"].to_numpy(),
            "open": k["open"].to_numpy(),
            "high": k["high"].to_numpy(),
            "low": k["low"].to_numpy(),
            "prev_close": k["prev_close"].to_numpy(),
            "volume": k["volume"].to_numpy(),
            "amount": k["amount"].to_numpy(),
            "bid": np.nan,
            "ask": np.nan,
        }
    )
    return RAW_QUOTES.conform(out)
