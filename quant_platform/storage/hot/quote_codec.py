"""The packed quote record of the hot tier: one fixed-size binary record per symbol.

Why not JSON: reading the latest quotes of 5,000 symbols spent most of its time parsing 5,000 JSON
documents and letting pandas infer types row by row. A fixed little-endian record turns a batch
read into one `np.frombuffer` over the concatenated values, and every column of the DataFrame is
built from one numpy array.

Record (`QUOTE_RECORD`, 90 bytes): a 2-byte mask of the RAW_QUOTES columns the writer supplied,
then trade_date and ts as epoch milliseconds (NaT = int64 min), the float columns, and volume as
int64 (null = int64 min). The symbol is the key, not part of the record. Columns beyond RAW_QUOTES
(the collector's `seq`) follow the record as one JSON object, so records without extras stay
fixed-size. `QUOTE_FORMAT` names the layout in the Redis key, so a layout change never mixes
with old values (Redis keeps nothing on disk, and old keys simply expire).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from quant_platform.core.schema import RAW_QUOTES
from quant_platform.storage.hot.codec import _check_columns

QUOTE_FORMAT = "q2"
INT_NULL = np.iinfo(np.int64).min

_TIME_COLUMNS = ("trade_date", "ts")
_INT_COLUMNS = ("volume",)
PACKED_COLUMNS = tuple(n for n in RAW_QUOTES.names if n != "symbol")
QUOTE_RECORD = np.dtype(
    [("mask", "<u2")]
    + [(c, "<i8" if c in _TIME_COLUMNS or c in _INT_COLUMNS else "<f8") for c in PACKED_COLUMNS]
)
RECORD_SIZE = QUOTE_RECORD.itemsize
_SCHEMA_DTYPES = RAW_QUOTES.dtypes
_BITS = {c: 1 << i for i, c in enumerate(PACKED_COLUMNS)}


def encode_quotes(df: pd.DataFrame) -> dict[str, bytes]:
    """One packed record per symbol, from the newest row of each symbol in `df`."""
    _check_columns(df, "quotes")
    if df.empty:
        return {}
    frame = df.sort_values("ts", kind="stable") if "ts" in df.columns else df
    frame = frame.drop_duplicates("symbol", keep="last").reset_index(drop=True)
    rec = np.zeros(len(frame), dtype=QUOTE_RECORD)
    mask = 0
    for col in PACKED_COLUMNS:
        if col in frame.columns:
            mask |= _BITS[col]
            rec[col] = _column_values(frame[col], col)
        else:
            rec[col] = INT_NULL if QUOTE_RECORD[col].kind == "i" else np.nan
    rec["mask"] = mask
    raw = rec.tobytes()
    records = [raw[i * RECORD_SIZE : (i + 1) * RECORD_SIZE] for i in range(len(frame))]
    extra = [c for c in frame.columns if c not in _SCHEMA_DTYPES]
    if extra:
        tails = frame[extra].to_json(orient="records", lines=True, date_format="iso").splitlines()
        records = [r + t.encode() for r, t in zip(records, tails, strict=True)]
    return dict(zip(frame["symbol"].astype(str).tolist(), records, strict=True))


def _column_values(s: pd.Series, col: str) -> np.ndarray:
    if col in _TIME_COLUMNS:
        if not pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = pd.to_datetime(s)
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return np.asarray(s, dtype="datetime64[ms]").view("int64")
    if col in _INT_COLUMNS:  # fractional volumes (crypto feeds) are truncated, as the schema's int64 is
        values = pd.to_numeric(s).to_numpy(dtype="float64", na_value=np.nan)
        return np.where(np.isnan(values), INT_NULL, np.trunc(np.nan_to_num(values)).astype("int64"))
    return pd.to_numeric(s).to_numpy(dtype="float64", na_value=np.nan)


def decode_quotes(symbols: Sequence[str], values: Sequence[bytes | None]) -> pd.DataFrame:
    """The rows of the symbols whose value is not None, in that order; inverse of `encode_quotes`.

    RAW_QUOTES columns get their schema dtypes (volume becomes Int64 when one is null), in schema
    order, followed by any extra columns.
    """
    if len(symbols) != len(values):
        raise ValueError(f"{len(symbols)} symbols but {len(values)} values")
    if None in values:
        kept = [i for i, v in enumerate(values) if v is not None]
        symbols, values = [symbols[i] for i in kept], [values[i] for i in kept]
    if not values:
        return RAW_QUOTES.empty()
    fixed = sum(map(len, values)) == RECORD_SIZE * len(values)  # checked in C, not per record
    long = [] if fixed else [i for i, v in enumerate(values) if len(v) > RECORD_SIZE]
    buf = b"".join(values) if fixed else b"".join(v[:RECORD_SIZE] for v in values)
    rec = np.frombuffer(buf, dtype=QUOTE_RECORD)
    mask = int(np.bitwise_or.reduce(rec["mask"]))
    cols: dict[str, object] = {"symbol": pd.array(list(symbols), dtype=_SCHEMA_DTYPES["symbol"])}
    for col in PACKED_COLUMNS:
        if mask & _BITS[col]:
            cols[col] = _decode_column(rec[col], col)
    out = pd.DataFrame(cols, copy=False)
    if long:
        tails = [json.loads(values[i][RECORD_SIZE:]) for i in long]
        extras = pd.DataFrame(tails, index=long)
        for col in extras.columns:
            out[col] = extras[col] if len(long) < len(out) else extras[col].to_numpy()
    return out


def _decode_column(values: np.ndarray, col: str) -> object:
    if col == "ts":
        return pd.DatetimeIndex(values.astype("int64").view("M8[ms]")).tz_localize("UTC")
    if col == "trade_date":
        return values.astype("int64").view("M8[ms]").astype("M8[s]")
    if col in _INT_COLUMNS:
        ints = values.astype("int64")
        nulls = ints == INT_NULL
        return pd.arrays.IntegerArray(ints, nulls) if nulls.any() else ints
    return values.astype("float64")
