"""`quant-platform backtest run` records a run; `backtest export` of a run without trades is a header."""

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from typer.testing import CliRunner

from quant_platform.cli import app
from quant_platform.resources import (
    ClickHouseResource,
    HotCacheResource,
    SyntheticMarketResource,
    WarehouseResource,
)
from quant_platform.storage.cold import ColdStore
from quant_platform.storage.warm import WarmStore

START, END = "2024-07-01", "2024-08-30"


@pytest.fixture
def klines(qp_home, chdb_dsn):
    from quant_platform.definitions import ASSETS

    resources = {
        "clickhouse": ClickHouseResource(dsn=chdb_dsn),
        "market": SyntheticMarketResource(n_symbols=4, snapshot_seconds=300),
        "warehouse": WarehouseResource(url=f"sqlite:///{qp_home}/warehouse.sqlite"),
        "hot": HotCacheResource(),
    }
    daily = [a for a in ASSETS if a.partitions_def is not None]
    tags = {ASSET_PARTITION_RANGE_START_TAG: START, ASSET_PARTITION_RANGE_END_TAG: END}
    assert dg.materialize(
        daily, resources=resources, tags=tags, selection=["raw_quotes", "klines_daily"]
    ).success
    with ColdStore(chdb_dsn) as cold:
        return cold.read_table("klines_daily", START, END)


def _run_id(output: str) -> str:
    return output.split("run id: ")[1].split()[0]


def test_backtest_run_records_a_run_with_equity_and_trades(klines, qp_home, chdb_dsn):
    from quant_platform import backtest

    symbols = sorted(klines["symbol"].unique())
    args = ["backtest", "run", "--strategy", "xs_momentum", "--param", "lookback=5", "--param",
            "top_n=2", "--param", "rebalance=5", "--symbols", ",".join(symbols), "--start", START,
            "--end", END]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run_id = _run_id(result.output)
    assert "total return" in result.output and "trades" in result.output
    run = WarmStore(f"sqlite:///{qp_home}/warehouse.sqlite").get_run(run_id)
    assert run.status == "succeeded" and run.params["lookback"] == 5 and run.stats["portfolio"] is True
    expected = backtest.run(
        klines, "xs_momentum", {"lookback": 5, "top_n": 2, "rebalance": 5}, cash=1_000_000.0,
        commission=0.00025, min_commission=5.0, stamp_duty=0.0005, lot_size=100.0, t_plus_1=True,
        price_limit=True, direction="long_only",
    )  # fmt: skip
    assert run.stats["total_return"] == pytest.approx(expected.stats["total_return"], abs=1e-12)
    assert run.result_hash == expected.result_hash
    with ColdStore(chdb_dsn) as cold:
        assert len(cold.read_run("backtest_equity", run_id)) == len(expected.equity)
        assert len(cold.read_run("backtest_trades", run_id)) == len(expected.trades) > 0


def test_a_run_without_trades_exports_a_header_and_warns(klines, qp_home, tmp_path):
    args = ["backtest", "run", "--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=100",
            "--symbols", str(klines["symbol"].iloc[0]), "--start", START, "--end", END]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warm-up" in " ".join(result.output.split())
    out = tmp_path / "trades.csv"
    exported = CliRunner().invoke(app, ["backtest", "export", _run_id(result.output), "--what", "trades",
                                        "--out", str(out)])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    frame = pd.read_csv(out)
    assert frame.empty and {"run_id", "symbol", "entry_time", "pnl"} <= set(frame.columns)


def test_backtest_run_rejects_bad_input_in_one_line(qp_home):
    base = [
        "backtest",
        "run",
        "--strategy",
        "sma_cross",
        "--symbols",
        "600000.SH",
        "--start",
        START,
        "--end",
        END,
    ]
    for extra, message in [
        (["--param", "fast"], "name=value"),
        (["--param", "fast=abc"], "not a number"),
        (["--frequency", "1h"], "frequency must be one of"),
        (["--param", "fast=30", "--param", "slow=10"], "slow"),
    ]:
        result = CliRunner().invoke(app, base + extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, [*base[:2], "--strategy", "nope", *base[4:]])  # unknown strategy
    assert result.exit_code == 2 and "nope" in result.output


@pytest.fixture
def bars(qp_home, chdb_dsn):
    from quant_platform.definitions import ASSETS

    resources = {
        "clickhouse": ClickHouseResource(dsn=chdb_dsn),
        "market": SyntheticMarketResource(n_symbols=2, snapshot_seconds=60),
        "warehouse": WarehouseResource(url=f"sqlite:///{qp_home}/warehouse.sqlite"),
        "hot": HotCacheResource(),
    }
    daily = [a for a in ASSETS if a.partitions_def is not None]
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-07-01", ASSET_PARTITION_RANGE_END_TAG: "2024-07-05"}
    selection = ["raw_quotes", "bars_1m", "bars_5m", "bars_15m"]
    assert dg.materialize(daily, resources=resources, tags=tags, selection=selection).success
    with ColdStore(chdb_dsn) as cold:
        return cold.read_table("bars_5m", "2024-07-01", "2024-07-05")


def test_an_intraday_backtest_runs_on_5_minute_bars(bars, qp_home, chdb_dsn):
    from quant_platform import backtest

    symbol = str(bars["symbol"].iloc[0])
    args = ["backtest", "run", "--strategy", "sma_cross", "--param", "fast=3", "--param", "slow=12",
            "--symbols", symbol, "--start", "2024-07-01", "--end", "2024-07-05",
            "--frequency", "5m"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = WarmStore(f"sqlite:///{qp_home}/warehouse.sqlite").get_run(_run_id(result.output))
    one = bars[bars["symbol"] == symbol]
    per_day = one.groupby("trade_date").size().median()
    assert run.stats["frequency"] == "5m" and run.stats["periods_per_year"] == 252 * per_day
    assert run.stats["bars"] == len(one) > 5 * 40  # every 5-minute bar, not one per day
    expected = backtest.run(one, "sma_cross", {"fast": 3, "slow": 12}, cash=1_000_000.0,
                            commission=0.00025, min_commission=5.0, stamp_duty=0.0005, lot_size=100.0,
                            t_plus_1=True, price_limit=False, periods_per_year=252 * per_day,
                            direction="long_only")  # fmt: skip
    assert run.result_hash is not None and run.stats["total_return"] == pytest.approx(
        expected.stats["total_return"], abs=1e-12
    )
