"""The deployment switch: the same graph on embedded stores and on the local servers (prod)."""

import datetime as dt

import pytest
import redis

from quant_platform.client import Client
from quant_platform.conventions import partition_range_tags
from quant_platform.definitions import build_definitions
from quant_platform.resources import SyntheticMarketResource
from quant_platform.storage.warm import WarmStore

RANGE = partition_range_tags(dt.date(2024, 8, 1), dt.date(2024, 9, 30))


@pytest.fixture
def mysql_db(mysql_database_factory) -> str:
    """An empty database: the prod deployment migrates it itself."""
    return mysql_database_factory()


def _run_everything(kind: str) -> None:
    defs = build_definitions(
        resources={"market": SyntheticMarketResource(n_symbols=4, snapshot_seconds=60)}, kind=kind
    )
    assert defs.resolve_job_def("market_data_daily").execute_in_process(tags=RANGE).success
    assert defs.resolve_job_def("backtests").execute_in_process().success


def test_prod_deployment_on_local_servers(qp_home, monkeypatch, mysql_db, redis_db):
    # No modern ClickHouse server can run here, so the cold tier stays on chdb; a server is the
    # same client with an http(s):// DSN.
    monkeypatch.setenv("QP_DEPLOYMENT", "prod")
    monkeypatch.setenv("QP_CLICKHOUSE_DSN", f"chdb://{qp_home / 'chdb'}")
    monkeypatch.setenv("QP_WAREHOUSE_URL", mysql_db)
    monkeypatch.setenv("QP_REDIS_URL", redis_db)
    defs = build_definitions(kind="prod")
    assert defs.executor.name == "multiprocess"  # local uses in_process: ~2.6 s less per step
    _run_everything("prod")

    runs = WarmStore(mysql_db).list_runs()
    assert len(runs) == 1 and runs[0].status == "succeeded"
    keys = redis.Redis.from_url(redis_db).keys("*")
    assert keys, "raw_quotes and bars write latest quotes and change rates to Redis"
    with Client() as qp:
        quotes = qp.latest_quotes(["600000.SH", "600001.SH"])
        assert qp.hot.fallback_reads == 0  # served by Redis
        assert len(quotes) == 2 and quotes["trade_date"].max().date().isoformat() == "2024-09-30"
        assert len(qp.backtest_runs()) == 1


def test_local_deployment_embedded(qp_home):
    assert build_definitions(kind="local").executor.name == "in_process"
    _run_everything("local")
    with Client() as qp:
        assert qp.warehouse_url.startswith("sqlite:///") and qp.clickhouse_dsn.startswith("chdb://")
        k = qp.klines(["600000.SH"], "2024-08-01", "2024-09-30")
        assert len(k) > 30 and list(k["symbol"].unique()) == ["600000.SH"]
        quotes = qp.latest_quotes(["600000.SH"])  # the in-process cache is empty here: cold fallback
        assert len(quotes) == 1 and quotes["symbol"].iloc[0] == "600000.SH"
        assert len(qp.backtest_runs()) == 1


def test_missing_prod_setting_is_a_clear_error(qp_home, monkeypatch):
    monkeypatch.setenv("QP_DEPLOYMENT", "prod")
    monkeypatch.delenv("QP_WAREHOUSE_URL", raising=False)
    defs = build_definitions(kind="prod")
    with pytest.raises(Exception, match="QP_WAREHOUSE_URL"):
        defs.resolve_job_def("backtests").execute_in_process()


def test_unknown_deployment(monkeypatch):
    from quant_platform.settings import deployment

    monkeypatch.setenv("QP_DEPLOYMENT", "staging")
    with pytest.raises(ValueError, match="QP_DEPLOYMENT must be one of"):
        deployment()


def test_prod_without_its_servers_lists_every_missing_variable(qp_home, monkeypatch):
    from typer.testing import CliRunner

    from quant_platform import grid
    from quant_platform.cli import app
    from quant_platform.settings import SettingsError

    monkeypatch.setenv("QP_DEPLOYMENT", "prod")
    for name in ("QP_CLICKHOUSE_DSN", "QP_WAREHOUSE_URL", "QP_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    needs = "QP_DEPLOYMENT=prod needs QP_CLICKHOUSE_DSN, QP_WAREHOUSE_URL, QP_REDIS_URL"
    for args in (["run", "--start", "2024-08-01", "--end", "2024-08-02"], ["selfcheck"], ["grid", "list"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert needs in " ".join(result.output.split()) and "Traceback" not in result.output
    with pytest.raises(SettingsError, match=needs):
        Client()
    with pytest.raises(SettingsError, match=needs):
        grid.list_requests()
