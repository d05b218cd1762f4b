"""Single-backtest speed: quant_platform.backtest vs backtesting.py on real daily data.

One SMA(10, 20) cross backtest (long/short reversal, next-open fills, all-in integer sizing,
0.2% commission) on backtesting.py's bundled GOOG bars (2,148 days, 2004-2013). Both engines run in
the same process; the script first asserts they produce identical trades and final equity, then times
each (after a warm-up, which also compiles our numba kernels) in interleaved rounds, so both see the
same machine load, and prints the medians.

Two timings are reported for ours: `run()` alone (stats computed; `.equity`, `.trades` and
`.result_hash` are built lazily on first access) and `run()` plus materialising all three.
backtesting.py builds its trade list and equity curve inside `run()`.

    python benchmarks/backtest.py [--repeat 300] [--repeat-bt 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=300, help="timed runs of ours")
    ap.add_argument("--repeat-bt", type=int, default=15, help="timed runs of backtesting.py")
    ap.add_argument("--fast", type=int, default=10)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--commission", type=float, default=0.002)
    args = ap.parse_args(argv)

    try:
        from backtesting import Backtest, Strategy
        from backtesting.lib import crossover
        from backtesting.test import GOOG, SMA
    except ImportError:
        print("backtesting.py is not installed (pip install backtesting)", file=sys.stderr)
        return 2

    import backtesting.backtesting as bt_module

    from quant_platform import backtest

    # Its tqdm progress bar is pure overhead here: time backtesting.py without it.
    bt_module._tqdm = lambda seq, **_: seq
    n1, n2, comm = args.fast, args.slow, args.commission

    class SmaCross(Strategy):
        def init(self):
            self.sma1 = self.I(SMA, self.data.Close, n1)
            self.sma2 = self.I(SMA, self.data.Close, n2)

        def next(self):
            if crossover(self.sma1, self.sma2):
                self.position.close()
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.position.close()
                self.sell()

    def ours():
        return backtest.run(GOOG, "sma_cross", {"fast": n1, "slow": n2}, commission=comm)

    def ours_full():
        r = ours()
        r.equity, r.trades, r.result_hash  # noqa: B018 - materialise the lazy attributes
        return r

    def theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Backtest(GOOG, SmaCross, commission=comm).run()

    # Warm-up (numba compile / cache load) and equality check.
    ref = theirs()
    res = ours_full()
    trades = res.trades[~res.trades["is_open"]].reset_index(drop=True)
    bt_trades = ref["_trades"]
    assert len(trades) == len(bt_trades) > 0, (len(trades), len(bt_trades))
    assert (trades["entry_time"].to_numpy() == bt_trades["EntryTime"].to_numpy()).all()
    assert (trades["exit_time"].to_numpy() == bt_trades["ExitTime"].to_numpy()).all()
    assert (trades["size"].to_numpy() == bt_trades["Size"].to_numpy()).all()
    assert np.allclose(trades["entry_price"], bt_trades["EntryPrice"], rtol=0, atol=1e-9)
    assert np.allclose(trades["exit_price"], bt_trades["ExitPrice"], rtol=0, atol=1e-9)
    assert np.allclose(trades["pnl"], bt_trades["PnL"], rtol=0, atol=0.005)
    assert abs(res.stats["final_equity"] - ref["Equity Final [$]"]) < 0.005
    assert np.allclose(res.equity.to_numpy(), ref["_equity_curve"]["Equity"].to_numpy(), atol=0.005)
    for _ in range(20):
        ours_full()

    # Interleave the engines so that both see the same machine load, then take medians.
    per_round = max(1, args.repeat // args.repeat_bt)
    times: dict[str, list[float]] = {"bt": [], "ours": [], "full": []}
    for _ in range(args.repeat_bt):
        times["bt"].append(_median_time(theirs, 1))
        times["ours"].append(_median_time(ours, per_round))
        times["full"].append(_median_time(ours_full, per_round))
    t_bt, t_ours, t_full = (statistics.median(times[k]) for k in ("bt", "ours", "full"))

    print(
        f"SMA({n1},{n2}) cross on GOOG: {len(GOOG)} daily bars, commission {comm:g}, "
        f"{len(trades)} closed trades, final equity {res.stats['final_equity']:.2f} (identical in both)"
    )
    rows = [
        ("backtesting.py Backtest.run", t_bt),
        ("quant_platform run()", t_ours),
        ("quant_platform run() + equity/trades/hash", t_full),
    ]
    print(f"{'engine':<44}{'median ms':>12}{'runs/s':>10}{'speed-up':>10}")
    for name, t in rows:
        print(f"{name:<44}{t * 1e3:>12.3f}{1 / t:>10.0f}{t_bt / t:>9.0f}x")
    print(
        f"speed ratio (backtesting.py / ours): {t_bt / t_ours:.0f}x run(), {t_bt / t_full:.0f}x materialised"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
