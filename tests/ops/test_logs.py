"""Structured logs: `QP_LOG_FORMAT=json quant-platform run` prints JSON lines only; logscan groups
errors by kind and exits 1 on errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from quant_platform.cli import app
from quant_platform.ops.logs import FIELDS, kind_of, parse_since, scan

REPO = Path(__file__).resolve().parents[2]


def test_json_run_prints_only_json_lines(qp_home):
    env = {**os.environ, "QP_LOG_FORMAT": "json", "PYTHONPATH": str(REPO)}
    args = ["run", "--start", "2024-01-02", "--end", "2024-01-04", "--symbols", "3", "--no-options", "-v"]
    done = subprocess.run(
        [sys.executable, "-m", "quant_platform.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert records and all(set(FIELDS) <= set(r) for r in records)
    dagster = [r for r in records if r["logger"] == "dagster"]
    assert dagster and all(r["run_id"] for r in dagster)  # backtests: a run without partitions
    assert {r["partition"] for r in dagster} == {"2024-01-02 .. 2024-01-04", None}
    assert any(r["logger"] == "quant_platform.cli" and "klines_daily" in r["message"] for r in records)
    # the same lines are appended to $QP_HOME/logs for logscan
    assert (qp_home / "logs" / "quant-platform.jsonl").stat().st_size > 0


def _line(level: str, message: str, minutes_ago: float = 1, **extra) -> str:
    t = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return json.dumps({"time": t.isoformat(), "level": level, "logger": "qp", "message": message, **extra})


def test_scan_groups_by_kind_with_counts_and_first_last_seen():
    lines = [
        _line("error", "run 1234 failed after 3.5 s", 30, run_id="a"),
        _line("error", "run 987 failed after 12 s", 10, run_id="b"),
        _line("warning", "slow store", 5),
        _line("info", "fine"),
        _line("error", "old", 60 * 48),
        "2024-01-01 10:00:00 WARNING something in plain text",
        "not a log line",
        _line("error", "x", 1, exception="Traceback...\nValueError: bad value 3"),
    ]
    kinds = scan(lines, since=dt.datetime.now(dt.UTC) - parse_since("24h"))
    by_kind = {k.kind: k for k in kinds}
    failed = by_kind["run # failed after # s"]
    assert failed.count == 2 and failed.first < failed.last and failed.runs == {"a", "b"}
    assert by_kind["slow store"].level == "warning" and "ValueError" in by_kind
    assert "old" not in by_kind and "fine" not in by_kind
    assert kind_of("plain", None) == "plain"


def test_logscan_exit_codes(tmp_path, qp_home):
    runner = CliRunner()
    clean = tmp_path / "clean.jsonl"
    clean.write_text(_line("warning", "only a warning") + "\n")
    assert runner.invoke(app, ["logscan", str(clean)]).exit_code == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_line("error", "boom") + "\n")
    result = runner.invoke(app, ["logscan", "--since", "1h", str(bad)])
    assert result.exit_code == 1 and "1 error(s)" in result.output
    assert runner.invoke(app, ["logscan", "--since", "soon", str(bad)]).exit_code == 2
    assert runner.invoke(app, ["logscan", str(tmp_path / "absent.log")]).exit_code == 2
