"""What every store-touching asset shares: retry policy, pool, tags and metadata helpers."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from quant_platform.core.calendar import get_calendar
from quant_platform.core.schema import TableSchema
from quant_platform.storage.cold import DEFAULT_DATABASE, qualified_name

# Stores fail transiently (a server restart, a held embedded lock): retry with backoff and jitter.
STORE_RETRY = dg.RetryPolicy(
    max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def preview(df: pd.DataFrame, rows: int = 8) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False) if len(df) else "_no rows_")


def cold_table_metadata(schema: TableSchema, database: str = DEFAULT_DATABASE) -> dict:
    """Definition metadata of an asset that writes cold table `schema`: where the table lives
    (`dagster/table_name`, `database.table` as the cold store names it) and its columns with their
    ClickHouse types and docs (`dagster/column_schema`), shown on the asset's page in the UI.

    Use as `metadata=` of `@dg.asset`, `dg.AssetSpec` or `dg.AssetOut`.
    """
    columns = [dg.TableColumn(c.name, type=c.ch_type, description=c.doc or None) for c in schema.columns]
    return {
        "dagster/table_name": qualified_name(schema.name, database),
        "dagster/column_schema": dg.TableSchema(columns=columns),
    }


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
