"""The one interface every market-data source implements, so assets never know which vendor is behind it."""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class MarketSource(Protocol):
    """Quotes and daily bars for one trading day and a universe of symbols.

    `fetch_quotes` returns snapshots conforming to `core.schema.RAW_QUOTES`; `fetch_daily_bars`
    returns rows conforming to `core.schema.KLINES_DAILY`. Both return an empty frame with the right
    columns (never None) when there is nothing, and raise on transport errors so the caller's retry
    policy can act.
    """

    name: str

    def universe(self, day: dt.date) -> list[str]: ...

    def fetch_quotes(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame: ...

    def fetch_daily_bars(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame: ...
