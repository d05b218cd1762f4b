"""`quant-platform report daily`: every section, JSON and Markdown, a blocked check of the day."""

from __future__ import annotations

import json

import dagster as dg
from typer.testing import CliRunner

from quant_platform.cli import app
from quant_platform.partitions import daily_partitions


@dg.asset(partitions_def=daily_partitions, name="klines_daily")
def fake_klines() -> None:
    return None


@dg.asset_check(asset=fake_klines, name="quality_gate", blocking=True)
def fake_gate() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata={"days": "2024-01-03"}
    )


def test_report_daily_json_and_markdown(qp_home, tmp_path):
    dg.materialize(
        [fake_klines, fake_gate],
        partition_key="2024-01-03",
        instance=dg.DagsterInstance.get(),
        raise_on_error=False,
    )
    runner = CliRunner()
    out = tmp_path / "r.json"
    result = runner.invoke(
        app, ["report", "daily", "--date", "2024-01-03", "--format", "json", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["date"] == "2024-01-03" and data["tables"]["klines_daily"] == 0
    assert data["checks"]["blocked"][0]["table"] == "klines_daily"
    assert data["runs"]["count"] == 1 and data["runs"]["failed"]
    assert data["backtests"]["count"] == 0 and data["grids"] == [] and "crypto_ticks" in data["collector"]
    md = runner.invoke(app, ["report", "daily", "--date", "2024-01-03"])
    assert md.exit_code == 0 and "# quant-platform daily report 2024-01-03" in md.output
    assert "**blocked**: klines_daily" in md.output and "## Quarantine by rule" in md.output
    assert runner.invoke(app, ["report", "daily", "--date", "2024-01-03", "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["report", "daily", "--date", "yesterday"]).exit_code == 2
