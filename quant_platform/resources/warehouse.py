"""Dagster resource for the warm tier (SQLite embedded, MySQL/MariaDB server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from quant_platform.storage.warm import WarmStore

_MIGRATED: set[str] = set()


class WarehouseResource(dg.ConfigurableResource):
    """SQLAlchemy URL of the warm tier; the schema is upgraded to the newest migration once per process."""

    url: str

    @contextmanager
    def open(self) -> Iterator[WarmStore]:
        store = WarmStore(self.url)
        try:
            if self.url not in _MIGRATED:
                store.migrate()
                _MIGRATED.add(self.url)
            yield store
        finally:
            store.close()
