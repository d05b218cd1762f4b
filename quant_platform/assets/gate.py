"""The quality gate's wiring: the split is `core.quality.gate` (re-exported for the assets); here are
the parts that touch a store or drain a source."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from quant_platform.core.quality.gate import GateResult, by_day, gate, rejected_rows, split_day
from quant_platform.core.schema import QUARANTINE, TableSchema
from quant_platform.storage.cold import ColdStore

__all__ = ["GateResult", "by_day", "gate", "split_day", "vendor_rejected", "write"]


def write(cold: ColdStore, schema: TableSchema, result: GateResult, days: list[dt.date]) -> None:
    """Replace the days' quarantine of this table, then the days' clean rows, each atomically per day.

    The quarantine goes first: a failure between the two writes leaves the previous clean partition
    in place (with a quarantine that already explains the new data), never new clean rows without
    the rows that were split off them. A retry rewrites both.
    """
    cold.replace_partitions(QUARANTINE, result.quarantine, days, scope=schema.name)
    cold.replace_partitions(schema, result.clean, days)


def vendor_rejected(source, table_name: str, days: list[dt.date]) -> pd.DataFrame:
    """QUARANTINE rows a source rejected while mapping its vendor's payloads (sources that can)."""
    take = getattr(source, "take_rejected", None)
    return rejected_rows(take() if callable(take) else None, table_name, days)
