"""The hot tier's values: records, change-rate frames and argument checks (quotes: `quote_codec`).

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

import pandas as pd

from quant_platform.core.schema import STR

CHANGE_FREQS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900}
CHANGE_COLUMNS = tuple(f"change_{f}" for f in CHANGE_FREQS)


# ------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class PositionState:
    """What exit rules need about an open position: how long it is held and its price extremes.

    `quantity` is the units held as `record_trades` last left them, so that recording a trade
    needs no scan of the account's history; None when unknown (a position imported from files or
    opened by hand), and then the cold tier's history decides.
    """

    account: str
    symbol: str
    held_days: int
    entry_price: float
    max_price: float
    min_price: float
    quantity: float | None = None


@dataclass(frozen=True)
class HotPing:
    url: str
    backend: str
    ok: bool
    server_version: str | None = None
    latency_ms: float | None = None
    error: str | None = None


# ------------------------------------------------------------------------------- argument checks


def _check_columns(df: pd.DataFrame, what: str, need_any: Sequence[str] = ()) -> None:
    """The cheap part of the argument checks, also done while the store is down."""
    if "symbol" not in df.columns:
        raise ValueError(f"{what} need a 'symbol' column; got {list(df.columns)}")
    if need_any and not any(c in df.columns for c in need_any):
        raise ValueError(f"{what} need at least one of {tuple(need_any)}; got {list(df.columns)}")


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


class _Symbols(list):
    """A list `_unique` already de-duplicated, so the resilient wrapper and its store check it once."""


def _unique(symbols: Iterable[str]) -> list[str]:
    if isinstance(symbols, _Symbols):
        return symbols
    if isinstance(symbols, str):
        symbols = [symbols]
    return _Symbols(dict.fromkeys(map(str, symbols)))


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
