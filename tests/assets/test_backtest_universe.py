"""`run_universe` without Dagster: portfolio strategies, the portfolio equity, warm-up warnings."""

import numpy as np
import pandas as pd
import pytest

from quant_platform import backtest
from quant_platform.assets.backtests import BacktestRunsConfig, portfolio_equity, run_universe


def _klines(n_days=120, symbols=("A", "B", "C", "D"), seed=3, drop=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-02", periods=n_days)
    frames = []
    for i, sym in enumerate(symbols):
        close = 10.0 * np.exp(np.cumsum(rng.normal(0.0005 * (i - 1.5), 0.02, n_days)))
        f = pd.DataFrame(
            {
                "symbol": sym,
                "trade_date": days.date,
                "open": close * (1 + rng.normal(0, 0.003, n_days)),
                "close": close,
                "volume": 1e6,
            }
        )
        f["high"] = f[["open", "close"]].max(axis=1) * 1.01
        f["low"] = f[["open", "close"]].min(axis=1) * 0.99
        f["limit_up"] = np.nan
        f["limit_down"] = np.nan
        frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    if drop is not None:
        sym, k = drop
        out = out.drop(out[out["symbol"] == sym].index[:k]).reset_index(drop=True)
    return out


CFG = dict(price_limit=False, t_plus_1=False, commission=0.0005, min_commission=0.0, stamp_duty=0.0)


def test_xs_momentum_is_one_portfolio_not_per_symbol_buy_and_hold():
    klines = _klines()
    params = {"lookback": 20, "top_n": 2, "rebalance": 10, "skip": 0}
    out = run_universe(klines, BacktestRunsConfig(strategy="xs_momentum", params=params, **CFG))
    frame = klines.drop(columns=["limit_up", "limit_down"])
    expected = backtest.run(frame, "xs_momentum", params, cash=1_000_000.0, lot_size=100.0, **CFG)
    assert out["stats"]["total_return"] == pytest.approx(expected.stats["total_return"], abs=1e-12)
    assert out["stats"]["num_trades"] == expected.stats["num_trades"] > 1
    assert out["result_hash"] == expected.result_hash
    # The old per-symbol path: each symbol alone with a quarter of the cash (buy-and-hold-like).
    alone = [
        backtest.run(f.set_index(pd.DatetimeIndex(f["trade_date"])).drop(columns=["symbol", "trade_date",
                     "limit_up", "limit_down"]), "xs_momentum", params, cash=250_000.0, lot_size=100.0, **CFG)
        for _, f in klines.groupby("symbol")
    ]  # fmt: skip
    per_symbol_total = sum(r.equity.iloc[-1] for r in alone) / 1_000_000.0 - 1.0
    assert per_symbol_total != pytest.approx(out["stats"]["total_return"], abs=1e-4)
    assert set(out["trades"]["symbol"]) <= {"A", "B", "C", "D"}


def test_suspended_symbol_keeps_its_cash_on_day_one():
    klines = _klines(n_days=40, drop=("B", 3))  # B has no bar on its first 3 days
    out = run_universe(klines, BacktestRunsConfig(params={"fast": 3, "slow": 8}, **CFG))
    equity = out["equity"]
    assert equity.iloc[0] == pytest.approx(1_000_000.0)  # nothing traded yet: all the cash
    assert equity.iloc[:3].tolist() == pytest.approx([1_000_000.0] * 3)
    eq = portfolio_equity(
        {"a": pd.Series([100.0, 110.0, 120.0], index=[1, 2, 3]), "b": pd.Series([90.0], index=[2])}, 100.0
    )
    assert eq.tolist() == [200.0, 200.0, 210.0]  # b: cash before its first bar, last value after


@pytest.mark.parametrize(
    ("strategy", "params", "bars", "warn"),
    [
        ("sma_cross", {"fast": 5, "slow": 30}, 30, True),
        ("sma_cross", {"fast": 5, "slow": 30}, 31, False),
        ("xs_momentum", {"lookback": 60, "top_n": 2, "rebalance": 5, "skip": 0}, 40, True),
        ("rsi_reversion", {"period": 14}, 14, True),
        ("bollinger_breakout", {"window": 20}, 20, False),
    ],
)
def test_window_shorter_than_warm_up_is_a_warning(strategy, params, bars, warn):
    out = run_universe(_klines(n_days=bars), BacktestRunsConfig(strategy=strategy, params=params, **CFG))
    if warn:
        assert len(out["stats"]["warnings"]) == 1 and "warm-up" in out["stats"]["warnings"][0]
        assert out["stats"]["num_trades"] == 0
    else:
        assert out["stats"]["warnings"] == []


def _concat_sum(curves: dict[str, pd.Series], cash_each: float) -> pd.Series:
    """The portfolio curve as pandas aligns it (what `portfolio_equity` computes without aligning)."""
    return pd.concat(curves, axis=1).sort_index().ffill().fillna(cash_each).sum(axis=1).rename("equity")


@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Shanghai"])
def test_portfolio_equity_equals_pandas_alignment_to_the_last_bit(tz):
    rng = np.random.default_rng(7)
    days = pd.DatetimeIndex(pd.bdate_range("2024-01-02", periods=300).values.astype("M8[s]"), name="t")
    days = days if tz is None else days.tz_localize(tz)
    curves = {}
    for i in range(40):  # some symbols suspended for a while, one listed late, one delisted early
        index = days.delete(slice(50 + i, 60 + 2 * i)) if i % 3 == 0 else days
        index = index[100:] if i == 5 else index[:200] if i == 7 else index
        curves[f"S{i}"] = pd.Series(25_000 * np.exp(np.cumsum(rng.normal(0, 0.01, len(index)))), index=index)
    got, expected = portfolio_equity(curves, 25_000.0), _concat_sum(curves, 25_000.0)
    pd.testing.assert_series_equal(got, expected, check_exact=True)
    assert got.index.tz == days.tz and (got.diff().dropna() != 0).any()


def test_universe_results_from_prepared_bars_equal_those_from_frames():
    """An API batch validates each symbol's `Bars` once and runs every request on them: same stats,
    equity, trades, equity rows and result hash as a lone run on the frames."""
    from quant_platform.assets.backtests import _equity_rows, ohlcv_frames, prepared_bars

    klines = _klines(symbols=("A", "B", "C", "D", "E"), drop=("C", 15))
    cfg = BacktestRunsConfig(strategy="sma_cross", params={"fast": 5, "slow": 20}, **CFG)
    frames = ohlcv_frames(klines)
    lone, batched = run_universe(klines, cfg), run_universe(klines, cfg, frames, prepared_bars(frames))
    assert lone["result_hash"] == batched["result_hash"] and lone["stats"] == batched["stats"]
    pd.testing.assert_series_equal(lone["equity"], batched["equity"], check_exact=True)
    pd.testing.assert_frame_equal(lone["trades"], batched["trades"], check_exact=True)
    expected_trades = pd.concat(
        [r.trades.assign(symbol=s) for s, r in lone["results"].items() if len(r.trades)], ignore_index=True
    )
    pd.testing.assert_frame_equal(batched["trades"], expected_trades, check_exact=True)
    rows = _equity_rows("r", batched)
    assert list(rows["symbol"].unique()) == ["*", "A", "B", "C", "D", "E"]
    c = rows[rows["symbol"] == "C"]
    curve = lone["results"]["C"].equity
    np.testing.assert_array_equal(c["equity"].to_numpy(), curve.to_numpy())
    np.testing.assert_array_equal(c["drawdown"].to_numpy(), (curve / curve.cummax() - 1.0).to_numpy())
    assert (c["ts"].dt.tz_localize(None).to_numpy() == curve.index.as_unit("ms").to_numpy()).all()
