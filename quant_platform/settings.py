"""Where the platform keeps its data and which stores it talks to, from environment variables.

`QP_DEPLOYMENT=local` (default) uses embedded stores under `QP_HOME`: ClickHouse SQL in-process
through chdb, SQLite for the warm tier, an in-process cache for the hot tier. `QP_DEPLOYMENT=prod`
uses servers; their addresses and credentials come only from the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LOCAL = "local"
PROD = "prod"
DEPLOYMENTS = (LOCAL, PROD)


def qp_home() -> Path:
    """Root of everything the embedded deployment writes (default ~/.quant-platform)."""
    return Path(os.environ.get("QP_HOME") or Path.home() / ".quant-platform").expanduser().resolve()


def deployment() -> str:
    value = os.environ.get("QP_DEPLOYMENT", LOCAL).strip().lower()
    if value not in DEPLOYMENTS:
        raise ValueError(f"QP_DEPLOYMENT must be one of {DEPLOYMENTS}, got {value!r}")
    return value


@dataclass(frozen=True)
class StoreSettings:
    clickhouse_dsn: str
    warehouse_url: str
    redis_url: str

    @classmethod
    def from_env(cls) -> StoreSettings:
        home = qp_home()
        return cls(
            clickhouse_dsn=os.environ.get("QP_CLICKHOUSE_DSN") or f"chdb://{home / 'chdb'}",
            warehouse_url=os.environ.get("QP_WAREHOUSE_URL") or f"sqlite:///{home / 'warehouse.sqlite'}",
            redis_url=os.environ.get("QP_REDIS_URL") or "memory://",
        )
