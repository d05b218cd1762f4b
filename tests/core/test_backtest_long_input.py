"""`backtest.run` takes the platform's own frames directly: `Client.klines()` (trade_date) and
`Client.bars()` (ts and trade_date: the bar timestamp is the index, not the trading day)."""

import numpy as np
import pandas as pd
import pytest

from quant_platform import backtest


def _bars(n_days=6, per_day=48, symbol="600000.SH", seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-06-03", periods=n_days)
    ts = pd.DatetimeIndex(
        [d + pd.Timedelta(minutes=30 + 5 * i) for d in days for i in range(per_day)], tz="UTC"
    )
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.002, len(ts))))
    return pd.DataFrame(
        {"symbol": symbol, "trade_date": ts.tz_convert(None).normalize().date, "ts": ts, "open": close,
         "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 100.0}
    )  # fmt: skip


def test_intraday_bars_from_the_client_run_on_their_timestamps():
    bars = _bars()
    res = backtest.run(bars, "sma_cross", {"fast": 5, "slow": 20}, periods_per_year=252 * 48, t_plus_1=False)
    indexed = bars.set_index("ts")[["open", "high", "low", "close", "volume"]]
    same = backtest.run(
        indexed, "sma_cross", {"fast": 5, "slow": 20}, periods_per_year=252 * 48, t_plus_1=False
    )
    assert len(res.equity) == len(bars) and res.result_hash == same.result_hash
    assert res.stats["num_trades"] > 0


def test_intraday_portfolio_and_daily_klines_still_work():
    long = pd.concat([_bars(symbol="A", seed=1), _bars(symbol="B", seed=2)], ignore_index=True)
    res = backtest.run(long, "xs_momentum", {"lookback": 12, "top_n": 1, "rebalance": 12}, t_plus_1=False)
    assert len(res.equity) == 6 * 48
    daily = long.groupby(["symbol", "trade_date"], as_index=False).agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last")
    )
    assert len(backtest.run(daily[daily["symbol"] == "A"], "sma_cross", {"fast": 2, "slow": 3}).equity) == 6
    with pytest.raises(ValueError, match="duplicated"):
        backtest.run(long[long["symbol"] == "A"].drop(columns=["ts"]), "sma_cross")
