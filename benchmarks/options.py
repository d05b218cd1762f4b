"""Options speed: implied vol and greeks for 1,000,000 quotes, ours vs py_vollib_vectorized (and
QuantLib on a sample), then one options partition end to end.

1. Quotes: random European options (spot 1-100, log-moneyness ~N(0, 0.25), 1 day - 2 years, vols
   5-100 %, rates -1-6 %, dividend yields 0-4 %, half calls), priced by the reference formula.
2. Accuracy first, on a 20,000-quote sample and the same quotes for every library: the largest
   error of the recovered vol where vega is not negligible (vega > 1e-4 S), and the largest greek
   difference to ours after converting conventions (py_vollib: vega and rho per 1 %, theta per day).
3. Speed (after a warm-up, which compiles our numba kernels; median of `--repeat` rounds): quotes/s
   of `implied_vol` and `greeks` on the 1,000,000 quotes, and the ratio to each peer. QuantLib
   solves one option at a time, so it is timed on `--quantlib-sample` quotes.
4. End to end, one trading day of one underlying (synthetic 510050.SH, all eight slots): the plain
   pipeline (chain, snapshots, row rules, rollup, IV/greeks, QA metrics) and the Dagster
   materialization of the options group with its checks on a temporary embedded store.

    python benchmarks/options.py [--quotes 1000000] [--repeat 3] [--quantlib-sample 20000]

Peers are optional (QuantLib: `pip install 'quant-platform[bench]'`); a missing one, or one that
does not run (py_vollib_vectorized 0.1.1 fails to compile against py_lets_be_rational 1.1), is
reported and skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quant_platform.options import greeks, implied_vol, price_and_greeks  # noqa: E402


def quotes(n: int, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    S = rng.uniform(1, 100, n)
    K = S * np.exp(rng.normal(0, 0.25, n))
    t = rng.uniform(1 / 365, 2, n)
    vol = rng.uniform(0.05, 1.0, n)
    r = rng.uniform(-0.01, 0.06, n)
    q = rng.uniform(0, 0.04, n)
    kind = np.where(rng.random(n) < 0.5, "call", "put")
    ref = price_and_greeks(S, K, t, r, vol, q, kind)
    return {"S": S, "K": K, "t": t, "vol": vol, "r": r, "q": q, "kind": kind, **ref}


def _take(d: dict, idx) -> dict:
    return {k: v[idx] for k, v in d.items()}


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ours_iv(d):
    return implied_vol(d["price"], d["S"], d["K"], d["t"], d["r"], d["q"], d["kind"])


def ours_greeks(d, vol):
    return greeks(d["S"], d["K"], d["t"], d["r"], vol, d["q"], d["kind"])


def pvv_iv(d, flags):
    import py_vollib_vectorized as pvv

    return pvv.vectorized_implied_volatility(
        d["price"],
        d["S"],
        d["K"],
        d["t"],
        d["r"],
        flags,
        q=d["q"],
        model="black_scholes_merton",
        return_as="numpy",
        on_error="ignore",
    )


def pvv_greeks(d, vol, flags):
    import py_vollib_vectorized as pvv

    g = pvv.get_all_greeks(
        flags, d["S"], d["K"], d["t"], d["r"], vol, d["q"], model="black_scholes_merton", return_as="dict"
    )
    # py_vollib's conventions: vega and rho per 1 %, theta per day
    return {
        "delta": g["delta"],
        "gamma": g["gamma"],
        "vega": g["vega"] * 100,
        "theta": g["theta"] * 365,
        "rho": g["rho"] * 100,
    }


def quantlib_iv_and_greeks(d):
    import QuantLib as ql

    today = ql.Date(8, 10, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot, rate, div, vol = ql.SimpleQuote(1.0), ql.SimpleQuote(0.0), ql.SimpleQuote(0.0), ql.SimpleQuote(0.2)
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot),
        ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(div), dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(rate), dc)),
        ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vol), dc)
        ),
    )
    engine = ql.AnalyticEuropeanEngine(process)
    n = len(d["S"])
    iv, delta = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(n):
        days = max(1, int(round(d["t"][i] * 365)))
        t = days / 365
        spot.setValue(float(d["S"][i]))
        rate.setValue(float(d["r"][i]))
        div.setValue(float(d["q"][i]))
        kind = ql.Option.Call if d["kind"][i] == "call" else ql.Option.Put
        option = ql.EuropeanOption(
            ql.PlainVanillaPayoff(kind, float(d["K"][i])), ql.EuropeanExercise(today + days)
        )
        option.setPricingEngine(engine)
        target = float(
            price_and_greeks(d["S"][i], d["K"][i], t, d["r"][i], d["vol"][i], d["q"][i], d["kind"][i])[
                "price"
            ]
        )
        try:
            iv[i] = option.impliedVolatility(target, process, 1e-12, 500, 1e-4, 8.0)
            vol.setValue(iv[i])
            delta[i] = option.delta()
        except RuntimeError:
            pass
    return iv, delta


def accuracy(d: dict, have_pvv: bool, have_ql: bool, ql_n: int) -> dict:
    out = {}
    meaningful = d["vega"] > 1e-4 * d["S"]
    iv = ours_iv(d)
    out["ours"] = float(np.nanmax(np.abs(iv - d["vol"])[meaningful]))
    out["ours_nan"] = int(np.isnan(iv[meaningful]).sum())
    g = ours_greeks(d, d["vol"])
    if have_pvv:
        flags = np.where(d["kind"] == "call", "c", "p")
        piv = pvv_iv(d, flags)
        out["pvv"] = float(np.nanmax(np.abs(piv - d["vol"])[meaningful]))
        out["pvv_nan"] = int(np.isnan(piv[meaningful]).sum())
        pg = pvv_greeks(d, d["vol"], flags)
        out["greeks_vs_pvv"] = {
            k: float(np.nanmax(np.abs(g[k] - np.asarray(pg[k])) / np.maximum(1.0, np.abs(g[k])))) for k in g
        }
    if have_ql:
        sample = _take(d, np.arange(min(ql_n, len(d["S"]))))
        sample["t"] = np.maximum(1, np.round(sample["t"] * 365)) / 365  # QuantLib counts whole days
        qiv, qdelta = quantlib_iv_and_greeks(sample)
        m = sample["vega"] > 1e-4 * sample["S"]
        out["quantlib"] = float(np.nanmax(np.abs(qiv - sample["vol"])[m]))
        ours_delta = ours_greeks(sample, sample["vol"])["delta"]
        out["delta_vs_quantlib"] = float(np.nanmax(np.abs(qdelta - ours_delta)[m]))
    return out


def end_to_end(day: dt.date) -> dict:
    from quant_platform.core.schema import OPTION_CONTRACTS
    from quant_platform.options import chain, enrich, qa, rules
    from quant_platform.options.rollup import daily_rollup
    from quant_platform.options.sources import SyntheticOptionSource

    src = SyntheticOptionSource()
    u = "510050.SH"
    timings = {}
    t0 = time.perf_counter()
    contracts = rules.split_option_contracts(src.fetch_contracts(day, u), trade_date=day).clean
    t1 = time.perf_counter()
    slots = chain.slot_times(day)
    raw = src.fetch_quotes(day, u, contracts, slots)
    t2 = time.perf_counter()
    quotes_ = rules.split_option_quotes(raw, trade_date=day, contracts=set(contracts["symbol"])).clean
    t3 = time.perf_counter()
    daily = daily_rollup(quotes_, contracts, chain.close_slot(day))
    g = enrich.compute_greeks(daily, {u: src.rates(day, u)})
    g = rules.split_option_greeks(g, trade_date=day).clean
    t4 = time.perf_counter()
    qa.day_metrics(
        day,
        u,
        contracts=contracts,
        quotes=quotes_,
        daily=daily,
        greeks=g,
        prev_greeks=g.iloc[:0],
        slots=len(slots),
        quarantined={},
    )
    t5 = time.perf_counter()
    timings.update(contracts=t1 - t0, snapshots=t2 - t1, rules=t3 - t2, rollup_greeks=t4 - t3, qa=t5 - t4)
    timings["plain_total"] = t5 - t0
    timings["rows"] = {"contracts": len(contracts), "snapshots": len(quotes_), "greeks": len(g)}
    assert len(OPTION_CONTRACTS.names)

    with tempfile.TemporaryDirectory() as home:
        os.environ["QP_HOME"] = home  # settings() reads it: the embedded stores go under it
        import dagster as dg
        from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

        from quant_platform.options.dagster import OPTIONS_ASSETS, OPTIONS_CHECKS, OptionSourceResource
        from quant_platform.resources import ClickHouseResource

        resources = {
            "clickhouse": ClickHouseResource(dsn=f"chdb://{home}/chdb"),
            "options": OptionSourceResource(),
        }
        tags = {ASSET_PARTITION_RANGE_START_TAG: str(day), ASSET_PARTITION_RANGE_END_TAG: str(day)}
        from quant_platform.core.quality.gx_suites import warm_up

        timings["gx_import"] = warm_up()
        for name, checks in (("dagster_no_checks", []), ("dagster_with_checks", OPTIONS_CHECKS)):
            t0 = time.perf_counter()
            result = dg.materialize([*OPTIONS_ASSETS, *checks], resources=resources, tags=tags)
            timings[name] = time.perf_counter() - t0
            assert result.success
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quantlib-sample", type=int, default=20_000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    # py_lets_be_rational compiles its kernels only when asked; py_vollib_vectorized's need them compiled
    os.environ.setdefault("PY_LETS_BE_RATIONAL_ENABLE_NUMBA", "1")
    try:
        import py_vollib_vectorized as pvv

        pvv.vectorized_implied_volatility(
            np.array([0.1]),
            np.array([2.5]),
            np.array([2.5]),
            np.array([0.5]),
            np.array([0.02]),
            np.array(["c"]),
            q=np.array([0.0]),
            model="black_scholes_merton",
            return_as="numpy",
        )
        have_pvv = True
    except ImportError:
        have_pvv = False
        print("py_vollib_vectorized not installed: pip install py-vollib-vectorized")
    except Exception as exc:  # noqa: BLE001 - a peer that does not run is reported, not fatal
        have_pvv = False
        print(
            f"py_vollib_vectorized does not run here, skipped: {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[-1]}"
        )
    try:
        import QuantLib  # noqa: F401

        have_ql = True
    except ImportError:
        have_ql = False
        print("QuantLib not installed: pip install 'quant-platform[bench]'")

    d = quotes(args.quotes)
    sample = _take(d, np.arange(20_000))
    acc = accuracy(sample, have_pvv, have_ql, min(2_000, args.quantlib_sample))
    print("accuracy on 20,000 quotes (max |vol error| where vega > 1e-4 S; NaN count there):")
    print(f"  ours                  {acc['ours']:.2e}  (NaN {acc['ours_nan']})")
    if have_pvv:
        print(f"  py_vollib_vectorized  {acc['pvv']:.2e}  (NaN {acc['pvv_nan']})")
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in acc["greeks_vs_pvv"].items())
        print(f"  greeks, ours vs py_vollib_vectorized (max relative): {diffs}")
    if have_ql:
        print(f"  QuantLib (2,000)      {acc['quantlib']:.2e}; delta vs ours {acc['delta_vs_quantlib']:.1e}")

    ours_iv(_take(d, np.arange(1000)))  # warm-up: numba compiles or loads its cache
    n = len(d["S"])
    t_iv = _median(lambda: ours_iv(d), args.repeat)
    vol = ours_iv(d)
    t_g = _median(lambda: ours_greeks(d, vol), args.repeat)
    print(f"\n{n:,} quotes, median of {args.repeat}:")
    print(f"  ours                  IV {n / t_iv:>12,.0f} quotes/s   greeks {n / t_g:>12,.0f} quotes/s")
    if have_pvv:
        flags = np.where(d["kind"] == "call", "c", "p")
        pvv_iv(_take(d, np.arange(1000)), flags[:1000])
        p_iv = _median(lambda: pvv_iv(d, flags), args.repeat)
        p_g = _median(lambda: pvv_greeks(d, vol, flags), args.repeat)
        print(f"  py_vollib_vectorized  IV {n / p_iv:>12,.0f} quotes/s   greeks {n / p_g:>12,.0f} quotes/s")
        print(f"  ratio (ours / py_vollib_vectorized): IV {p_iv / t_iv:.1f}x, greeks {p_g / t_g:.1f}x")
    if have_ql:
        m = args.quantlib_sample
        sample = _take(d, np.arange(m))
        t0 = time.perf_counter()
        quantlib_iv_and_greeks(sample)
        t_ql = time.perf_counter() - t0
        print(
            f"  QuantLib ({m:,}, IV + delta, one at a time) {m / t_ql:,.0f} quotes/s; ours is "
            f"{(m / (t_iv / n * m + t_g / n * m)) / (m / t_ql):.0f}x"
        )

    print("\none trading day, 510050.SH, all slots (2024-10-08):")
    e2e = end_to_end(dt.date(2024, 10, 8))
    print(
        f"  plain pipeline {e2e['plain_total'] * 1000:.0f} ms ({e2e['rows']}): "
        + ", ".join(
            f"{k} {e2e[k] * 1000:.0f} ms" for k in ("contracts", "snapshots", "rules", "rollup_greeks", "qa")
        )
    )
    print(
        f"  Dagster materialization of the options group on chdb: {e2e['dagster_no_checks']:.1f} s "
        f"without checks, {e2e['dagster_with_checks']:.1f} s with the four blocking checks "
        f"(GX import {e2e['gx_import']:.1f} s paid once before)"
    )


if __name__ == "__main__":
    main()
