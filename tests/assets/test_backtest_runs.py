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
    assert run.params == {"fast": 10, "slow": 20} and run.data_version == first["data_version"].value
    assert run.stats["params_source"] == "defaults" and run.stats["warnings"] == []

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


def test_portfolio_strategy_runs_on_the_whole_universe(resources, klines, qp_home, chdb_dsn):
    """xs_momentum through backtest_runs is backtest.run on the long frame, not per-symbol buy-and-hold."""
    from quant_platform import backtest

    params = {"lookback": 10, "top_n": 2, "rebalance": 5, "skip": 0}
    meta = _backtest(resources, strategy="xs_momentum", params=params, lookback_days=60)
    with ColdStore(chdb_dsn) as cold:
        start, end = meta["window"].value.split(" .. ")
        long = cold.read_table("klines_daily", start, end)
        equity = cold.read_run("backtest_equity", meta["run_id"].value)
        trades = cold.read_run("backtest_trades", meta["run_id"].value)
    frame = long.rename(columns={c: c.capitalize() for c in ["open", "high", "low", "close", "volume"]})
    expected = backtest.run(
        frame, "xs_momentum", params, cash=1_000_000.0, commission=0.00025, min_commission=5.0,
        stamp_duty=0.0005, lot_size=100.0, t_plus_1=True, price_limit=True, direction="long_only",
    )  # fmt: skip
    stats = meta["stats"].value
    assert stats["portfolio"] is True and stats["symbols"] == 5
    assert stats["total_return"] == pytest.approx(expected.stats["total_return"], abs=1e-12)
    assert stats["num_trades"] == expected.stats["num_trades"] > 0
    assert meta["result_hash"].value == expected.result_hash
    assert set(equity["symbol"]) == {"*"}  # one portfolio curve, no per-symbol buy-and-hold curves
    assert equity["equity"].to_numpy() == pytest.approx(expected.equity.to_numpy())
    assert len(trades) == len(expected.trades)


def test_active_parameter_version_is_the_default(resources, klines, qp_home):
    warm = WarmStore(f"sqlite:///{qp_home}/warehouse.sqlite")
    warm.migrate()
    warm.create_strategy("sma_cross", exist_ok=True)
    version = warm.add_params("sma_cross", {"fast": 3, "slow": 12}, note="chosen", activate=True)
    meta = _backtest(resources)
    assert meta["params"].value == {"fast": 3, "slow": 12}
    assert meta["params_source"].value == f"active version {version.version}"
    explicit = _backtest(resources, params={"fast": 4, "slow": 9})
    assert explicit["params"].value == {"fast": 4, "slow": 9} and explicit["params_source"].value == "config"


def test_window_shorter_than_the_warm_up_is_a_warning(resources, klines, qp_home):
    meta = _backtest(resources, params={"fast": 10, "slow": 60}, lookback_days=30)
    assert "warm-up" in meta["warning"].value and "30 bars" in meta["warning"].value
    run = WarmStore(f"sqlite:///{qp_home}/warehouse.sqlite").get_run(meta["run_id"].value)
    assert len(run.stats["warnings"]) == 1 and "needs more than 60 bars" in run.stats["warnings"][0]
