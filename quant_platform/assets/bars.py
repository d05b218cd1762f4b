"""Intraday rollups: 1m, 5m and 15m OHLCV bars with change rates, from `raw_quotes`."""

import dagster as dg
import pandas as pd

from quant_platform.assets.common import (
    STORE_RETRY,
    cold_table_metadata,
    interval_starts,
    store_step,
    table_metadata,
)
from quant_platform.conventions import COLD_POOL
from quant_platform.core.rollups import intraday_bars
from quant_platform.core.schema import BAR_SCHEMAS
from quant_platform.partitions import calendar_name, daily_partitions, partition_days
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.hot import HotCacheResource

BAR_KEYS = {freq: dg.AssetKey(f"bars_{freq}") for freq in BAR_SCHEMAS}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            deps=["raw_quotes"],
            partitions_def=daily_partitions,
            group_name="market_data",
            kinds={"clickhouse", "pandas"},
            metadata=cold_table_metadata(BAR_SCHEMAS[freq]),
            description=f"{freq} bars, right-closed and labelled by bar end, with change_rate vs the "
            f"previous bar (first bar: vs prev_close). Cold tier table `bars_{freq}`.",
        )
        for freq, key in BAR_KEYS.items()
    ],
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STORE_RETRY,
    pool=COLD_POOL,
    can_subset=False,
)
@store_step
def intraday_bars_assets(
    context: dg.AssetExecutionContext, clickhouse: ClickHouseResource, hot: HotCacheResource
):
    days = partition_days(context)
    with clickhouse.open() as cold:
        quotes = cold.read_table("raw_quotes", days[0], days[-1])
        bars = intraday_bars(quotes, interval_starts(days, calendar_name()))
        # Bars are rolled up from gated quotes, so they are not split row by row again (that cost a
        # third of this step); their blocking checks still validate every bar with GX.
        for freq, df in bars.items():
            cold.replace_partitions(BAR_SCHEMAS[freq], df, days)
    rates = latest_change_rates(bars)
    cached = hot.store().set_change_rates(rates) if len(rates) else 0
    for freq, df in bars.items():
        yield dg.MaterializeResult(
            asset_key=BAR_KEYS[freq],
            metadata={**table_metadata(df, days), "hot_change_rates": cached},
        )


def latest_change_rates(bars: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """change_1m / change_5m / change_15m of each symbol's newest bar (for the hot tier)."""
    rates = [
        df.sort_values("ts").groupby("symbol")["change_rate"].last().rename(f"change_{freq}")
        for freq, df in bars.items()
        if len(df)
    ]
    return pd.concat(rates, axis=1).rename_axis("symbol").reset_index() if rates else pd.DataFrame()
