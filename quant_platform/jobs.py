"""Jobs: the daily market-data job (one trading day, or a range in one run) and the intraday refresh."""

from __future__ import annotations

import dagster as dg

from quant_platform.partitions import daily_partitions

MARKET_DATA = dg.AssetSelection.groups("market_data", "quality")
INTRADAY = dg.AssetSelection.assets("raw_quotes", "bars_1m", "bars_5m", "bars_15m")

market_data_job = dg.define_asset_job(
    "market_data_daily",
    selection=MARKET_DATA,
    partitions_def=daily_partitions,
    description="Quotes -> 1m/5m/15m bars -> daily klines -> QA for trading days.",
)
intraday_job = dg.define_asset_job(
    "intraday_refresh",
    selection=INTRADAY,
    partitions_def=daily_partitions,
    description="Refresh today's quotes and intraday bars during trading sessions.",
)

backtest_job = dg.define_asset_job(
    "backtests",
    selection=dg.AssetSelection.assets("backtest_runs"),
    description="Backtest the configured strategy over the latest klines; records the run.",
)


def all_jobs() -> list:
    return [market_data_job, intraday_job, backtest_job]
