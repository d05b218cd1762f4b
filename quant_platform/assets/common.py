"""What every store-touching asset shares: retry policy, pool, tags and metadata helpers."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from quant_platform.conventions import AS_OF_TAG, COLD_POOL  # noqa: F401 - re-exported for the assets
from quant_platform.core.calendar import get_calendar

# Stores fail transiently (a server restart, a held embedded lock): retry with backoff and jitter.
STORE_RETRY = dg.RetryPolicy(
    max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def preview(df: pd.DataFrame, rows: int = 8) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False) if len(df) else "_no rows_")


def table_metadata(df: pd.DataFrame, days: list[dt.date], time_col: str | None = "ts") -> dict:
    """Rows, symbols, days and time range of what an asset wrote, plus a preview."""
    meta: dict = {
        "dagster/row_count": len(df),
        "symbols": int(df["symbol"].nunique()) if "symbol" in df and len(df) else 0,
        "trading_days": len(days),
        "first_day": days[0].isoformat() if days else "",
        "last_day": days[-1].isoformat() if days else "",
        "preview": preview(df),
    }
    if time_col and time_col in df and len(df):
        meta["time_range"] = f"{df[time_col].min()} .. {df[time_col].max()}"
    return meta


def interval_starts(days: list[dt.date], calendar: str) -> list[pd.Timestamp]:
    """UTC instants where trading intervals begin (open, end of lunch) on `days`."""
    cal = get_calendar(calendar)
    return [start for d in days for start, _ in cal.session(d).intervals]
