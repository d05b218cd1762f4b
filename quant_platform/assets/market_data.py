"""`raw_quotes`: Level-1 snapshots per trading day, from the configured market source."""

import dagster as dg
import pandas as pd

from quant_platform.assets import gate
from quant_platform.assets.common import STORE_RETRY, cold_table_metadata, store_step, table_metadata
from quant_platform.conventions import AS_OF_TAG, COLD_POOL
from quant_platform.core.schema import RAW_QUOTES
from quant_platform.partitions import calendar_name, daily_partitions, partition_days
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.hot import HotCacheResource
from quant_platform.resources.market import MarketDataResource
from quant_platform.sources.symbols import record_source_universe


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STORE_RETRY,
    pool=COLD_POOL,
    group_name="market_data",
    kinds={"clickhouse", "pandas"},
    metadata=cold_table_metadata(RAW_QUOTES),
    description="Level-1 snapshots (price, day OHLC, cumulative volume/amount, best bid/ask) per symbol. "
    "Cold tier table `raw_quotes`, one ClickHouse partition per trading day.",
)
@store_step
def raw_quotes(
    context: dg.AssetExecutionContext,
    market: MarketDataResource,
    clickhouse: ClickHouseResource,
    hot: HotCacheResource,
) -> dg.MaterializeResult:
    days = partition_days(context)
    source = market.source()
    as_of = context.run.tags.get(AS_OF_TAG)
    frames = {}
    for day in days:
        quotes = source.fetch_quotes(day)
        if as_of:  # intraday refresh: only what has happened by the scheduled instant
            quotes = snapshots_until(quotes, pd.Timestamp(as_of))
        frames[day] = quotes
        context.log.info(f"{source.name}: {len(quotes)} snapshots for {day}")
    universe = {day: source.universe(day) for day in days}  # each day against its own universe
    checked = gate.gate("raw_quotes", frames, RAW_QUOTES, calendar_name(), universe=universe)
    vendor_rejected = gate.vendor_rejected(source, "raw_quotes", days)  # rows a vendor adapter could not map
    if len(vendor_rejected):
        checked.add_quarantine(vendor_rejected)
    for warning in checked.warnings:
        context.log.warning(warning)
    with clickhouse.open() as cold:
        record_source_universe(cold, source, days, universe)  # the symbol master file drops check against
        gate.write(cold, RAW_QUOTES, checked, days)
    last_day = gate.by_day(checked.clean, days[-1:])[days[-1]]
    cached = hot.store().set_latest_quotes(last_day) if len(last_day) else 0  # an outage only skips it
    return dg.MaterializeResult(
        metadata={
            **table_metadata(checked.clean, days),
            **checked.metadata,
            "source": source.name,
            "hot_latest_quotes": cached,
        }
    )


def snapshots_until(quotes: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Snapshots at or before `as_of`. A ts that is not a readable tz-aware instant (text, null, a
    naive value) is kept, so the gate quarantines it with its reason instead of failing the day."""
    ts = quotes["ts"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = pd.Series([_instant(v) for v in ts], index=quotes.index, dtype="datetime64[ms, UTC]")
    return quotes[~(ts > as_of).to_numpy()]


def _instant(v: object) -> pd.Timestamp:
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    return t.tz_convert("UTC") if t is not pd.NaT and t.tzinfo is not None else pd.NaT
