"""Resources per deployment: embedded stores for `local`, servers for `prod`.

Every credential of the prod deployment comes from the environment through `dg.EnvVar`, so it never
appears in code, run configuration or asset metadata.
"""

from __future__ import annotations

import dagster as dg

from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.hot import HotCacheResource
from quant_platform.resources.market import MarketDataResource, SyntheticMarketResource
from quant_platform.resources.sources import market_resource_from_env
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.settings import LOCAL, StoreSettings, deployment

__all__ = [
    "ClickHouseResource",
    "HotCacheResource",
    "MarketDataResource",
    "SyntheticMarketResource",
    "WarehouseResource",
    "build_resources",
]


def build_resources(kind: str | None = None) -> dict[str, dg.ConfigurableResource]:
    kind = kind or deployment()
    if kind == LOCAL:
        stores = StoreSettings.from_env()
        return {
            "clickhouse": ClickHouseResource(dsn=stores.clickhouse_dsn),
            "warehouse": WarehouseResource(url=stores.warehouse_url),
            "hot": HotCacheResource(url=stores.redis_url),
            "market": market_resource_from_env(),
        }
    return {
        "clickhouse": ClickHouseResource(dsn=dg.EnvVar("QP_CLICKHOUSE_DSN")),
        "warehouse": WarehouseResource(url=dg.EnvVar("QP_WAREHOUSE_URL")),
        "hot": HotCacheResource(url=dg.EnvVar("QP_REDIS_URL")),
        "market": market_resource_from_env(),
    }
