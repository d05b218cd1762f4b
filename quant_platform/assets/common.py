"""What every store-touching asset shares: retry policy and error classification, metadata helpers."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import dagster as dg
import pandas as pd

from quant_platform.core.calendar import get_calendar
from quant_platform.core.schema import TableSchema
from quant_platform.storage.cold import DEFAULT_DATABASE, qualified_name

F = TypeVar("F", bound=Callable)

# Stores fail transiently (a server restart, a held embedded lock): retry with backoff and jitter.
# Only transient errors get that far: bodies run under `store_step`, which fails anything else at once.
STORE_RETRY = dg.RetryPolicy(
    max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry can cure: lost or refused connections and timeouts (`OSError`,
    `ConnectionError`, `TimeoutError`, clickhouse-connect's `OperationalError`), a cold store that
    cannot be reached or whose embedded path another process holds (`ColdStoreError` from connecting,
    `ColdStoreLocked`), an unreachable warm or hot store (`StoreUnavailable`, `HotStoreUnavailable`,
    a transient SQLAlchemy error), a vendor that kept failing in transport (`SourceUnavailable`).
    Anything else (a bad value, a refused write, a bug) fails the same way every time."""
    from clickhouse_connect.driver.exceptions import OperationalError

    from quant_platform.sources.ratelimit import SourceUnavailable
    from quant_platform.storage.cold import ColdStoreError
    from quant_platform.storage.hot.errors import HotStoreUnavailable
    from quant_platform.storage.warm.errors import StoreUnavailable
    from quant_platform.storage.warm.errors import is_transient as warm_transient

    transient = (OSError, OperationalError, HotStoreUnavailable, StoreUnavailable, SourceUnavailable)
    # ColdStoreError is raised on purpose only by connect(): unreachable, or held (ColdStoreLocked).
    return isinstance(exc, transient + (ColdStoreError,)) or warm_transient(exc)


@contextmanager
def store_errors(step: str = "step") -> Iterator[None]:
    """Let transient errors through to the step's RetryPolicy; turn any other exception into a
    `dg.Failure` that is not retried, whose description keeps the error's type and message.
    `dg.Failure` and `dg.RetryRequested` raised on purpose pass unchanged."""
    try:
        yield
    except (dg.Failure, dg.RetryRequested):
        raise
    except Exception as exc:
        if is_transient(exc):
            raise
        raise dg.Failure(
            description=f"{type(exc).__name__}: {exc}",
            metadata={"error_type": f"{type(exc).__module__}.{type(exc).__qualname__}", "step": step},
            allow_retries=False,
        ) from exc


def store_step(fn: F) -> F:
    """Decorator for the body of a store-touching asset or op (under `@dg.asset` / `@dg.op`): runs
    it inside `store_errors`, so a deterministic error fails after one attempt instead of being
    retried by `STORE_RETRY`. Generator bodies (multi-assets, ops yielding outputs) work too.
    The signature is kept for Dagster (context, config and resources are found by name and type)."""
    name = getattr(fn, "__name__", "step")
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            with store_errors(name):
                yield from fn(*args, **kwargs)

        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def call(*args, **kwargs):
        with store_errors(name):
            return fn(*args, **kwargs)

    return call  # type: ignore[return-value]


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
