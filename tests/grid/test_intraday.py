"""A grid search on 5-minute bars: read from the cold tier's bars_5m, annualised by the bars per
trading day and without price limits, as `backtest run --frequency 5m` does."""

from __future__ import annotations

import json

import pytest

from quant_platform import grid
from quant_platform.storage.cold import ColdStore
from tests.grid.conftest import BARS_END, BARS_START, run_grid_request


def test_a_5m_grid_runs_on_bars(bars_chdb_path, warm, redis_url):
    from quant_platform import backtest
    from quant_platform.grid.spec import DEFAULT_SETTINGS

    dsn = f"chdb://{bars_chdb_path}"
    with ColdStore(dsn) as cold:
        bars = cold.read_table("bars_5m", BARS_START, BARS_END)
    req = grid.submit("sma_cross", {"fast": "3,6", "slow": "12,24"}, universe="all", start=BARS_START,
                      end=BARS_END, frequency="5m", store=warm)  # fmt: skip
    assert req.body["frequency"] == "5m"
    assert run_grid_request(dsn, warm, redis_url).success
    summary = warm.get_grid_request(req.id).summary
    assert summary["frequency"] == "5m" and summary["evaluated"] == 4 and summary["stopped"] == "completed"

    with ColdStore(dsn) as cold:
        every = cold.grid_results(req.id, per_symbol=True)
    symbol = str(bars["symbol"].iloc[0])
    row = every[(every["symbol"] == symbol) & (every["rank"] == 1)].iloc[0]
    one = bars[bars["symbol"] == symbol]
    per_day = one.groupby("trade_date").size().median()
    assert len(one) > 5 * 40  # every 5-minute bar, not one per day
    settings = {**DEFAULT_SETTINGS, "price_limit": False, "periods_per_year": 252 * per_day}
    expected = backtest.run(one, "sma_cross", json.loads(row["params"]), **settings)
    assert row["sharpe"] == pytest.approx(expected.stats["sharpe"], rel=1e-9)
    assert row["num_trades"] == expected.stats["num_trades"]
