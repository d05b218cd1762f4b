"""`klines_daily`: one OHLCV row per symbol and trading day."""

import dagster as dg
import numpy as np

from quant_platform.assets import gate
from quant_platform.assets.common import STORE_RETRY, cold_table_metadata, store_step, table_metadata
from quant_platform.conventions import COLD_POOL
from quant_platform.core.rollups import daily_klines
from quant_platform.core.schema import KLINES_DAILY
from quant_platform.partitions import calendar_name, daily_partitions, partition_days
from quant_platform.resources.clickhouse import ClickHouseResource


@dg.asset(
    deps=["raw_quotes", "bars_1m"],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=STORE_RETRY,
    pool=COLD_POOL,
    group_name="market_data",
    kinds={"clickhouse", "pandas"},
    metadata=cold_table_metadata(KLINES_DAILY),
    description="Daily klines from each symbol's last snapshot (the exchange's day fields), with price "
    "limits; cross-checked against the sum of 1m bar volumes. Cold tier table `klines_daily`.",
)
@store_step
def klines_daily(context: dg.AssetExecutionContext, clickhouse: ClickHouseResource) -> dg.MaterializeResult:
    days = partition_days(context)
    with clickhouse.open() as cold:
        last = cold.read_table("raw_quotes", days[0], days[-1], last_per_symbol_day=True)
        checked = gate.gate(
            "klines_daily", gate.by_day(daily_klines(last), days), KLINES_DAILY, calendar_name()
        )
        klines = checked.clean
        bar_volume = cold.bar_volume(days[0], days[-1], freq="1m")
        gate.write(cold, KLINES_DAILY, checked, days)
    merged = klines.merge(bar_volume, on=["symbol", "trade_date"], how="left")
    mismatched = int((~np.isclose(merged["bar_volume"].fillna(-1), merged["volume"])).sum())
    limit_up = int((klines["close"] >= klines["limit_up"]).sum())
    limit_down = int((klines["close"] <= klines["limit_down"]).sum())
    return dg.MaterializeResult(
        metadata={
            **table_metadata(klines, days, time_col=None),
            **checked.metadata,
            "volume_mismatch_vs_1m_bars": mismatched,
            "limit_up_closes": limit_up,
            "limit_down_closes": limit_down,
        }
    )
