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
    # 3 days in chunks of 2, the options group over the same chunks, then the backtests
    assert len(runs) == 5 and all(r.is_success for r in runs)
    assert sorted(r.job_name for r in runs) == [
        "backtests", "market_data_daily", "market_data_daily", "options_daily", "options_daily"
    ]  # fmt: skip


def test_run_rejects_a_range_without_trading_days(qp_home):
    result = CliRunner().invoke(app, ["run", "--start", "2024-10-01", "--end", "2024-10-07"])
    assert result.exit_code == 2
    assert "no XSHG trading days" in result.output


def test_run_rejects_bad_dates(qp_home):
    result = CliRunner().invoke(app, ["run", "--start", "2024-13-01", "--end", "2024-10-07"])
    assert result.exit_code == 2 and "expected YYYY-MM-DD" in result.output


def test_run_refuses_ranges_outside_the_partitions_or_too_long(qp_home, monkeypatch):
    result = CliRunner().invoke(app, ["run", "--start", "1900-01-01", "--end", "2999-12-31"])
    assert result.exit_code == 2 and "before the first XSHG trading-day partition 2020-01-02" in result.output
    result = CliRunner().invoke(app, ["run", "--start", "2024-08-01", "--end", "2999-12-31"])
    assert (
        result.exit_code == 2
        and "end 2999-12-31 is after the last XSHG trading-day partition" in result.output
    )
    monkeypatch.setenv("QP_MAX_RANGE_DAYS", "5")
    result = CliRunner().invoke(app, ["run", "--start", "2024-08-01", "--end", "2024-08-31"])
    assert result.exit_code == 2 and "--allow-long-range" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_failed_run_reports_its_first_error(qp_home, monkeypatch):
    """A source that cannot work (its optional package is missing) is named, not a follow-on error."""
    monkeypatch.setenv("QP_MARKET_SOURCE", "akshare")
    result = CliRunner().invoke(app, ["run", "--start", "2024-08-01", "--end", "2024-08-01"])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "failed: raw_quotes" in output and "akshare" in output.lower()
    assert "Unknown table" not in output and "Traceback" not in output
    assert "dagster dev" in output and str(qp_home / "dagster") in output


def test_backtest_list_limit_is_bounded(qp_home):
    result = CliRunner().invoke(app, ["backtest", "list", "--limit", "100000000"])
    assert result.exit_code == 2 and "Traceback" not in result.output
