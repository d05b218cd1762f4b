"""Dagster resource for the hot tier: Redis in prod, an in-process TTL cache embedded.

The store is wrapped in `ResilientHotStore`: Redis being down skips cache writes (counted, logged)
instead of failing a run, because the hot tier only ever holds copies of colder data.
"""

from __future__ import annotations

import dagster as dg

from quant_platform.settings import settings
from quant_platform.storage.hot import (
    FallbackReader,
    HotStore,
    ResilientHotStore,
    TTLPolicy,
    hot_store_from_url,
)


class HotCacheResource(dg.ConfigurableResource):
    """`url`: memory:// or redis://; `calendar`: whose sessions decide expiry (default QP_CALENDAR)."""

    url: str = "memory://"
    calendar: str | None = None

    def store(self, fallback_reader: FallbackReader | None = None) -> HotStore:
        ttl = TTLPolicy(self.calendar or settings().calendar)
        return ResilientHotStore(hot_store_from_url(self.url, ttl=ttl), fallback_reader)
