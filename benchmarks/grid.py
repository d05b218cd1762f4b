"""Parameter-grid throughput and memory: quant_platform.backtest.grid vs vectorbt.

Default workload: 500 symbols x 2,500 daily bars (synthetic, seeded geometric Brownian motion) x 100
SMA-cross combinations (fast 5..50 step 5, slow 60..150 step 10) = 50,000 backtests. Matching
settings on both sides: long-only, a cross on bar t's close fills at bar t+1's open, all-in integer
sizing, 0.1% commission per side, 10,000 cash, open positions marked to the last close.

Each engine runs in its own child process so that its peak memory can be measured alone: the peak
resident set size (Linux VmHWM, reset right before the timed run) minus the resident size just
before it, i.e. what the grid itself needed on top of the loaded data. Engines:

* ``ours``: ``backtest.grid`` computing every stat of ``backtest.run`` (median of ``--repeat`` runs;
  memory from the first);
* ``vectorbt``: ``vbt.MA.run`` + ``ma_crossed_above/below`` + ``Portfolio.from_signals`` (signals
  shifted one bar, ``price=open``, ``size=inf``, ``size_granularity=1``) and the matching stats
  (total/annualised return, volatility, Sharpe, Sortino, max drawdown, Calmar, trade count, win
  rate, profit factor, final value, fees, benchmark return), processed in chunks of symbols
  (``--vbt-chunk``) since the whole grid at once needs several (bars x backtests) float arrays;
* ``run``: a plain loop of ``backtest.run`` per combination and symbol (peer reference).

The parent checks that total returns agree on a sample of (symbol, combination) pairs and prints
backtests per wall-clock second and per CPU second (both engines are single-threaded; CPU time is the
steadier figure on a shared machine) and peak memory for each engine.

    python benchmarks/grid.py [--symbols 500] [--bars 2500] [--engines ours,vectorbt,run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

FAST = list(range(5, 55, 5))
SLOW = list(range(60, 160, 10))
SETTINGS = dict(cash=10_000.0, commission=0.001, direction="long_only", fill="next_open")


def make_data(n_symbols: int, n_bars: int, seed: int) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Seeded GBM closes and gapped opens, (bars x symbols)."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2010-01-04", periods=n_bars)
    mu = rng.normal(0.0003, 0.0003, n_symbols)
    sigma = rng.uniform(0.01, 0.03, n_symbols)
    log_ret = rng.normal(mu - 0.5 * sigma**2, sigma, (n_bars, n_symbols))
    close = 50.0 * np.exp(rng.normal(0, 0.5, n_symbols)) * np.exp(np.cumsum(log_ret, axis=0))
    prev = np.vstack([close[:1], close[:-1]])
    open_ = prev * np.exp(rng.normal(0, 0.005, (n_bars, n_symbols)))
    return index, open_, close


def _frames(index, open_, close) -> dict[str, pd.DataFrame]:
    out = {}
    for j in range(close.shape[1]):
        o, c = open_[:, j], close[:, j]
        out[f"S{j:04d}"] = pd.DataFrame(
            {"Open": o, "High": np.maximum(o, c), "Low": np.minimum(o, c), "Close": c, "Volume": 1e6},
            index=index,
        )
    return out


def _rss_kb() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_kb() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _measure(fn):
    import gc

    gc.collect()
    base = _rss_kb()
    exact = _reset_peak()
    c0 = time.process_time()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = _peak_kb()
    return out, (dt, cpu), max(0, peak - base) / 1024.0, exact


# ---------------------------------------------------------------------------------------- engines


def child_ours(args, index, open_, close) -> dict:
    from quant_platform import backtest

    data = _frames(index, open_, close)
    grid = {"fast": args.fast, "slow": args.slow}
    backtest.grid(
        dict(list(data.items())[:2]), "sma_cross", {"fast": [5], "slow": [60]}, **SETTINGS
    )  # warm-up
    df, first, mem, exact = _measure(lambda: backtest.grid(data, "sma_cross", grid, **SETTINGS))
    times = [first]
    for _ in range(args.repeat - 1):
        c0, t0 = time.process_time(), time.perf_counter()
        backtest.grid(data, "sma_cross", grid, **SETTINGS)
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    wall = float(np.median([t[0] for t in times]))
    cpu = float(np.median([t[1] for t in times]))
    sample = {f"{r.symbol}|{r.fast}|{r.slow}": r.total_return for r in df.itertuples()}
    n_stats = len(backtest.STAT_NAMES)
    return dict(n=len(df), seconds=wall, cpu=cpu, mem_mb=mem, exact_peak=exact, stats=n_stats, sample=sample)


def child_run(args, index, open_, close) -> dict:
    from quant_platform import backtest

    data = _frames(index, open_, close)
    combos = [(f, s) for f in args.fast for s in args.slow if s > f]
    symbols = list(data)[: args.run_symbols] if args.run_symbols else list(data)
    backtest.run(data[symbols[0]], "sma_cross", {"fast": 5, "slow": 60}, **SETTINGS)  # warm-up

    def loop():
        out = {}
        for sym in symbols:
            for f, s in combos:
                r = backtest.run(data[sym], "sma_cross", {"fast": f, "slow": s}, **SETTINGS)
                out[f"{sym}|{f}|{s}"] = r.stats["total_return"]
        return out

    sample, (wall, cpu), mem, exact = _measure(loop)
    n_stats = len(backtest.STAT_NAMES)
    return dict(
        n=len(sample), seconds=wall, cpu=cpu, mem_mb=mem, exact_peak=exact, stats=n_stats, sample=sample
    )


def child_vectorbt(args, index, open_, close) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    import vectorbt as vbt

    combos = [(f, s) for f in args.fast for s in args.slow if s > f]
    symbols = [f"S{j:04d}" for j in range(close.shape[1])]
    n_sym = args.vbt_symbols or len(symbols)
    close_df = pd.DataFrame(close[:, :n_sym], index=index, columns=symbols[:n_sym])
    open_np = np.ascontiguousarray(open_[:, :n_sym])

    def run_chunk(cols: slice) -> pd.DataFrame:
        c = close_df.iloc[:, cols]
        fast = vbt.MA.run(c, window=[f for f, _ in combos], short_name="fast")
        slow = vbt.MA.run(c, window=[s for _, s in combos], short_name="slow")
        entries = fast.ma_crossed_above(slow)
        exits = fast.ma_crossed_below(slow)
        # Decide on bar t's close, fill at bar t+1's open.
        entries = entries.shift(1, fill_value=False)
        exits = exits.shift(1, fill_value=False)
        k = len(combos)
        price = np.tile(open_np[:, cols], (1, k))
        close_t = pd.DataFrame(np.tile(c.to_numpy(), (1, k)), index=index, columns=entries.columns)
        pf = vbt.Portfolio.from_signals(
            close_t, entries, exits, price=price, fees=SETTINGS["commission"], init_cash=SETTINGS["cash"],
            size=np.inf, size_granularity=1, direction="longonly", freq="1D",
        )  # fmt: skip
        trades = pf.trades
        stats = pd.DataFrame(
            {
                "total_return": pf.total_return(),
                "annualized_return": pf.annualized_return(),
                "annualized_volatility": pf.annualized_volatility(),
                "sharpe": pf.sharpe_ratio(),
                "sortino": pf.sortino_ratio(),
                "max_drawdown": pf.max_drawdown(),
                "calmar": pf.calmar_ratio(),
                "num_trades": trades.count(),
                "win_rate": trades.win_rate(),
                "profit_factor": trades.profit_factor(),
                "final_value": pf.final_value(),
                "fees": pf.orders.fees.sum(),
                "benchmark_return": pf.total_benchmark_return(),
            }
        )
        return stats

    run_chunk(slice(0, 1))  # warm-up (numba compile)

    def loop():
        parts = [run_chunk(slice(a, min(n_sym, a + args.vbt_chunk))) for a in range(0, n_sym, args.vbt_chunk)]
        return pd.concat(parts)

    stats, (wall, cpu), mem, exact = _measure(loop)
    sample = {f"{sym}|{f}|{s}": v for (f, s, sym), v in stats["total_return"].items()}
    return dict(n=len(stats), seconds=wall, cpu=cpu, mem_mb=mem, exact_peak=exact, stats=stats.shape[1],
                sample=sample, version=vbt.__version__)  # fmt: skip


CHILDREN = {"ours": child_ours, "vectorbt": child_vectorbt, "run": child_run}


# ----------------------------------------------------------------------------------------- parent


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--bars", type=int, default=2500)
    ap.add_argument("--fast", type=_ints, default=FAST, help="comma-separated fast windows")
    ap.add_argument("--slow", type=_ints, default=SLOW, help="comma-separated slow windows")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=3, help="timed grid runs of ours (median reported)")
    ap.add_argument("--engines", default="ours,vectorbt,run")
    ap.add_argument("--vbt-chunk", type=int, default=25, help="symbols per vectorbt call")
    ap.add_argument("--vbt-symbols", type=int, default=0, help="run vectorbt on the first N symbols only")
    ap.add_argument("--run-symbols", type=int, default=20, help="run the run() loop on the first N symbols")
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        index, open_, close = make_data(args.symbols, args.bars, args.seed)
        out = CHILDREN[args.child](args, index, open_, close)
        json.dump(out, sys.stdout)
        return 0

    engines = [e for e in args.engines.split(",") if e]
    n_combos = sum(1 for f in args.fast for s in args.slow if s > f)
    print(
        f"grid: {args.symbols} symbols x {args.bars} bars x {n_combos} SMA combinations "
        f"= {args.symbols * n_combos:,} backtests (seed {args.seed})"
    )
    results = {}
    for eng in engines:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", eng, *(argv or sys.argv[1:])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{eng}: FAILED\n{proc.stderr[-3000:]}")
            continue
        results[eng] = json.loads(proc.stdout)

    print(
        f"{'engine':<10}{'backtests':>11}{'wall s':>9}{'CPU s':>9}{'backtests/s':>13}{'per CPU-s':>11}"
        f"{'peak MB':>10}{'stats':>7}"
    )
    for eng, r in results.items():
        note = f" (vectorbt {r['version']})" if "version" in r else ""
        print(
            f"{eng:<10}{r['n']:>11,}{r['seconds']:>9.2f}{r['cpu']:>9.2f}{r['n'] / r['seconds']:>13,.0f}"
            f"{r['n'] / r['cpu']:>11,.0f}{r['mem_mb']:>10.1f}{r['stats']:>7}{note}"
        )

    ours = results.get("ours")
    ok = True
    if ours:
        for eng, r in results.items():
            if eng == "ours":
                continue
            keys = sorted(set(r["sample"]) & set(ours["sample"]))
            rng = np.random.default_rng(0)
            pick = (
                [keys[i] for i in rng.choice(len(keys), size=min(500, len(keys)), replace=False)]
                if keys
                else []
            )
            diff = max((abs(r["sample"][k] - ours["sample"][k]) for k in pick), default=float("nan"))
            same = bool(pick) and diff < 1e-9
            ok &= same
            speed = (ours["n"] / ours["seconds"]) / (r["n"] / r["seconds"])
            speed_cpu = (ours["n"] / ours["cpu"]) / (r["n"] / r["cpu"])
            mem = r["mem_mb"] / ours["mem_mb"] if ours["mem_mb"] > 0 else float("inf")
            print(
                f"ours vs {eng}: total_return equal on {len(pick)} sampled backtests: {same} "
                f"(max abs diff {diff:.2e}); throughput x{speed:,.0f} wall, x{speed_cpu:,.0f} CPU; "
                f"peak memory 1/{mem:,.1f}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
