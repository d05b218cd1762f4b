"""Every asset that writes a cold table says in its definition where the table lives and its columns."""

from __future__ import annotations

import dagster as dg
import pytest

from quant_platform.assets.common import cold_table_metadata
from quant_platform.core.schema import COLD_TABLES, RAW_QUOTES
from quant_platform.definitions import defs
from quant_platform.storage.cold import DEFAULT_DATABASE

TABLE_NAME, COLUMN_SCHEMA = "dagster/table_name", "dagster/column_schema"

# The table each asset writes (backtest_runs also writes backtest_trades; the UI shows the equity).
EXPECTED = {
    "raw_quotes": "raw_quotes",
    "bars_1m": "bars_1m",
    "bars_5m": "bars_5m",
    "bars_15m": "bars_15m",
    "klines_daily": "klines_daily",
    "qa_report": "qa_metrics",
    "backtest_runs": "backtest_equity",
    "grid_search_results": "grid_search_results",
    "option_contracts": "option_contracts",
    "option_quotes": "option_quotes",
    "option_daily": "option_daily",
    "option_greeks": "option_greeks",
    "options_qa": "option_qa_metrics",
}


def _nodes() -> dict:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}


def _columns(value) -> list[dg.TableColumn]:
    schema = value.schema if isinstance(value, dg.TableSchemaMetadataValue) else value
    assert isinstance(schema, dg.TableSchema)
    return list(schema.columns)


def test_every_cold_writer_carries_table_name_and_column_schema():
    writers = {name for name, node in _nodes().items() if "clickhouse" in node.kinds}
    assert writers == set(EXPECTED)
    for name in EXPECTED:
        metadata = _nodes()[name].metadata
        assert TABLE_NAME in metadata and COLUMN_SCHEMA in metadata, name


@pytest.mark.parametrize("asset", sorted(EXPECTED))
def test_metadata_matches_the_core_schema(asset):
    metadata = _nodes()[asset].metadata
    table_name = str(getattr(metadata[TABLE_NAME], "value", metadata[TABLE_NAME]))
    database, table = table_name.split(".")
    assert (database, table) == (DEFAULT_DATABASE, EXPECTED[asset])
    schema = COLD_TABLES[table]
    columns = _columns(metadata[COLUMN_SCHEMA])
    assert [c.name for c in columns] == schema.names
    assert [c.type for c in columns] == [c.ch_type for c in schema.columns]


def test_cold_table_metadata_is_valid_dagster_metadata():
    metadata = cold_table_metadata(RAW_QUOTES, database="research")
    assert metadata[TABLE_NAME] == "research.raw_quotes"
    spec = dg.AssetSpec("x", metadata=metadata)  # Dagster validates and normalizes definition metadata
    (column,) = [c for c in _columns(spec.metadata[COLUMN_SCHEMA]) if c.name == "ts"]
    assert column.type == "DateTime64(3, 'UTC')" and column.description == "Snapshot instant (UTC)"
