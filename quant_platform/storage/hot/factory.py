"""`hot_store_from_url`: picks the hot-store backend from a URL such as `QP_REDIS_URL`.

The only module that knows both backends, so neither backend has to import the other.
"""

from __future__ import annotations

from typing import Any

from quant_platform.storage.hot.base import HotStore
from quant_platform.storage.hot.memory import MemoryHotStore
from quant_platform.storage.hot.redis_store import RedisHotStore, mask_redis_url


def hot_store_from_url(url: str, **options: Any) -> HotStore:
    """`memory://` -> MemoryHotStore, `redis://` / `rediss://` / `unix://` -> RedisHotStore."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else url.lower()
    if scheme == "memory":
        return MemoryHotStore(**options)
    if scheme in ("redis", "rediss", "unix"):
        return RedisHotStore(url, **options)
    raise ValueError(f"hot store URL must be memory:// or redis://host:port/db, got {mask_redis_url(url)!r}")
