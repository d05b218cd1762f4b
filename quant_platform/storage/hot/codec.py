"""The hot tier's values: records, the quote JSON codec, change-rate frames and argument checks.

Shared by the memory and Redis stores, which must store identical values so that the memory store
really has Redis semantics, and by the resilient wrapper, which runs the same argument checks while
the store is down.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quant_platform.core.schema import RAW_QUOTES, STR

CHANGE_FREQS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900}
CHANGE_COLUMNS = tuple(f"change_{f}" for f in CHANGE_FREQS)


# ------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class PositionState:
    """What exit rules need about an open position: how long it is held and its price extremes."""

    account: str
    symbol: str
    held_days: int
    entry_price: float
    max_price: float
    min_price: float


@dataclass(frozen=True)
class HotPing:
    url: str
    backend: str
    ok: bool
    server_version: str | None = None
    latency_ms: float | None = None
    error: str | None = None


# ------------------------------------------------------------------------------- quote codec

_SCHEMA_DTYPES = RAW_QUOTES.dtypes


def encode_quotes(df: pd.DataFrame) -> dict[str, str]:
    """One JSON document per symbol, from the newest row of each symbol in `df`.

    Datetime columns become epoch milliseconds, and NaN/NaT become null. Columns beyond RAW_QUOTES
    are kept and come back as plain JSON values.
    """
    _check_columns(df, "quotes")
    if df.empty:
        return {}
    frame = df.sort_values("ts", kind="stable") if "ts" in df.columns else df
    frame = frame.drop_duplicates("symbol", keep="last").reset_index(drop=True)
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_dtype(s.dtype):
            ms = np.asarray(s, dtype="datetime64[ms]").astype("int64")
            out[col] = pd.Series(ms, index=out.index, dtype="Int64").mask(s.isna().to_numpy())
    lines = out.to_json(orient="records", lines=True, date_format="iso").splitlines()
    return dict(zip(frame["symbol"].astype(str).tolist(), lines, strict=True))


def _check_columns(df: pd.DataFrame, what: str, need_any: Sequence[str] = ()) -> None:
    """The cheap part of the argument checks, also done while the store is down."""
    if "symbol" not in df.columns:
        raise ValueError(f"{what} need a 'symbol' column; got {list(df.columns)}")
    if need_any and not any(c in df.columns for c in need_any):
        raise ValueError(f"{what} need at least one of {tuple(need_any)}; got {list(df.columns)}")


def decode_quotes(docs: Sequence[str]) -> pd.DataFrame:
    """Inverse of `encode_quotes`: RAW_QUOTES columns get their schema dtypes, in schema order."""
    if not docs:
        return RAW_QUOTES.empty()
    df = pd.DataFrame(json.loads("[" + ",".join(docs) + "]"))
    for col, dtype in _SCHEMA_DTYPES.items():
        if col not in df.columns:
            continue
        if dtype.startswith("datetime64"):
            values = pd.to_datetime(df[col], unit="ms", utc="UTC" in dtype)
            df[col] = values.astype(dtype)
        elif dtype == "int64":
            values = pd.to_numeric(df[col])
            df[col] = values.astype("int64") if values.notna().all() else values.astype("Int64")
        elif dtype == STR:
            df[col] = df[col].astype(str)
        else:
            df[col] = pd.to_numeric(df[col]).astype(dtype)
    ordered = [c for c in RAW_QUOTES.names if c in df.columns] + [
        c for c in df.columns if c not in _SCHEMA_DTYPES
    ]
    return df.loc[:, ordered]


def _rates_frame(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    values = {
        c: pd.Series([r.get(c, math.nan) for r in rows.values()], dtype="float64") for c in CHANGE_COLUMNS
    }
    return pd.DataFrame({"symbol": pd.Series(list(rows), dtype=STR), **values})


def _rate_items(df: pd.DataFrame) -> list[tuple[str, str, float]]:
    """(freq, symbol, rate) for every finite value in the change_* columns present in `df`."""
    _check_columns(df, "change rates", CHANGE_COLUMNS)
    cols = [c for c in CHANGE_COLUMNS if c in df.columns]
    items = []
    symbols = df["symbol"].astype(str).tolist()
    for col in cols:
        freq = col.removeprefix("change_")
        values = pd.to_numeric(df[col]).astype("float64").tolist()
        items.extend((freq, sym, v) for sym, v in zip(symbols, values, strict=True) if math.isfinite(v))
    return items


def _unique(symbols: Iterable[str]) -> list[str]:
    if isinstance(symbols, str):
        symbols = [symbols]
    return list(dict.fromkeys(str(s) for s in symbols))


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _prices(prices: Mapping[str, float]) -> list[tuple[str, float]]:
    out = []
    for sym, p in prices.items():
        value = float(p)
        if math.isfinite(value):
            out.append((str(sym), value))
    return out


def _event_payload(run_id: str, event: Mapping[str, Any]) -> str:
    body = dict(event)
    body.setdefault("run_id", run_id)
    body.setdefault("ts", pd.Timestamp.now(tz="UTC").isoformat())
    return json.dumps(body, default=str)
