"""No look-ahead: perturbing bars after t never changes decisions, fills or equity at or before t."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_platform import backtest
from quant_platform.core.backtest import STRATEGIES, prepare_bars, prepare_panel

N = 400
CUTS = (60, 150, 299)
SINGLE = {
    "sma_cross": {"fast": 5, "slow": 20},
    "ema_cross": {"fast": 5, "slow": 20},
    "rsi_reversion": {"period": 10, "lower": 40, "upper": 60},
    "bollinger_breakout": {"window": 15, "k": 1.0},
}
MULTI = {"xs_momentum": {"lookback": 20, "top_n": 2, "rebalance": 7, "skip": 2}}


def _ohlc(rng, n, index):
    c = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    o = c * np.exp(rng.normal(0, 0.01, n))
    return pd.DataFrame(
        {
            "Open": o,
            "High": np.maximum(o, c) * 1.01,
            "Low": np.minimum(o, c) * 0.99,
            "Close": c,
            "Volume": 1e5,
        },
        index=index,
    )


def _perturb(df: pd.DataFrame, t: int, rng) -> pd.DataFrame:
    """Same bars up to t; everything after t replaced by an unrelated random path."""
    out = df.copy()
    fresh = _ohlc(rng, len(df) - t - 1, df.index[t + 1 :])
    out.iloc[t + 1 :] = fresh.to_numpy()
    return out


def _check(res_a, res_b, t):
    np.testing.assert_array_equal(res_a.equity.to_numpy()[: t + 1], res_b.equity.to_numpy()[: t + 1])
    ta, tb = res_a.trades, res_b.trades
    # Trades entered at or before t: same entries; those also closed at or before t: identical rows.
    ea, eb = ta[ta["entry_bar"] <= t], tb[tb["entry_bar"] <= t]
    cols = [c for c in ("symbol", "entry_bar", "entry_price", "size") if c in ta]
    pd.testing.assert_frame_equal(ea[cols].reset_index(drop=True), eb[cols].reset_index(drop=True))
    ca = ta[(ta["exit_bar"] <= t) & ~ta["is_open"]].reset_index(drop=True)
    cb = tb[(tb["exit_bar"] <= t) & ~tb["is_open"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(ca, cb)


def test_every_builtin_is_covered():
    assert set(STRATEGIES) <= set(SINGLE) | set(MULTI)


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("name", sorted(SINGLE))
def test_single_asset_strategies_have_no_lookahead(name, fill):
    rng = np.random.default_rng(7)
    df = _ohlc(rng, N, pd.bdate_range("2020-01-01", periods=N))
    params = SINGLE[name]
    spec = STRATEGIES[name]
    base_sig = np.asarray(spec.fn(prepare_bars(df), spec.validate(params)), dtype=float)
    base = backtest.run(df, name, params, fill=fill, commission=0.001)
    assert base.stats["num_trades"] >= 3  # the check below must see real trades
    for t in CUTS:
        pert = _perturb(df, t, rng)
        sig = np.asarray(spec.fn(prepare_bars(pert), spec.validate(params)), dtype=float)
        np.testing.assert_array_equal(base_sig[: t + 1], sig[: t + 1])
        _check(base, backtest.run(pert, name, params, fill=fill, commission=0.001), t)


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_portfolio_strategy_has_no_lookahead(fill):
    rng = np.random.default_rng(11)
    idx = pd.bdate_range("2020-01-01", periods=N)
    data = {f"S{k}": _ohlc(rng, N, idx) for k in range(5)}
    name, params = "xs_momentum", MULTI["xs_momentum"]
    spec = STRATEGIES[name]
    base_sel = spec.fn(prepare_panel(data), spec.validate(params))
    base = backtest.run(data, name, params, fill=fill, commission=0.001)
    assert base.stats["num_trades"] >= 3
    for t in CUTS:
        pert = {s: _perturb(df, t, rng) for s, df in data.items()}
        sel = spec.fn(prepare_panel(pert), spec.validate(params))
        np.testing.assert_array_equal(base_sel[: t + 1], sel[: t + 1])
        _check(base, backtest.run(pert, name, params, fill=fill, commission=0.001), t)


def test_a_share_rules_have_no_lookahead():
    rng = np.random.default_rng(3)
    df = _ohlc(rng, N, pd.bdate_range("2020-01-01", periods=N))
    kw = backtest.BacktestSettings.a_share(cash=1e6, direction="long_only").to_dict()
    base = backtest.run(df, "sma_cross", {"fast": 3, "slow": 10}, **kw)
    assert base.stats["num_trades"] >= 3
    for t in CUTS:
        _check(base, backtest.run(_perturb(df, t, rng), "sma_cross", {"fast": 3, "slow": 10}, **kw), t)
