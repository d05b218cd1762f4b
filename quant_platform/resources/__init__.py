"""Resources per deployment: embedded stores for `local`, servers for `prod`."""

from __future__ import annotations

import dagster as dg

from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.market import MarketDataResource, SyntheticMarketResource
from quant_platform.settings import LOCAL, StoreSettings, deployment

__all__ = ["ClickHouseResource", "MarketDataResource", "SyntheticMarketResource", "build_resources"]


def build_resources(kind: str | None = None) -> dict[str, dg.ConfigurableResource]:
    kind = kind or deployment()
    if kind == LOCAL:
        stores = StoreSettings.from_env()
        return {
            "clickhouse": ClickHouseResource(dsn=stores.clickhouse_dsn),
            "market": SyntheticMarketResource(),
        }
    return {
        "clickhouse": ClickHouseResource(dsn=dg.EnvVar("QP_CLICKHOUSE_DSN")),
        "market": SyntheticMarketResource(),
    }
