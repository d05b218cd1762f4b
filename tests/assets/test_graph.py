"""The real asset graph, materialized with `materialize()` on a temporary embedded store."""

import datetime as dt

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from quant_platform.definitions import ASSETS, build_definitions
from quant_platform.partitions import daily_partitions
from quant_platform.resources import (
    ClickHouseResource,
    HotCacheResource,
    SyntheticMarketResource,
    WarehouseResource,
)
from quant_platform.storage.cold import ColdStore

DAYS = [dt.date(2024, 9, 30), dt.date(2024, 10, 8)]  # consecutive sessions around National Day
TABLES = ["raw_quotes", "bars_1m", "bars_5m", "bars_15m", "klines_daily", "qa_metrics"]


def _resources(dsn, qp_home=None):
    return {
        "clickhouse": ClickHouseResource(dsn=dsn),
        "market": SyntheticMarketResource(n_symbols=6, snapshot_seconds=30),
        "warehouse": WarehouseResource(
            url=f"sqlite:///{qp_home}/warehouse.sqlite" if qp_home else "sqlite://"
        ),
        "hot": HotCacheResource(),
    }


def _materialize(dsn, start, end, instance=None):
    tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}
    daily = [a for a in ASSETS if a.partitions_def is not None]
    return dg.materialize(daily, resources=_resources(dsn), tags=tags, instance=instance)


def _counts(dsn):
    with ColdStore(dsn) as cold:
        return {t: cold.count_by_day(t, DAYS) for t in TABLES}


def test_whole_graph_for_two_partitions_and_rematerialize(chdb_dsn):
    result = _materialize(chdb_dsn, "2024-09-30", "2024-10-08")
    assert result.success
    mats = result.get_asset_materialization_events()
    partitions = {(e.materialization.asset_key.to_user_string(), e.materialization.partition) for e in mats}
    assert ("klines_daily", "2024-10-08") in partitions and ("qa_report", "2024-09-30") in partitions
    assert not any(p == "2024-10-01" for _, p in partitions)
    first = _counts(chdb_dsn)
    n_symbols_each_day = [first["klines_daily"][d] for d in DAYS]
    assert all(0 < n <= 6 for n in n_symbols_each_day)
    assert first["bars_1m"] == {d: 240 * n for d, n in zip(DAYS, n_symbols_each_day, strict=True)}
    assert first["bars_5m"] == {d: 48 * n for d, n in zip(DAYS, n_symbols_each_day, strict=True)}
    assert first["raw_quotes"] == {d: 480 * n for d, n in zip(DAYS, n_symbols_each_day, strict=True)}

    assert _materialize(chdb_dsn, "2024-09-30", "2024-10-08").success
    assert _counts(chdb_dsn) == first  # re-materializing replaces, never duplicates

    assert _materialize(chdb_dsn, "2024-10-08", "2024-10-08").success  # one partition alone
    assert _counts(chdb_dsn) == first


def test_metadata_is_useful(chdb_dsn):
    result = _materialize(chdb_dsn, "2024-10-08", "2024-10-08")
    by_key = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert by_key["raw_quotes"]["dagster/row_count"].value > 0
    assert "preview" in by_key["bars_1m"] and "time_range" in by_key["bars_1m"]
    assert by_key["klines_daily"]["volume_mismatch_vs_1m_bars"].value == 0
    assert "completeness_mean" in by_key["qa_report"]["summary"].value
    assert by_key["raw_quotes"]["quarantined_rows"].value == 0


def test_partitions_are_trading_days():
    keys = daily_partitions.get_partition_keys()
    assert "2024-10-01" not in keys and "2024-10-05" not in keys
    assert "2024-09-30" in keys and "2024-10-08" in keys
    assert keys.index("2024-10-08") == keys.index("2024-09-30") + 1


def test_definitions_load_and_lineage():
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey
    assert graph.get(key("bars_1m")).parent_keys == {key("raw_quotes")}
    assert graph.get(key("klines_daily")).parent_keys == {key("raw_quotes"), key("bars_1m")}
    assert key("klines_daily") in graph.get(key("qa_report")).parent_keys
    assert graph.get(key("backtest_runs")).parent_keys == {key("klines_daily")}
    assert key("klines_daily") in graph.get(key("grid_search_results")).parent_keys
    assert {s.name for s in defs.sensors} >= {
        "grid_request_sensor",
        "file_drop_sensor",
        "research_automation",
    }
    defs.resolve_job_def("market_data_daily")
    defs.resolve_job_def("intraday_refresh")
    defs.resolve_job_def("backtests")
    defs.resolve_job_def("grid_search")


@pytest.mark.parametrize(
    "when,expect_run",
    [("2024-10-08 15:30", True), ("2024-10-01 15:30", False), ("2024-10-07 15:30", False)],
)
def test_daily_schedule_skips_holidays(when, expect_run):
    from quant_platform.schedules import daily_after_close

    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime.fromisoformat(when + "+08:00"))
    result = daily_after_close(ctx)
    if expect_run:
        assert isinstance(result, dg.RunRequest) and result.partition_key == when[:10]
    else:
        assert isinstance(result, dg.SkipReason)


@pytest.mark.parametrize(
    "when,expect_run",
    [("2024-10-08 10:00", True), ("2024-10-08 12:00", False), ("2024-10-01 10:00", False)],
)
def test_intraday_schedule_only_during_sessions(when, expect_run):
    from quant_platform.schedules import intraday_during_sessions

    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime.fromisoformat(when + "+08:00"))
    result = intraday_during_sessions(ctx)
    assert isinstance(result, dg.RunRequest) is expect_run
