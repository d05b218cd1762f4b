"""Batched grid API: identical numbers to `run`, input shapes, skipping, progress and budgets."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from quant_platform import backtest

N = 600


def _ohlc(rng, n=N, start="2019-01-02"):
    idx = pd.bdate_range(start, periods=n)
    c = 30 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, n)))
    o = c * np.exp(rng.normal(0, 0.006, n))
    return pd.DataFrame(
        {
            "Open": o,
            "High": np.maximum(o, c) * 1.005,
            "Low": np.minimum(o, c) * 0.995,
            "Close": c,
            "Volume": 1e5,
        },
        index=idx,
    )


@pytest.fixture(scope="module")
def universe():
    rng = np.random.default_rng(5)
    return {f"S{k}": _ohlc(rng) for k in range(3)}


def _assert_rows_match_run(df, data, strategy, params_cols, **settings):
    assert len(df) > 0
    for row in df.itertuples(index=False):
        params = {p: getattr(row, p) for p in params_cols}
        frame = data if row.symbol in (None, backtest.PORTFOLIO_SYMBOL) else data[row.symbol]
        stats = backtest.run(frame, strategy, params, **settings).stats
        for k in backtest.STAT_NAMES:
            a, b = stats[k], getattr(row, k)
            assert a == b or (np.isnan(a) and np.isnan(b)), (row.symbol, params, k, a, b)


SETTINGS = [
    {"commission": 0.001},
    {"commission": 0.0005, "direction": "long_only", "fill": "close", "slippage": 0.001},
    {"cash": 1e6, "commission": 0.00025, "min_commission": 5.0, "stamp_duty": 0.0005, "lot_size": 100,
     "t_plus_1": True, "price_limit": 0.05, "direction": "long_only"},
    {"sizing": 50, "commission": 0.001},
]  # fmt: skip


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("strategy", ["sma_cross", "ema_cross"])
def test_fast_path_matches_run(universe, strategy, settings):
    g = {"fast": [3, 5, 10], "slow": [10, 20, 40]}
    df = backtest.grid(universe, strategy, g, **settings)
    # 3 symbols x 8 valid combinations (10/10 skipped), symbol-major.
    assert len(df) == 24 and df["symbol"].tolist() == ["S0"] * 8 + ["S1"] * 8 + ["S2"] * 8
    assert df.attrs["skipped"] == [
        {"params": {"fast": 10, "slow": 10}, "reason": df.attrs["skipped"][0]["reason"]}
    ]
    assert "slow (10) must be > fast (10)" in df.attrs["skipped"][0]["reason"]
    _assert_rows_match_run(df, universe, strategy, ["fast", "slow"], **settings)


def test_generic_path_matches_run(universe):
    df = backtest.grid(universe, "rsi_reversion", {"period": [7, 14], "lower": [25, 35], "upper": [65]},
                       direction="long_only", commission=0.001)  # fmt: skip
    assert len(df) == 12 and list(df.columns[:4]) == ["symbol", "period", "lower", "upper"]
    _assert_rows_match_run(df, universe, "rsi_reversion", ["period", "lower", "upper"],
                           direction="long_only", commission=0.001)  # fmt: skip
    df = backtest.grid(universe["S1"], "bollinger_breakout", {"window": [10, 20], "k": [1.0, 2.0]})
    assert df["symbol"].isna().all() and len(df) == 4
    _assert_rows_match_run(df, universe["S1"], "bollinger_breakout", ["window", "k"])


def test_portfolio_strategy(universe):
    df = backtest.grid(universe, "xs_momentum", {"lookback": [20, 40], "top_n": [1, 2], "rebalance": [10]},
                       commission=0.001)  # fmt: skip
    assert len(df) == 4 and (df["symbol"] == backtest.PORTFOLIO_SYMBOL).all()
    assert df["skip"].tolist() == [0, 0, 0, 0]  # defaults of unlisted parameters are columns too
    _assert_rows_match_run(df, universe, "xs_momentum", ["lookback", "top_n", "rebalance", "skip"],
                           commission=0.001)  # fmt: skip


def test_input_shapes_give_the_same_table(universe):
    g = {"fast": [5, 10], "slow": [20, 30]}
    by_map = backtest.grid(universe, "sma_cross", g)
    long = pd.concat([df.assign(symbol=s) for s, df in universe.items()]).reset_index(names="trade_date")
    by_long = backtest.grid(long.sample(frac=1.0, random_state=0), "sma_cross", g)  # row order irrelevant
    pd.testing.assert_frame_equal(by_map, by_long)
    lower = long.rename(columns=str.lower).set_index("trade_date")
    pd.testing.assert_frame_equal(by_map, backtest.grid(lower, "sma_cross", g))
    one = universe["S2"].copy()
    one.attrs["symbol"] = "S2"
    single = backtest.grid(one, "sma_cross", g)
    pd.testing.assert_frame_equal(single, by_map[by_map["symbol"] == "S2"].reset_index(drop=True))


def test_columns_and_dtypes(universe):
    df = backtest.grid(universe, "sma_cross", {"fast": [5], "slow": [20]})
    assert list(df.columns) == ["symbol", "fast", "slow", *backtest.STAT_NAMES]
    assert df["num_trades"].dtype == np.int64 and df["open_trades"].dtype == np.int64
    assert df["open_position_marked_to_close"].dtype == bool
    assert df.attrs["strategy"] == "sma_cross" and df.attrs["stopped"] == "completed"
    assert df.attrs["done"] == df.attrs["total"] == 3


def test_bad_grids_raise(universe):
    with pytest.raises(ValueError, match="unknown parameter"):
        backtest.grid(universe, "sma_cross", {"fats": [5]})
    with pytest.raises(ValueError, match="unknown strategy"):
        backtest.grid(universe, "nope", {"fast": [5]})
    with pytest.raises(ValueError, match="no values"):
        backtest.grid(universe, "sma_cross", {"fast": []})
    with pytest.raises(ValueError, match="unknown backtest setting"):
        backtest.grid(universe, "sma_cross", {"fast": [5]}, comission=0.1)
    all_bad = backtest.grid(universe, "sma_cross", {"fast": [20], "slow": [5, 10]})
    assert all_bad.empty and len(all_bad.attrs["skipped"]) == 2
    assert list(all_bad.columns) == ["symbol", "fast", "slow", *backtest.STAT_NAMES]


def test_progress_and_cancellation(universe):
    g = {"fast": list(range(2, 12)), "slow": [30, 40, 50]}  # 30 combos x 3 symbols
    calls = []
    full = backtest.grid(
        universe, "sma_cross", g, chunk_size=7, on_progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (90, 90) and all(t == 90 for _, t in calls)
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})  # strictly increasing
    assert len(calls) == 3 * 5  # ceil(30 / 7) chunks per symbol

    seen = []

    def stop_after_40(done, total):
        seen.append(done)
        return done < 40

    part = backtest.grid(universe, "sma_cross", g, chunk_size=7, on_progress=stop_after_40)
    assert part.attrs["stopped"] == "cancelled" and part.attrs["done"] == len(part) == seen[-1] >= 40
    pd.testing.assert_frame_equal(part, full.iloc[: len(part)], check_like=False)


def test_max_evals_and_time_budget(universe):
    g = {"fast": list(range(2, 12)), "slow": [30, 40, 50]}
    capped = backtest.grid(universe, "sma_cross", g, max_evals=45, chunk_size=8)
    assert len(capped) == 45 and capped.attrs["stopped"] == "max_evals" and capped.attrs["total"] == 90
    assert capped["symbol"].tolist() == ["S0"] * 30 + ["S1"] * 15
    exact = backtest.grid(universe, "sma_cross", g, max_evals=90)
    assert len(exact) == 90 and exact.attrs["stopped"] == "completed"
    none = backtest.grid(universe, "sma_cross", g, time_budget=0.0)
    assert none.empty and none.attrs["stopped"] == "time_budget"
    with pytest.raises(ValueError, match="max_evals"):
        backtest.grid(universe, "sma_cross", g, max_evals=-1)


def test_chunk_size_does_not_change_results(universe):
    g = {"fast": [2, 4, 6, 8], "slow": [12, 24]}
    a = backtest.grid(universe, "ema_cross", g, chunk_size=1, commission=0.001)
    b = backtest.grid(universe, "ema_cross", g, chunk_size=1000, commission=0.001)
    pd.testing.assert_frame_equal(a, b)


def test_memory_is_bounded():
    """20 symbols x 60 combinations x 2,000 bars: a (combos x bars x symbols) float cube would be
    19 MB; the grid never holds more than a few bars-sized arrays per symbol."""
    rng = np.random.default_rng(9)
    data = {f"S{k}": _ohlc(rng, 2000) for k in range(20)}
    g = {"fast": list(range(2, 22)), "slow": [50, 100, 150]}
    backtest.grid({"S0": data["S0"]}, "sma_cross", {"fast": [2], "slow": [50]})  # compile outside
    tracemalloc.start()
    df = backtest.grid(data, "sma_cross", g)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(df) == 1200
    cube = 20 * 60 * 2000 * 8
    assert peak < cube / 8, peak
