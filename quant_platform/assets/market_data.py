"""`raw_quotes`: Level-1 snapshots per trading day, from the configured market source."""

import dagster as dg
import pandas as pd

from quant_platform.assets.common import AS_OF_TAG, COLD_POOL, STORE_RETRY, table_metadata
from quant_platform.core.schema import RAW_QUOTES
from quant_platform.partitions import daily_partitions, partition_days
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.hot import HotCacheResource
from quant_platform.resources.market import MarketDataResource


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STORE_RETRY,
    pool=COLD_POOL,
    group_name="market_data",
    kinds={"clickhouse", "pandas"},
    description="Level-1 snapshots (price, day OHLC, cumulative volume/amount, best bid/ask) per symbol. "
    "Cold tier table `raw_quotes`, one ClickHouse partition per trading day.",
)
def raw_quotes(
    context: dg.AssetExecutionContext,
    market: MarketDataResource,
    clickhouse: ClickHouseResource,
    hot: HotCacheResource,
) -> dg.MaterializeResult:
    days = partition_days(context)
    source = market.source()
    as_of = context.run.tags.get(AS_OF_TAG)
    frames = []
    for day in days:
        quotes = source.fetch_quotes(day)
        if as_of:  # intraday refresh: only what has happened by the scheduled instant
            quotes = quotes[quotes["ts"] <= pd.Timestamp(as_of)]
        frames.append(quotes)
        context.log.info(f"{source.name}: {len(quotes)} snapshots for {day}")
    df = pd.concat(frames, ignore_index=True) if frames else RAW_QUOTES.empty()
    with clickhouse.open() as cold:
        cold.replace_partitions(RAW_QUOTES, df, days)
    cache = hot.store()  # the newest snapshot per symbol; a cache outage only skips this
    cached = cache.set_latest_quotes(frames[-1]) if frames and len(frames[-1]) else 0
    return dg.MaterializeResult(
        metadata={**table_metadata(df, days), "source": source.name, "hot_latest_quotes": cached}
    )
