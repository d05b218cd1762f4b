"""Dagster resource for the hot tier: Redis in prod, an in-process TTL cache embedded.

The store is wrapped in `ResilientHotStore`: Redis being down skips cache writes (counted, logged)
instead of failing a run, because the hot tier only ever holds copies of colder data.
"""

from __future__ import annotations

import dagster as dg

from quant_platform.storage.hot import FallbackReader, HotStore, ResilientHotStore, hot_store_from_url


class HotCacheResource(dg.ConfigurableResource):
    url: str = "memory://"

    def store(self, fallback_reader: FallbackReader | None = None) -> HotStore:
        return ResilientHotStore(hot_store_from_url(self.url), fallback_reader)
