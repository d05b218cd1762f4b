"""`backtest compare` aligns recorded runs on one time axis (stats, CSV, PNG); `backtest report` writes
one self-contained HTML file; bad run ids are one line and exit code 2."""

from __future__ import annotations

import inspect
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from quant_platform.cli import app
from quant_platform.storage.warm import WarmStore
from tests.research.conftest import LATER_START, START


def invoke(*args: str):
    return CliRunner().invoke(app, ["backtest", *args])


def test_compare_writes_stats_and_aligned_curves(recorded_runs, qp_home, tmp_path):
    sma, xs = recorded_runs
    out = tmp_path / "cmp"
    result = invoke("compare", sma, xs, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sma in result.output and xs in result.output and "sharpe" in result.output

    warm = WarmStore(f"sqlite:///{qp_home}/warehouse.sqlite")
    stats = pd.read_csv(out / "stats.csv", index_col="run_id")
    assert list(stats.index) == [sma, xs]
    for run_id in (sma, xs):
        recorded = warm.get_run(run_id).stats
        assert stats.loc[run_id, "total_return"] == pytest.approx(recorded["total_return"], abs=1e-12)
        assert stats.loc[run_id, "data_version"] == warm.get_run(run_id).data_version
    assert stats.loc[xs, "strategy"] == "xs_momentum" and json.loads(stats.loc[xs, "params"])["top_n"] == 2
    # the common span starts with the later run, so both common returns cover the same days
    assert stats["common_return"].notna().all()

    curves = pd.read_csv(out / "curves.csv", index_col="ts", parse_dates=["ts"])
    assert curves.index.is_monotonic_increasing and curves.index.is_unique
    assert {f"{r}:{w}" for r in (sma, xs) for w in ("equity", "growth", "drawdown")} == set(curves.columns)
    before = curves.index < pd.Timestamp(LATER_START, tz="UTC")
    assert before.any() and curves.loc[before, f"{xs}:equity"].isna().all()  # no value before its run
    assert curves.loc[~before, f"{xs}:equity"].notna().all()
    assert curves[f"{sma}:equity"].notna().all()  # the longer run spans the whole axis
    assert curves[f"{sma}:growth"].iloc[0] == pytest.approx(1.0)
    assert (curves[[f"{sma}:drawdown", f"{xs}:drawdown"]].fillna(0) <= 1e-12).all().all()
    assert curves.index.min() >= pd.Timestamp(START, tz="UTC")
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "RUN"], "2 to 12 run ids"),
        (["compare", "RUN", "RUN"], "more than once"),
        (["compare", "RUN", "does-not-exist"], "does not exist"),
        (["compare", "RUN", "bad id!"], "not a run id"),
        (["report", "does-not-exist", "--out", "x.html"], "does not exist"),
    ],
)
def test_bad_run_ids_are_one_line_and_exit_2(recorded_runs, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    args = [recorded_runs[0] if a == "RUN" else a for a in args]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "backtest-compare").exists() and not (tmp_path / "x.html").exists()


def test_report_is_one_self_contained_file_without_strategy_source(recorded_runs, qp_home, tmp_path):
    from quant_platform.core.backtest import strategies

    sma, xs = recorded_runs
    out = tmp_path / "run.html"
    result = invoke("report", xs, "--out", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    run = WarmStore(f"sqlite:///{qp_home}/warehouse.sqlite").get_run(xs)
    assert html.startswith("<!DOCTYPE html>") and xs in html and run.data_version in html
    assert "param lookback" in html and "param top_n" in html
    assert "Plotly.newPlot" in html and "<script src=" not in html  # plotly.js inline, nothing fetched
    assert "rangeselector" in html and "rangeslider" in html
    trades = json.loads(html.split('id="trades-data">')[1].split("</script>")[0])
    closed = [row for row in trades["rows"] if not row[trades["columns"].index("is_open")]]
    assert len(closed) == run.stats["num_trades"] > 0  # and positions still open, marked to the close
    source = inspect.getsource(strategies)
    assert not any(line.strip() in html for line in source.splitlines() if len(line.strip()) > 30)
