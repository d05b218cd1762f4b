"""`quant-platform run` end to end on a temporary QP_HOME (what `make run` calls)."""

import dagster as dg
from typer.testing import CliRunner

from quant_platform.cli import app


def test_run_materializes_range_and_records_runs(qp_home):
    runner = CliRunner()
    result = runner.invoke(
        app, ["run", "--start", "2024-09-27", "--end", "2024-10-08", "--symbols", "4", "--chunk", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "3 trading days" in result.output and "2024-10-08" in result.output
    assert "klines_daily" in result.output and "Telemetry" not in result.output
    assert "latest backtest: sma_cross" in result.output
    instance = dg.DagsterInstance.get()
    runs = instance.get_runs()
    assert len(runs) == 3 and all(r.is_success for r in runs)  # 3 days in chunks of 2, then backtests
    assert sorted(r.job_name for r in runs) == ["backtests", "market_data_daily", "market_data_daily"]


def test_run_rejects_a_range_without_trading_days(qp_home):
    result = CliRunner().invoke(app, ["run", "--start", "2024-10-01", "--end", "2024-10-07"])
    assert result.exit_code == 2
    assert "no XSHG trading days" in result.output


def test_run_rejects_bad_dates(qp_home):
    result = CliRunner().invoke(app, ["run", "--start", "2024-13-01", "--end", "2024-10-07"])
    assert result.exit_code == 2 and "expected YYYY-MM-DD" in result.output
