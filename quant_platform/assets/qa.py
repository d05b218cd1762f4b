"""`qa_report`: per trading day, the numbers that say whether the day's data can be trusted."""

import dagster as dg
import pandas as pd

from quant_platform.assets.common import COLD_POOL, STORE_RETRY
from quant_platform.core.schema import QA_METRICS
from quant_platform.partitions import daily_partitions, partition_days
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.storage.cold import ColdStore

# table -> (key expression for duplicates, numeric column whose NaNs count as nulls)
_TABLES = {
    "raw_quotes": ("(symbol, ts)", "price"),
    "bars_1m": ("(symbol, ts)", "close"),
    "bars_5m": ("(symbol, ts)", "close"),
    "bars_15m": ("(symbol, ts)", "close"),
    "klines_daily": ("symbol", "close"),
}


def table_metrics(cold: ColdStore, start, end) -> pd.DataFrame:
    """Rows, symbols, duplicate keys and null prices per table and day, computed inside ClickHouse."""
    frames = []
    for table, (key, value_col) in _TABLES.items():
        df = cold.query_df(
            f"SELECT trade_date, count() AS rows, uniqExact(symbol) AS symbols, "
            f"count() - uniqExact({key}) AS duplicates, countIf(NOT isFinite({value_col})) AS null_prices "
            f"FROM {cold.table(table)} WHERE trade_date >= {{start:Date}} AND trade_date <= {{end:Date}} "
            "GROUP BY trade_date",
            {"start": start, "end": end},
        )
        long = df.melt(id_vars="trade_date", var_name="metric", value_name="value")
        long["table_name"] = table
        frames.append(long)
    out = pd.concat(frames, ignore_index=True) if frames else QA_METRICS.empty()
    return QA_METRICS.conform(out.astype({"value": "float64"}))


@dg.asset(
    deps=["raw_quotes", "bars_1m", "bars_5m", "bars_15m", "klines_daily"],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STORE_RETRY,
    pool=COLD_POOL,
    group_name="quality",
    kinds={"clickhouse"},
    description="Per-day QA metrics (rows, symbols, duplicate keys, null prices per table). "
    "Cold tier table `qa_metrics`; the UI shows the day's table.",
)
def qa_report(context: dg.AssetExecutionContext, clickhouse: ClickHouseResource) -> dg.MaterializeResult:
    days = partition_days(context)
    with clickhouse.open() as cold:
        metrics = table_metrics(cold, days[0], days[-1])
        cold.replace_partitions(QA_METRICS, metrics, days)
    summary = metrics.pivot_table(index="table_name", columns="metric", values="value", aggfunc="sum")
    problems = int(metrics.loc[metrics["metric"].isin(["duplicates", "null_prices"]), "value"].sum())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(metrics),
            "problems": problems,
            "summary": dg.MetadataValue.md(summary.to_markdown()),
        }
    )
