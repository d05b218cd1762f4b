"""The one interface every market-data source implements, so assets never know which vendor is behind it."""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class MarketSource(Protocol):
    """Quotes and daily bars for one trading day and a universe of symbols.

    `fetch_quotes` returns snapshots with the `core.schema.RAW_QUOTES` columns; `fetch_daily_bars`
    rows with the `core.schema.KLINES_DAILY` columns. Both return an empty frame with the right
    columns (never None) when there is nothing, and raise on transport errors so the caller's retry
    policy can act. Values may be raw (text where a vendor sent text): the row rules judge them.

    `universe(day)` is the source's listing of `day`: what its rows are checked against. Sources with
    a listing of their own record it in the symbol master
    (`sources.symbols.record_source_universe`); a source without one (the file drops) sets
    `universe_from_master = True` and reads the master instead, never the symbols of its own rows.
    Sources that reject rows while mapping a vendor's payload return them from `take_rejected()`.
    """

    name: str

    def universe(self, day: dt.date) -> list[str]: ...

    def fetch_quotes(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame: ...

    def fetch_daily_bars(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame: ...
