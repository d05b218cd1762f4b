"""The trade records callers hand to `Client.record_trades`: columns, validation and bounds.

Required columns: trade_id, account, symbol, side (buy | sell), quantity (> 0), price (> 0), ts.
Optional: strategy (''), commission (0, >= 0), realized_pnl (0; the broker's figure, the platform
does not compute cost bases). A naive `ts` is taken as UTC; `trade_date` is the day of `ts` in the
calendar's timezone. Rows repeating an (account, trade_id) of the batch are dropped (first kept).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from quant_platform.core.calendar import get_calendar
from quant_platform.core.limits import MAX_TRADES_PER_BATCH, check_count
from quant_platform.core.schema import TRADES

REQUIRED = ("trade_id", "account", "symbol", "side", "quantity", "price", "ts")
OPTIONAL = {"strategy": "", "commission": 0.0, "realized_pnl": 0.0}
SIDES = ("buy", "sell")
# The columns of a trade as callers and the file store see it (TRADES without its derived columns).
INPUT_COLUMNS = (
    "trade_id", "account", "strategy", "symbol", "side", "quantity", "price", "commission",
    "realized_pnl", "ts",
)  # fmt: skip

_TRADE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}$")
_NAME = re.compile(r"^\S(.{0,126}\S)?$")
_SYMBOL = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._\-/]{0,31}$")
_STRATEGY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._:\-]{0,127})?$")


def _bad(column: str, mask: np.ndarray | pd.Series, frame: pd.DataFrame, rule: str) -> None:
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        first = int(np.flatnonzero(mask)[0])
        raise ValueError(
            f"trades: {int(mask.sum()):,} row(s) with {rule} in {column!r}, first at row {first}: "
            f"{frame[column].iloc[first]!r}"
        )


def normalize_trades(df: pd.DataFrame, calendar: str, *, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """`df` as TRADES rows (recorded_at = now), validated; ValueError naming the first bad row."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError("trades must be a pandas DataFrame")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"trades: missing columns {missing}; required {list(REQUIRED)}")
    check_count("trades", len(df), MAX_TRADES_PER_BATCH)
    out = pd.DataFrame(index=range(len(df)))
    src = df.reset_index(drop=True)
    for col in ("trade_id", "account", "symbol"):
        out[col] = src[col].astype(str)
    out["strategy"] = src["strategy"].fillna("").astype(str) if "strategy" in src else ""
    out["side"] = src["side"].astype(str).str.lower()
    for col in ("quantity", "price", "commission", "realized_pnl"):
        if col in src:
            out[col] = pd.to_numeric(src[col], errors="coerce").astype("float64")
        else:
            out[col] = OPTIONAL[col]
    raw = src["ts"]
    text = not pd.api.types.is_datetime64_any_dtype(raw)
    ts = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601" if text else None)
    out["ts"] = ts.dt.floor("ms")

    _bad(
        "trade_id",
        ~out["trade_id"].str.match(_TRADE_ID),
        out,
        "an invalid id (1-64 of A-Z a-z 0-9 . _ : / -)",
    )
    _bad("account", ~out["account"].str.match(_NAME), out, "an invalid account name")
    _bad("symbol", ~out["symbol"].str.match(_SYMBOL), out, "an invalid symbol")
    _bad("strategy", ~out["strategy"].str.match(_STRATEGY), out, "an invalid strategy name")
    _bad("side", ~out["side"].isin(SIDES), out, "a side other than buy/sell")
    for col in ("quantity", "price"):
        _bad(col, ~(np.isfinite(out[col]) & (out[col] > 0)), out, "a value that is not a positive number")
    _bad(
        "commission",
        ~(np.isfinite(out["commission"]) & (out["commission"] >= 0)),
        out,
        "a negative or missing value",
    )
    _bad("realized_pnl", ~np.isfinite(out["realized_pnl"]), out, "a missing or infinite value")
    _bad("ts", out["ts"].isna().to_numpy(), out, "an unparseable time")

    tz = get_calendar(calendar).tz
    out["trade_date"] = (
        out["ts"].dt.tz_convert(tz).dt.tz_localize(None).dt.normalize().astype("datetime64[s]")
    )
    out["recorded_at"] = (now or pd.Timestamp.now(tz="UTC")).floor("ms")
    out = out.drop_duplicates(["account", "trade_id"], keep="first")
    return TRADES.conform(out)
