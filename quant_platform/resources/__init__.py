"""Resources per deployment: embedded stores for `local`, servers for `prod`.

Every store address that comes from the environment reaches its resource as a `dg.EnvVar`, in every
deployment, so a password in it never appears in code, run configuration, job snapshots or asset
metadata: the Dagster instance stores the variable's name, and the value is read when a run starts.
Only the embedded defaults (local paths, no credentials) are stored as values.
"""

from __future__ import annotations

import dagster as dg

from quant_platform.resources.addresses import store_address
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.hot import HotCacheResource
from quant_platform.resources.market import MarketDataResource, SyntheticMarketResource
from quant_platform.resources.sources import market_resource_from_env
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.settings import LOCAL, deployment, settings

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
        stores = settings().stores
        return {
            "clickhouse": ClickHouseResource(dsn=store_address("QP_CLICKHOUSE_DSN", stores.clickhouse_dsn)),
            "warehouse": WarehouseResource(url=store_address("QP_WAREHOUSE_URL", stores.warehouse_url)),
            "hot": HotCacheResource(url=store_address("QP_REDIS_URL", stores.redis_url)),
            "market": market_resource_from_env(),
        }
    return {
        "clickhouse": ClickHouseResource(dsn=dg.EnvVar("QP_CLICKHOUSE_DSN")),
        "warehouse": WarehouseResource(url=dg.EnvVar("QP_WAREHOUSE_URL")),
        "hot": HotCacheResource(url=dg.EnvVar("QP_REDIS_URL")),
        "market": market_resource_from_env(),
    }
