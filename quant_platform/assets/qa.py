"""`qa_report`: per trading day, the numbers that say whether the day's data can be trusted.

Completeness per symbol, duplicates, quarantined rows by rule, robust return outliers, stale prices
and calendar gaps for quotes, 1m bars and klines, stored in the cold tier (`qa_metrics`) and shown
in the UI as the day's table, the trend across recent days and plots.
"""

import datetime as dt

import dagster as dg
import pandas as pd

from quant_platform.assets.common import STORE_RETRY, cold_table_metadata, store_step
from quant_platform.conventions import COLD_POOL
from quant_platform.core.plots import markdown_image
from quant_platform.core.schema import QA_METRICS
from quant_platform.partitions import calendar_name, daily_partitions, partition_days
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.market import MarketDataResource
from quant_platform.storage.cold import ColdStore

REPORTED = ("raw_quotes", "bars_1m", "klines_daily")
TREND_DAYS = 60
TREND_METRICS = ["rows", "quarantined_share", "completeness_mean", "return_outliers", "stale_symbols"]


def day_metrics(cold: ColdStore, day: dt.date, universe: list[str] | None) -> pd.DataFrame:
    """QA_METRICS rows of every reported table for one trading day."""
    from quant_platform import quality

    quarantine = cold.read_table("quarantine", day, day)
    frames = []
    for table in REPORTED:
        df = cold.read_table(table, day, day)
        rejected = quarantine[quarantine["table_name"] == table]
        frames.append(
            quality.partition_metrics(
                df, table, trade_date=day, quarantined=rejected, universe=universe, calendar=calendar_name()
            )
        )
    return QA_METRICS.conform(pd.concat(frames, ignore_index=True))


@dg.asset(
    deps=["raw_quotes", "bars_1m", "bars_5m", "bars_15m", "klines_daily"],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STORE_RETRY,
    pool=COLD_POOL,
    group_name="quality",
    kinds={"clickhouse", "pandas"},
    metadata=cold_table_metadata(QA_METRICS),
    description="Per-day QA metrics of quotes, 1m bars and klines (completeness, duplicates, quarantine "
    "by rule, outliers, stale prices, gaps). Cold tier table `qa_metrics`; UI: table, trend, plots.",
)
@store_step
def qa_report(
    context: dg.AssetExecutionContext, clickhouse: ClickHouseResource, market: MarketDataResource
) -> dg.MaterializeResult:
    from quant_platform import quality

    days = partition_days(context)
    source = market.source()
    universe = {day: source.universe(day) for day in days}  # each day against its own universe
    with clickhouse.open() as cold:
        metrics = pd.concat([day_metrics(cold, day, universe[day]) for day in days], ignore_index=True)
        cold.replace_partitions(QA_METRICS, metrics, days)
        history = cold.read_table("qa_metrics", days[-1] - dt.timedelta(days=TREND_DAYS * 2), days[-1])
    last = metrics[metrics["trade_date"] == pd.Timestamp(days[-1])]
    trend = quality.qa_trend(history, table_name="raw_quotes", metric_names=TREND_METRICS).tail(TREND_DAYS)
    meta = {
        "dagster/row_count": len(metrics),
        "trading_days": len(days),
        "last_day": str(days[-1]),
        "summary": dg.MetadataValue.md(quality.summary_markdown(last)),
        "trend": dg.MetadataValue.md(quality.trend_markdown(trend.tail(10))),
    }
    if len(trend) > 1:
        png = quality.plot_trend(trend, [c for c in trend.columns if "share" in c or "completeness" in c])
        meta["trend_plot"] = dg.MetadataValue.md(markdown_image(png, "QA trend"))
    return dg.MaterializeResult(metadata=meta)
