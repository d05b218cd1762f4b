"""Over HTTP: a single run on 15-minute bars (context.frequency), and a grid run whose GET carries the
search's summary once it ended (PBO, deflated Sharpe, counts, walk-forward, activation)."""

from __future__ import annotations

import dagster as dg

from quant_platform.sources.synthetic import synthetic_symbols
from tests.api.test_backtest_runs import backtest_body, launch
from tests.grid.conftest import (  # noqa: F401 - fixtures: copies of the bars and of the klines
    BARS_END,
    BARS_START,
    bars_chdb_path,
    bars_template,  # noqa: F401 - materialized bars, shared fixture
    chdb_path,
    run_grid_request,
)


def test_a_single_run_on_15_minute_bars_succeeds(api, bars_chdb_path):  # noqa: F811
    symbols = synthetic_symbols(2)
    body = backtest_body(BARS_START, BARS_END)
    body["context"] = {**body["context"], "universe": symbols, "frequency": "15m"}
    body["params"] = {"fast": 3, "slow": 8}
    instance = dg.DagsterInstance.ephemeral()
    with api.client("trader") as c:
        created = c.post("/api/v1/backtests", json=body)
        assert created.status_code == 201, created.text
        bid = created.json()["backtest_id"]
        assert c.get(f"/api/v1/backtests/{bid}").json()["context"]["frequency"] == "15m"
        (run_id,) = c.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "single"}).json()["run_ids"]
        (result,) = launch(api, bars_chdb_path, instance)
        assert result.success
        done = c.get(f"/api/v1/backtests/{bid}/runs/{run_id}").json()
        assert done["status"] == "succeeded", done
        stats = done["stats"]
        assert stats["frequency"] == "15m" and stats["bars"] > 5 * 10  # 15-minute bars, not days
        assert stats["periods_per_year"] == 252 * 16  # 16 bars per A-share session

        bad = {**body, "context": {**body["context"], "frequency": "1h"}}
        r = c.post("/api/v1/backtests", json=bad)
        assert r.status_code == 422 and r.json()["error"]["code"] == "INVALID_INPUT"
        assert "frequency" in r.text


def test_a_grid_run_reports_its_summary(api, chdb_path, redis_url):  # noqa: F811
    with api.client("trader") as c:
        bid = c.post("/api/v1/backtests", json=backtest_body()).json()["backtest_id"]
        r = c.post(
            f"/api/v1/backtests/{bid}/runs",
            json={"mode": "grid", "params": {"fast": "3:9:3", "slow": [10, 20]}, "walk_forward": 2},
        )
        assert r.status_code == 202, r.text
        grid_id = r.json()["grid_request_id"]
        assert c.get(f"/api/v1/grid-requests/{grid_id}").json()["summary"] is None  # not run yet
        assert run_grid_request(f"chdb://{chdb_path}", api.warm, redis_url).success
        g = c.get(f"/api/v1/grid-requests/{grid_id}").json()
    assert g["status"] == "succeeded"
    summary = g["summary"]
    assert summary["evaluated"] == summary["planned"] == 6 and summary["stopped"] == "completed"
    assert 0 <= summary["pbo"] <= 1 and 0 <= summary["deflated_sharpe"] <= 1 and summary["n_trials"] == 6
    assert summary["walk_forward"]["folds"] == 2 and len(summary["walk_forward"]["per_fold"]) == 2
    assert summary["activation"]["policy"] == "if-validated" and summary["activation"]["reason"]
    with api.client("trader") as c:
        both = c.post(
            f"/api/v1/backtests/{bid}/runs",
            json={
                "mode": "grid",
                "params": {"fast": "3,6"},
                "walk_forward": 2,
                "holdout": "2024-06-03..2024-06-28",
            },
        )
    assert both.status_code == 422 and "not both" in both.json()["error"]["message"]
