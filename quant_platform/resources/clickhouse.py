"""Dagster resource for the cold tier: configuration only; the work is in `storage.cold.ColdStore`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from quant_platform.storage.cold import ColdStore


class ClickHouseResource(dg.ConfigurableResource):
    """ClickHouse through clickhouse-connect: `chdb:///path` (embedded) or `http(s)://...` (server).

    Assets open the store inside their body and close it before returning, so the embedded engine's
    one-process lock is held only while a step really reads or writes.
    """

    dsn: str
    database: str = "quant"

    @contextmanager
    def open(self) -> Iterator[ColdStore]:
        store = ColdStore(self.dsn, self.database)
        try:
            store.connect()
            store.ensure_schema()
            yield store
        finally:
            store.close()
