"""Unit tests of the backtest engine: fills, sizing, fees, A-share rules, stats, validation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant_platform import backtest
from quant_platform.core.backtest import StrategySpec

OPENS = [10.0, 33.0, 34.0, 35.0, 36.0, 37.0]
CLOSES = [10.0, 33.5, 34.5, 35.5, 36.5, 37.5]


def frame(opens=OPENS, closes=CLOSES, index=None, **extra) -> pd.DataFrame:
    o = np.asarray(opens, dtype=float)
    c = np.asarray(closes, dtype=float)
    idx = index if index is not None else pd.bdate_range("2024-01-02", periods=len(o))
    df = pd.DataFrame(
        {
            "Open": o,
            "High": np.maximum(o, c) * 1.01,
            "Low": np.minimum(o, c) * 0.99,
            "Close": c,
            "Volume": 1e6,
        },
        index=idx,
    )
    for k, v in extra.items():
        df[k] = v
    return df


def signals(values):
    arr = np.asarray(values, dtype=float)

    def fn(bars, params):
        return arr

    return fn


def targets(values):
    arr = np.asarray(values, dtype=float)
    return StrategySpec("targets", lambda bars, params: arr, output="targets")


# ------------------------------------------------------------------------------------------- fills


def test_next_open_fill_sizing_and_commission():
    res = backtest.run(frame(), signals([1, 0, -1, 0, 0, 0]), commission=0.001, direction="long_only")
    tr = res.trades
    assert len(tr) == 1
    t = tr.iloc[0]
    # Signal on bar 0's close -> filled at bar 1's open; exit signal on bar 2 -> bar 3's open.
    assert (t["entry_bar"], t["exit_bar"]) == (1, 3)
    assert (t["entry_price"], t["exit_price"]) == (33.0, 35.0)
    assert t["size"] == math.floor(10_000 / (33.0 * 1.001)) == 302
    fee_in, fee_out = 302 * 33 * 0.001, 302 * 35 * 0.001
    assert t["commission"] == pytest.approx(fee_in + fee_out)
    assert t["pnl"] == pytest.approx(302 * 2 - fee_in - fee_out)
    eq = res.equity.to_numpy()
    assert eq[0] == 10_000
    assert eq[1] == pytest.approx(10_000 - fee_in + 302 * (33.5 - 33.0))
    assert eq[-1] == pytest.approx(10_000 + 302 * 2 - fee_in - fee_out)
    assert res.stats["commissions"] == pytest.approx(fee_in + fee_out)
    assert res.stats["num_trades"] == 1 and res.stats["open_trades"] == 0
    assert not res.stats["open_position_marked_to_close"]


def test_close_fill_uses_signal_bar_close():
    res = backtest.run(frame(), signals([0, 1, 0, -1, 0, 0]), fill="close", direction="long_only")
    t = res.trades.iloc[0]
    assert (t["entry_bar"], t["exit_bar"]) == (1, 3)
    assert (t["entry_price"], t["exit_price"]) == (33.5, 35.5)
    assert t["size"] == math.floor(10_000 / 33.5)


def test_signal_on_last_bar_is_not_filled_with_next_open():
    res = backtest.run(frame(), signals([0, 0, 0, 0, 0, 1]))
    assert res.trades.empty and res.stats["final_equity"] == 10_000


def test_long_short_reversal_and_long_only():
    sig = [1, 0, -1, 0, 1, 0]
    ls = backtest.run(frame(), signals(sig))
    tr = ls.trades
    assert list(np.sign(tr["size"])) == [1, -1, 1]
    # The long is closed and the short opened at the same open (bar 3).
    assert tr["exit_bar"].iloc[0] == tr["entry_bar"].iloc[1] == 3
    assert tr["is_open"].tolist() == [False, False, True]
    lo = backtest.run(frame(), signals(sig), direction="long_only")
    assert (lo.trades["size"] > 0).all() and len(lo.trades) == 2
    assert lo.trades["entry_bar"].tolist() == [1, 5]


def test_targets_output_and_nan_keeps_previous_target():
    res = backtest.run(frame(), targets([1, np.nan, np.nan, 0, np.nan, np.nan]))
    t = res.trades.iloc[0]
    assert (t["entry_bar"], t["exit_bar"]) == (1, 4)


def test_open_position_marked_to_last_close():
    res = backtest.run(frame(), signals([1, 0, 0, 0, 0, 0]), commission=0.001)
    t = res.trades.iloc[-1]
    assert t["is_open"] and t["exit_price"] == CLOSES[-1]
    assert res.stats["open_position_marked_to_close"] and res.stats["open_trades"] == 1
    assert res.stats["num_trades"] == 0  # closed round trips only
    assert res.stats["final_equity"] == pytest.approx(10_000 + t["size"] * (37.5 - 33.0) - t["commission"])


# ------------------------------------------------------------------------------------------ sizing


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"lot_size": 100}, 300),
        ({"sizing": "all_in_fractional", "commission": 0.001}, 10_000 / (33 * 1.001)),
        ({"sizing": 50}, 50),
        ({"sizing": 1000}, 303),  # fixed quantity capped by what the cash pays for
        ({"sizing": 250, "lot_size": 100}, 200),
    ],
)
def test_sizing_modes(settings, expected):
    res = backtest.run(frame(), signals([1, 0, 0, 0, 0, 0]), **settings)
    assert res.trades["size"].iloc[0] == pytest.approx(expected, rel=1e-12)


def test_min_commission_and_stamp_duty_on_sells_only():
    kw = dict(cash=1_000, commission=0.0003, min_commission=5.0, stamp_duty=0.001)
    opens = [10.0, 10.0, 10.5, 11.0, 11.0, 11.0]
    res = backtest.run(frame(opens, opens), signals([1, 0, -1, 0, 0, 0]), direction="long_only", **kw)
    t = res.trades.iloc[0]
    # floor(min(1000 / (10 * 1.0003), (1000 - 5) / 10)) = 99: the minimum fee must fit too.
    assert t["size"] == 99
    stamp = 99 * 11.0 * 0.001
    assert res.stats["commissions"] == pytest.approx(10.0)  # both legs pay the 5.0 minimum
    assert res.stats["stamp_duty"] == pytest.approx(stamp)
    assert t["pnl"] == pytest.approx(99 * 1.0 - 10.0 - stamp)
    # Opening a short is a sell (stamp duty), covering it is a buy (none).
    sh = backtest.run(frame(opens, opens), signals([-1, 0, 1, 0, 0, 0]), **kw)
    first = sh.trades.iloc[0]
    assert first["size"] < 0
    assert sh.stats["stamp_duty"] == pytest.approx(-first["size"] * 10.0 * 0.001)


def test_slippage_is_adverse_on_both_sides():
    res = backtest.run(frame(), signals([1, 0, -1, 0, 0, 0]), slippage=0.01, direction="long_only")
    t = res.trades.iloc[0]
    assert t["entry_price"] == pytest.approx(33.0 * 1.01)
    assert t["exit_price"] == pytest.approx(35.0 * 0.99)


def test_a_share_preset():
    cfg = backtest.BacktestSettings.a_share(cash=100_000)
    res = backtest.run(frame(), signals([1, 0, -1, 0, 1, 0]), **cfg.to_dict())
    sizes = res.trades["size"].to_numpy()
    assert (sizes > 0).all() and (sizes % 100 == 0).all()
    assert res.stats["stamp_duty"] > 0 and res.stats["commissions"] >= 5.0 * 3


# --------------------------------------------------------------------------------------- A-share


def test_t_plus_1_blocks_same_day_sell_and_retries():
    idx = pd.DatetimeIndex(
        ["2024-01-02 09:30", "2024-01-02 10:30", "2024-01-02 11:30", "2024-01-03 09:30", "2024-01-03 10:30"]
    )
    px = [10.0, 10.0, 10.2, 10.4, 10.6]
    sig = signals([1, -1, 0, 0, 0])
    free = backtest.run(frame(px, px, index=idx), sig, direction="long_only")
    assert free.trades["exit_bar"].iloc[0] == 2
    t1 = backtest.run(frame(px, px, index=idx), sig, direction="long_only", t_plus_1=True)
    # Bought at bar 1 (Jan 2); selling at bar 2 is the same day -> retried at bar 3 (Jan 3).
    assert t1.trades["entry_bar"].iloc[0] == 1 and t1.trades["exit_bar"].iloc[0] == 3
    assert t1.trades["exit_price"].iloc[0] == 10.4


def test_price_limit_columns_block_buy_at_limit_up_and_sell_at_limit_down():
    opens = [10.0, 11.0, 10.8, 10.0, 9.0, 9.5]
    up = [np.inf, 11.0, 11.88, 11.88, 11.0, 9.9]
    dn = [0.0, 9.0, 9.72, 9.72, 9.0, 8.1]
    df = frame(opens, opens, limit_up=up, limit_down=dn)
    sig = signals([1, 0, 0, -1, 0, 0])
    res = backtest.run(df, sig, direction="long_only", price_limit=True)
    t = res.trades.iloc[0]
    # Bar 1 opens at limit-up -> buy retried at bar 2; the sell at bar 4 is at limit-down -> bar 5.
    assert (t["entry_bar"], t["exit_bar"]) == (2, 5)
    off = backtest.run(df, sig, direction="long_only")
    assert (off.trades["entry_bar"].iloc[0], off.trades["exit_bar"].iloc[0]) == (1, 4)


def test_price_limit_fraction_uses_previous_close():
    opens = [10.0, 11.0, 10.5, 10.5, 10.5, 10.5]
    closes = [10.0, 10.0, 10.5, 10.5, 10.5, 10.5]
    res = backtest.run(frame(opens, closes), signals([1, 0, 0, 0, 0, 0]), price_limit=0.1)
    assert res.trades["entry_bar"].iloc[0] == 2  # 11.00 = round(10.00 * 1.1, 2) is limit-up
    with pytest.raises(ValueError, match="limit_up"):
        backtest.run(frame(opens, closes), signals([1, 0, 0, 0, 0, 0]), price_limit=True)


def test_ruin_stops_trading_at_zero_equity():
    px = [10.0, 10.0, 15.0, 25.0, 30.0, 20.0]
    res = backtest.run(frame(px, px), signals([-1, 0, 0, 0, 1, 0]))
    eq = res.equity.to_numpy()
    assert eq[3] == 0.0 and (eq[3:] == 0).all()
    assert len(res.trades) == 1 and res.stats["total_return"] == -1.0


# ------------------------------------------------------------------------------------------- stats


@pytest.fixture(scope="module")
def goog():
    bt = pytest.importorskip("backtesting.test")
    return bt.GOOG


@pytest.mark.parametrize("ppy", [252, 365])
def test_stats_formulas(goog, ppy):
    res = backtest.run(goog, "sma_cross", {"fast": 10, "slow": 30}, commission=0.001, periods_per_year=ppy)
    s, eq = res.stats, res.equity
    r = eq.pct_change().dropna()
    assert s["annual_volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(ppy), rel=1e-9)
    assert s["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(ppy), rel=1e-9)
    down = math.sqrt((np.minimum(r, 0) ** 2).mean())
    assert s["sortino"] == pytest.approx(r.mean() / down * math.sqrt(ppy), rel=1e-9)
    mdd = (eq / eq.cummax() - 1).min()
    assert s["max_drawdown"] == pytest.approx(mdd, rel=1e-12) and mdd < 0
    years = (eq.index[-1] - eq.index[0]).days / 365.25
    assert s["cagr"] == pytest.approx((eq.iloc[-1] / 10_000) ** (1 / years) - 1, rel=1e-12)
    assert s["calmar"] == pytest.approx(s["cagr"] / -mdd, rel=1e-12)
    assert s["total_return"] == pytest.approx(eq.iloc[-1] / 10_000 - 1, rel=1e-12)
    closed = res.trades[~res.trades["is_open"]]
    pnl = closed["pnl"]
    assert s["num_trades"] == len(closed)
    assert s["win_rate"] == pytest.approx((pnl > 0).mean())
    assert s["profit_factor"] == pytest.approx(pnl[pnl > 0].sum() / -pnl[pnl < 0].sum())
    assert s["buy_and_hold_return"] == pytest.approx(goog["Close"].iloc[-1] / goog["Close"].iloc[0] - 1)
    assert s["commissions"] == pytest.approx(res.trades["commission"].sum())
    # Accounting identity: all trade pnl (incl. the marked open one) adds up to the equity change.
    assert res.trades["pnl"].sum() == pytest.approx(s["final_equity"] - 10_000, abs=1e-6)
    assert list(s) == list(backtest.STAT_NAMES)


def test_result_hash_is_deterministic(goog):
    a = backtest.run(goog, "ema_cross", {"fast": 8, "slow": 21}, commission=0.001)
    b = backtest.run(goog, "ema_cross", {"fast": 8, "slow": 21}, commission=0.001)
    c = backtest.run(goog, "ema_cross", {"fast": 8, "slow": 21}, commission=0.0011)
    assert a.result_hash == b.result_hash and len(a.result_hash) == 64
    assert a.result_hash != c.result_hash
    assert a.params == {"fast": 8, "slow": 21} and a.settings.commission == 0.001


def test_every_builtin_single_strategy_runs(goog):
    for name in ("sma_cross", "ema_cross", "rsi_reversion", "bollinger_breakout"):
        res = backtest.run(goog, name, direction="long_only", commission=0.001)
        assert res.stats["num_trades"] > 0, name
        assert res.trades["pnl"].sum() == pytest.approx(res.stats["final_equity"] - 10_000, abs=1e-6)


# ----------------------------------------------------------------------------------------- inputs


def test_lower_case_columns_date_column_and_tz_index():
    df = frame()
    lower = df.rename(columns=str.lower).reset_index(names="date")
    a = backtest.run(df, "sma_cross", {"fast": 1, "slow": 2})
    b = backtest.run(lower, "sma_cross", {"fast": 1, "slow": 2})
    assert a.result_hash == b.result_hash
    tz = df.tz_localize("Asia/Shanghai")
    assert backtest.run(tz, "sma_cross", {"fast": 1, "slow": 2}).result_hash == a.result_hash


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda df: df.drop(columns="Close"), "missing column"),
        (lambda df: df.iloc[::-1], "not sorted"),
        (lambda df: df.iloc[[0, 0, 1, 2]], "duplicated"),
        (lambda df: df.assign(Open=[10.0, np.nan, 34, 35, 36, 37]), "NaN"),
        (lambda df: df.assign(Low=0.0), "non-positive"),
        (lambda df: df.reset_index(drop=True), "DatetimeIndex"),
        (lambda df: df.iloc[:1], "at least 2"),
        (lambda df: df["Close"], "DataFrame"),
    ],
)
def test_bad_data_raises(mutate, match):
    with pytest.raises(ValueError, match=match):
        backtest.run(mutate(frame()), "sma_cross", {"fast": 1, "slow": 2})


@pytest.mark.parametrize(
    ("strategy", "params", "settings", "match"),
    [
        ("nope", None, {}, "unknown strategy"),
        ("sma_cross", {"fast": 10, "slow": 10}, {}, "slow"),
        ("sma_cross", {"fats": 10}, {}, "unknown parameter"),
        ("sma_cross", {"fast": 2.5}, {}, "integer"),
        ("rsi_reversion", {"lower": 80, "upper": 70}, {}, "lower"),
        ("sma_cross", None, {"fast": 5}, "params="),
        ("sma_cross", None, {"comission": 0.1}, "unknown backtest setting"),
        ("sma_cross", None, {"fill": "vwap"}, "fill"),
        ("sma_cross", None, {"sizing": -5}, "sizing"),
        ("sma_cross", None, {"cash": 0}, "cash"),
        ("sma_cross", None, {"direction": "short_only"}, "direction"),
        ("sma_cross", None, {"price_limit": 2}, "price_limit"),
    ],
)
def test_bad_strategy_params_settings_raise(strategy, params, settings, match):
    with pytest.raises(ValueError, match=match):
        backtest.run(frame(), strategy, params, **settings)


def test_bad_strategy_output_raises():
    with pytest.raises(ValueError, match="expected"):
        backtest.run(frame(), signals([1, 0, 0]))
    with pytest.raises(ValueError, match="single-asset"):
        backtest.run({"a": frame(), "b": frame()}, "sma_cross")


def test_register_custom_strategy():
    def breakout(bars, params):
        hi = pd.Series(bars.close).rolling(params["n"]).max().shift(1).to_numpy()
        return np.where(bars.close > hi, 1, 0)

    spec = backtest.register_strategy(
        "test_breakout", breakout, {"n": backtest.Param(int, 3, 1)}, replace=True
    )
    try:
        assert "test_breakout" in backtest.STRATEGIES and spec.defaults() == {"n": 3}
        res = backtest.run(frame(), "test_breakout", {"n": 2}, direction="long_only")
        assert res.params == {"n": 2} and len(res.trades) == 1
        with pytest.raises(ValueError, match=">= 1"):
            backtest.validate_params("test_breakout", {"n": 0})
        with pytest.raises(ValueError, match="already registered"):
            backtest.register_strategy("test_breakout", breakout, {"n": 3})
        assert "test_breakout" in backtest.strategies()
    finally:
        backtest.STRATEGIES.pop("test_breakout", None)


# -------------------------------------------------------------------------------------- portfolio


def universe(n_sym=6, n=300, seed=1):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2021-01-04", periods=n)
    out = {}
    for k in range(n_sym):
        c = 20 * np.exp(np.cumsum(rng.normal(0.0002 * k, 0.02, n)))
        o = c * np.exp(rng.normal(0, 0.004, n))
        out[f"S{k}"] = frame(o, c, index=idx)
    return out


def test_xs_momentum_portfolio():
    data = universe()
    params = {"lookback": 20, "top_n": 2, "rebalance": 10}
    res = backtest.run(data, "xs_momentum", params, commission=0.001)
    tr = res.trades
    assert set(tr["symbol"]) <= set(data) and (tr["size"] > 0).all()
    # Never more than top_n symbols held at once.
    bars = len(res.equity)
    held = np.zeros(bars, dtype=int)
    for e, x, is_open in zip(tr["entry_bar"], tr["exit_bar"], tr["is_open"], strict=True):
        held[e : (x + 1 if is_open else x)] += 1
    assert held.max() == 2
    # First decision on bar 20 fills at bar 21's open.
    assert tr["entry_bar"].min() == 21
    assert tr["pnl"].sum() == pytest.approx(res.stats["final_equity"] - 10_000, abs=1e-6)
    long = pd.concat([df.assign(symbol=s) for s, df in data.items()]).reset_index(names="trade_date")
    assert backtest.run(long, "xs_momentum", params, commission=0.001).result_hash == res.result_hash


def test_xs_momentum_a_share_rules():
    data = universe()
    res = backtest.run(
        data,
        "xs_momentum",
        {"lookback": 20, "top_n": 2, "rebalance": 5},
        **backtest.BacktestSettings.a_share(cash=1e6).to_dict(),
    )
    assert (res.trades["size"] % 100 == 0).all()
    assert res.stats["stamp_duty"] > 0
    assert res.trades["pnl"].sum() == pytest.approx(res.stats["final_equity"] - 1e6, abs=1e-6)
