"""What the app holds between requests: settings, the warm store (a connection pool), the rate
limiter, the signing key and, lazily, the Dagster instance and the hot tier (run progress). Never
the cold store: with an embedded ClickHouse (chdb) one process holds the data path, so `cold()`
opens it per request and closes it before answering; a path held by another process is waited for
briefly, then UPSTREAM_ERROR 503.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from quant_platform.api.errors import upstream
from quant_platform.api.ratelimit import RateLimiter
from quant_platform.settings import Settings
from quant_platform.storage.warm import WarmStore

COLD_WAIT_SECONDS = 3.0  # how long a request waits for an embedded cold store another process holds
RETRY_AFTER = 5

# One opener at a time in this process: chdb sessions on one path must not be opened concurrently.
_COLD_LOCK = threading.Lock()


@dataclass
class ApiState:
    settings: Settings
    warm: WarmStore
    limiter: RateLimiter
    secret: str
    _instance: Any = field(default=None, repr=False)
    _hot: Any = field(default=None, repr=False)

    def hot(self):
        """The hot tier (run progress events), opened once; its outages read as "no event"."""
        if self._hot is None:
            from quant_platform.storage.hot import ResilientHotStore, hot_store_from_url

            self._hot = ResilientHotStore(hot_store_from_url(self.settings.stores.redis_url))
        return self._hot

    def dagster_instance(self):
        """The Dagster instance of `$DAGSTER_HOME` (runs, daemon heartbeats), opened once."""
        if self._instance is None:
            import dagster as dg

            home = self.settings.dagster_home
            home.mkdir(parents=True, exist_ok=True)
            self._instance = dg.DagsterInstance.from_config(str(home))
        return self._instance

    @contextmanager
    def cold(self) -> Iterator[Any]:
        """The cold store for one request: opened here, closed before the response is sent."""
        from quant_platform.storage.cold import ColdStore, ColdStoreError, ColdStoreLocked

        if not _COLD_LOCK.acquire(timeout=COLD_WAIT_SECONDS * 3):
            raise upstream("the cold store is busy; retry shortly", RETRY_AFTER)
        try:
            store = ColdStore(self.settings.stores.clickhouse_dsn, lock_timeout=COLD_WAIT_SECONDS)
            try:
                store.connect()
                store.ensure_schema()
            except ColdStoreLocked:
                store.close()
                raise upstream(
                    "the embedded cold store is held by another process (a Dagster run?); retry shortly",
                    RETRY_AFTER,
                ) from None
            except ColdStoreError:
                store.close()
                raise upstream("the cold store is unavailable", RETRY_AFTER) from None
            try:
                yield store
            finally:
                store.close()
        finally:
            _COLD_LOCK.release()

    def close(self) -> None:
        self.warm.close()
        if self._hot is not None:
            self._hot.close()
        if self._instance is not None:
            self._instance.dispose()
