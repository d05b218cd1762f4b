"""How Dagster sees the collector: `AssetObservation`s of `raw_quotes`, written to the instance.

The collector runs outside Dagster, so there is no run to attach a materialization to; after a
successful cold flush (at most every `observe_interval` seconds, and at shutdown) it reports a
runless observation through `DagsterInstance.report_runless_asset_event`. The asset's page then
shows when the stream last delivered, how many ticks, and the watermark (newest tick time), and
freshness checks or sensors can react to it.

Reporting from the collector (instead of a sensor polling the table's watermark) keeps the cold
tier's embedded engine free: a sensor would have to open the chdb data path the collector writes to.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd

ASSET_KEY = dg.AssetKey("raw_quotes")


def report_observation(
    instance: dg.DagsterInstance,
    *,
    rows: int,
    watermark: pd.Timestamp | None,
    pairs: int,
    source: str,
    table: str,
    asset_key: dg.AssetKey = ASSET_KEY,
) -> None:
    metadata: dict[str, Any] = {
        "producer": "quant-platform collector",
        "source": source,
        "table": table,
        "rows_since_last_observation": rows,
        "pairs": pairs,
    }
    if watermark is not None:
        metadata["watermark"] = pd.Timestamp(watermark).isoformat()
        metadata["trade_date"] = pd.Timestamp(watermark).strftime("%Y-%m-%d")
    instance.report_runless_asset_event(dg.AssetObservation(asset_key=asset_key, metadata=metadata))
