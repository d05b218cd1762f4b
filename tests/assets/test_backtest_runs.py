"""`backtest_runs` over materialized klines: recorded in the warm tier, outputs in the cold tier."""

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from quant_platform.definitions import ASSETS
from quant_platform.resources import (
    ClickHouseResource,
    HotCacheResource,
    SyntheticMarketResource,
    WarehouseResource,
)
from quant_platform.storage.cold import ColdStore
from quant_platform.storage.warm import WarmStore


@pytest.fixture
def resources(chdb_dsn, qp_home):
    return {
        "clickhouse": ClickHouseResource(dsn=chdb_dsn),
        "market": SyntheticMarketResource(n_symbols=5, snapshot_seconds=60),
        "warehouse": WarehouseResource(url=f"sqlite:///{qp_home}/warehouse.sqlite"),
        "hot": HotCacheResource(),
    }


@pytest.fixture
def klines(resources):
    daily = [a for a in ASSETS if a.partitions_def is not None]
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-07-01", ASSET_PARTITION_RANGE_END_TAG: "2024-09-30"}
    assert dg.materialize(
        daily,
        resources=resources,
        tags=tags,
        selection=["raw_quotes", "bars_1m", "bars_5m", "bars_15m", "klines_daily"],
    ).success


def _backtest(resources, **config):
    run_config = {"ops": {"backtest_runs": {"config": config}}} if config else None
    result = dg.materialize(ASSETS, selection=["backtest_runs"], resources=resources, run_config=run_config)
    assert result.success
    return result.get_asset_materialization_events()[0].materialization.metadata


def test_backtest_is_recorded_and_reproducible(resources, klines, qp_home, chdb_dsn):
    first = _backtest(resources)
    second = _backtest(resources)
    assert first["result_hash"].value == second["result_hash"].value
    assert first["data_version"].value == second["data_version"].value
    assert first["stats"].value == second["stats"].value
    assert "data:image/png;base64," in first["equity_and_drawdown"].value

    runs = WarmStore(f"sqlite:///{qp_home}/warehouse.sqlite").list_runs(strategy="sma_cross")
    assert len(runs) == 2 and all(r.status == "succeeded" for r in runs)
    run = next(r for r in runs if r.id == first["run_id"].value)
    assert run.result_hash == first["result_hash"].value and run.stats["symbols"] == 5
    assert run.params == {"fast": 5, "slow": 20} and run.data_version == first["data_version"].value

    with ColdStore(chdb_dsn) as cold:
        equity = cold.read_run("backtest_equity", run.id)
        trades = cold.read_run("backtest_trades", run.id)
    assert set(equity["symbol"]) >= {"*"} and equity["symbol"].nunique() == 6
    portfolio = equity[equity["symbol"] == "*"]
    assert portfolio["equity"].iloc[-1] == pytest.approx(run.stats["final_equity"])
    assert (
        int((~trades["is_open"]).sum()) == run.stats["num_trades"]
    )  # open positions are marked, not counted


def test_other_strategy_and_params(resources, klines):
    meta = _backtest(resources, strategy="ema_cross", params={"fast": 3, "slow": 10}, lookback_days=40)
    assert meta["strategy"].value == "ema_cross"
    assert meta["params"].value == {"fast": 3, "slow": 10}


def test_invalid_params_fail_at_once_with_a_clear_message(resources):
    result = dg.materialize(
        ASSETS,
        selection=["backtest_runs"],
        resources=resources,
        raise_on_error=False,
        run_config={"ops": {"backtest_runs": {"config": {"params": {"fast": 30, "slow": 10}}}}},
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "invalid backtest configuration" in failure.message and "slow" in failure.message


def test_empty_klines_is_a_clear_failure(resources):
    result = dg.materialize(ASSETS, selection=["backtest_runs"], resources=resources, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "klines_daily is empty" in failure.message
