"""The one builder of `quarantine` rows (`core.schema.QUARANTINE`).

Rows end up in quarantine from two kinds of places, and both build their frames here:

- the row rules (`rules.to_quarantine_table`): rows of one of our tables that broke a rule, with our
  column names; `source="rules"` writes the payload as ASCII JSON with ISO 8601 timestamps;
- the vendor adapters (`sources.vendor_columns`) and the streaming collector: raw vendor rows that
  could not be mapped; `source="vendor"` keeps the payload as the vendor sent it (non-ASCII keys
  and values as they are, anything JSON cannot encode as `str()`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from quant_platform.core.calendar import DateLike
from quant_platform.core.schema import QUARANTINE, TS

NO_DAY = pd.Timestamp("1970-01-01")
"""trade_date of a row whose day is unknown (trade_date is not nullable in the table)."""


def quarantine_frame(
    table_name: str,
    rows: pd.DataFrame,
    *,
    rule: str | Sequence[str],
    reason: str | Sequence[str],
    trade_date: DateLike | Sequence | pd.Series | None = None,
    symbol: str | Sequence | pd.Series | None = None,
    ts: Sequence | pd.Series | None = None,
    source: Literal["rules", "vendor"] = "rules",
) -> pd.DataFrame:
    """QUARANTINE-conformed frame with one row per row of `rows`, which becomes that row's `payload`.

    `rule`, `reason`, `trade_date` and `symbol` are one value for every row or one per row.
    `trade_date` None or unreadable: `NO_DAY`. `symbol` None or null: ''. `ts` (one per row) keeps
    only tz-aware instants (as UTC); naive, unreadable or missing ones become NaT.
    """
    n = len(rows)
    if n == 0:
        return QUARANTINE.empty()
    if source == "rules":
        cols = list(rows.columns)
        payload = [
            _dumps(dict(zip(cols, row, strict=True))) for row in rows.itertuples(index=False, name=None)
        ]
    elif source == "vendor":
        payload = [json.dumps(r, ensure_ascii=False, default=str) for r in rows.to_dict(orient="records")]
    else:
        raise ValueError(f"source must be 'rules' or 'vendor', got {source!r}")
    symbols = _per_row(symbol, n, "symbol")
    out = pd.DataFrame(
        {
            "trade_date": _days(trade_date, n).to_numpy(),
            "table_name": table_name,
            "symbol": [""] * n if symbols is None else ["" if _isnull(s) else str(s) for s in symbols],
            "ts": pd.Series(
                pd.NaT if ts is None else [_lenient_utc(v) for v in _per_row(ts, n, "ts")],
                index=range(n),
                dtype=TS,
            ),
            "rule": [str(r) for r in _per_row(rule, n, "rule")],
            "reason": [str(r) for r in _per_row(reason, n, "reason")],
            "payload": payload,
        }
    )
    return QUARANTINE.conform(out)


def _per_row(value, n: int, name: str) -> list | None:
    if value is None:
        return None
    if not pd.api.types.is_list_like(value):  # a str is not list-like
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"{name}: {len(values)} values for {n} rows")
    return values


def _days(trade_date, n: int) -> pd.Series:
    if trade_date is None:
        days = pd.Series(pd.NaT, index=range(n), dtype="datetime64[s]")
    elif isinstance(trade_date, pd.Series):
        days = pd.to_datetime(trade_date, errors="coerce").reset_index(drop=True)
    elif not pd.api.types.is_list_like(trade_date):
        days = pd.Series([pd.Timestamp(trade_date)] * n)
    else:
        days = pd.to_datetime(pd.Series(_per_row(trade_date, n, "trade_date")), errors="coerce")
    if days.dt.tz is not None:
        days = days.dt.tz_localize(None)
    return days.fillna(NO_DAY).astype("datetime64[s]")


def _isnull(v: object) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _lenient_utc(v: object) -> pd.Timestamp:
    if _isnull(v):
        return pd.NaT
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    if t is pd.NaT or t.tzinfo is None:
        return pd.NaT
    return t.tz_convert("UTC")


def _dumps(row: dict) -> str:
    """The row as JSON; a value JSON cannot hold as it is (e.g. a dict with tuple keys) as its str()."""
    try:
        return json.dumps(row, default=_json_default, allow_nan=True)
    except (TypeError, ValueError):
        safe = {}
        for key, value in row.items():
            try:
                json.dumps(value, default=_json_default, allow_nan=True)
                safe[key] = value
            except (TypeError, ValueError):
                safe[key] = str(value)
        return json.dumps(safe, default=_json_default, allow_nan=True)


def _json_default(v: object) -> object:
    if isinstance(v, pd.Timestamp | dt.date | dt.datetime):
        return v.isoformat()
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return str(v)
