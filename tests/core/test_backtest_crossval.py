"""Cross-validation of the backtest engine against backtesting.py on its bundled GOOG daily data.

Under matching settings the closed trades (entry/exit times and prices, sizes, pnl, commissions) and
the final equity agree to the cent. Conventions aligned (see docs/backtest.md):

* backtesting.py's market orders fill at the next bar's open (``trade_on_close=False``) or the signal
  bar's close (``trade_on_close=True``) <-> our ``fill="next_open"`` / ``fill="close"``;
* ``buy()`` without size sizes ``int(equity * (1 - eps) // (price * (1 + commission)))`` <-> our
  ``all_in_integer`` ``floor(equity / (price * (1 + commission)))``;
* commission is a rate charged on both entry and exit notional, entry fee paid at entry;
* ``position.close(); buy()`` reversal (or ``exclusive_orders=True``) <-> ``direction="long_short"``;
* trades still open at the end: backtesting.py (``finalize_trades=False``) leaves them out of its
  trade list but marks its equity to the last close, as our final equity does; we list them with
  ``is_open=True``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

bt = pytest.importorskip("backtesting")
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402
from backtesting.test import GOOG, SMA  # noqa: E402

from quant_platform import backtest  # noqa: E402

CENT = 0.005


class SmaCross(Strategy):
    n1 = 10
    n2 = 20

    def init(self):
        self.sma1 = self.I(SMA, self.data.Close, self.n1)
        self.sma2 = self.I(SMA, self.data.Close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


class SmaCrossExclusive(SmaCross):
    def next(self):
        if crossover(self.sma1, self.sma2):
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.sell()


class SmaCrossLongOnly(SmaCross):
    def next(self):
        if crossover(self.sma1, self.sma2):
            if not self.position:
                self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()


def _bt(strategy, n1, n2, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(GOOG, strategy, **kw).run(n1=n1, n2=n2)


def _assert_same_trades(ref: pd.DataFrame, ours: pd.DataFrame) -> None:
    closed = ours[~ours["is_open"]].reset_index(drop=True)
    assert len(ref) == len(closed) > 0
    np.testing.assert_array_equal(ref["EntryTime"].to_numpy(), closed["entry_time"].to_numpy())
    np.testing.assert_array_equal(ref["ExitTime"].to_numpy(), closed["exit_time"].to_numpy())
    np.testing.assert_array_equal(ref["EntryBar"].to_numpy(), closed["entry_bar"].to_numpy())
    np.testing.assert_array_equal(ref["ExitBar"].to_numpy(), closed["exit_bar"].to_numpy())
    np.testing.assert_array_equal(ref["Size"].to_numpy(dtype=float), closed["size"].to_numpy())
    np.testing.assert_allclose(ref["EntryPrice"], closed["entry_price"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ref["ExitPrice"], closed["exit_price"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ref["PnL"], closed["pnl"], rtol=0, atol=CENT)
    np.testing.assert_allclose(ref["Commission"], closed["commission"], rtol=0, atol=CENT)


@pytest.mark.parametrize(
    ("n1", "n2", "commission"),
    [(10, 20, 0.0), (10, 20, 0.002), (5, 30, 0.001), (20, 50, 0.002)],
)
def test_sma_cross_long_short_next_open_matches(n1, n2, commission):
    ref = _bt(SmaCross, n1, n2, commission=commission)
    ours = backtest.run(GOOG, "sma_cross", {"fast": n1, "slow": n2}, commission=commission)
    _assert_same_trades(ref["_trades"], ours.trades)
    s = ours.stats
    assert abs(ref["Equity Final [$]"] - s["final_equity"]) < CENT
    # The whole equity curve agrees bar by bar (equity marked to each close).
    np.testing.assert_allclose(ref["_equity_curve"]["Equity"].to_numpy(), ours.equity.to_numpy(), atol=CENT)
    assert s["num_trades"] == ref["# Trades"]
    assert s["win_rate"] == pytest.approx(ref["Win Rate [%]"] / 100, abs=1e-12)
    assert s["total_return"] == pytest.approx(ref["Return [%]"] / 100, abs=1e-9)
    assert s["cagr"] == pytest.approx(ref["CAGR [%]"] / 100, abs=1e-9)
    assert s["max_drawdown"] == pytest.approx(ref["Max. Drawdown [%]"] / 100, abs=1e-9)
    closed = ours.trades[~ours.trades["is_open"]]
    if commission:
        assert closed["commission"].sum() == pytest.approx(ref["Commissions [$]"], abs=CENT)
    # Exposure: backtesting.py counts bars entry..exit (inclusive) of closed trades only; ours also
    # counts the open position, i.e. the same rule over all rows of our trades table.
    held = np.zeros(len(GOOG), dtype=bool)
    for e, x in zip(ref["_trades"]["EntryBar"], ref["_trades"]["ExitBar"], strict=True):
        held[e : x + 1] = True
    assert held.mean() == pytest.approx(ref["Exposure Time [%]"] / 100, abs=1e-12)
    for e, x in zip(ours.trades["entry_bar"], ours.trades["exit_bar"], strict=True):
        held[e : x + 1] = True
    assert s["exposure"] == pytest.approx(held.mean(), abs=1e-12)


def test_exclusive_orders_equals_close_then_reverse():
    ref = _bt(SmaCrossExclusive, 10, 20, commission=0.002, exclusive_orders=True)
    ours = backtest.run(GOOG, "sma_cross", {"fast": 10, "slow": 20}, commission=0.002)
    _assert_same_trades(ref["_trades"], ours.trades)
    assert abs(ref["Equity Final [$]"] - ours.stats["final_equity"]) < CENT


@pytest.mark.parametrize(("n1", "n2"), [(10, 20), (5, 30)])
def test_trade_on_close_matches_fill_close(n1, n2):
    ref = _bt(SmaCross, n1, n2, commission=0.001, trade_on_close=True)
    ours = backtest.run(GOOG, "sma_cross", {"fast": n1, "slow": n2}, commission=0.001, fill="close")
    # backtesting.py never fills a signal of the very last bar; make sure this case doesn't have one.
    assert ours.trades["entry_bar"].max() < len(GOOG) - 1
    _assert_same_trades(ref["_trades"], ours.trades)
    # Fill prices are the signal bar's close.
    closed = ours.trades[~ours.trades["is_open"]]
    np.testing.assert_allclose(closed["entry_price"], GOOG["Close"].to_numpy()[closed["entry_bar"]])
    assert abs(ref["Equity Final [$]"] - ours.stats["final_equity"]) < CENT


def test_long_only_matches():
    ref = _bt(SmaCrossLongOnly, 10, 20, commission=0.002)
    ours = backtest.run(GOOG, "sma_cross", {"fast": 10, "slow": 20}, commission=0.002, direction="long_only")
    _assert_same_trades(ref["_trades"], ours.trades)
    assert (ours.trades["size"] > 0).all()
    assert abs(ref["Equity Final [$]"] - ours.stats["final_equity"]) < CENT


def test_finalize_trades_convention_difference():
    """backtesting.py's finalize_trades=True closes the open trade at the last bar's *open*; we mark it
    to the last *close* (as its finalize_trades=False equity does) and flag it in stats."""
    ref_open = _bt(SmaCross, 10, 20, commission=0.002)
    ref_fin = _bt(SmaCross, 10, 20, commission=0.002, finalize_trades=True)
    ours = backtest.run(GOOG, "sma_cross", {"fast": 10, "slow": 20}, commission=0.002)
    last = ours.trades.iloc[-1]
    assert bool(last["is_open"]) and ours.stats["open_position_marked_to_close"]
    assert ours.stats["open_trades"] == 1
    fin_last = ref_fin["_trades"].iloc[-1]
    assert fin_last["EntryTime"] == last["entry_time"] and fin_last["Size"] == last["size"]
    assert fin_last["ExitPrice"] == GOOG["Open"].iloc[-1]
    assert last["exit_price"] == GOOG["Close"].iloc[-1]
    assert abs(ref_open["Equity Final [$]"] - ours.stats["final_equity"]) < CENT
    # Marked pnl excludes an exit fee, like backtesting.py's unrealised equity.
    expected = last["size"] * (last["exit_price"] - last["entry_price"]) - last["commission"]
    assert last["pnl"] == pytest.approx(expected)
