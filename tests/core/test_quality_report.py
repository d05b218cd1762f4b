"""QA report metrics on small hand-made partitions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from quant_platform import quality
from quant_platform.core.schema import BARS_1M, KLINES_DAILY, QA_METRICS, RAW_QUOTES

DAY = dt.date(2024, 10, 8)
AM_OPEN = pd.Timestamp("2024-10-08 01:30", tz="UTC")
PM_OPEN = pd.Timestamp("2024-10-08 05:00", tz="UTC")


def full_day_bars(symbols=("600000.SH", "000001.SZ"), freq_minutes: int = 15) -> pd.DataFrame:
    """Every bar of the day (16 x 15m) per symbol, prices gently alternating."""
    step = pd.Timedelta(minutes=freq_minutes)
    ends = [AM_OPEN + step * (i + 1) for i in range(120 // freq_minutes)]
    ends += [PM_OPEN + step * (i + 1) for i in range(120 // freq_minutes)]
    rows = []
    for k, sym in enumerate(symbols):
        prev = 10.0 + k
        for i, ts in enumerate(ends):
            close = round(prev * (1 + 0.001 * ((-1) ** i) * (1 + i % 3)), 2)
            rows.append(
                {
                    "symbol": sym,
                    "trade_date": pd.Timestamp(DAY),
                    "ts": ts,
                    "open": prev,
                    "high": max(prev, close),
                    "low": min(prev, close),
                    "close": close,
                    "volume": 1000,
                    "amount": 1000 * close,
                    "change_rate": close / prev - 1,
                }
            )
            prev = close
    return pd.DataFrame(rows)


def quotes_every_minute(symbols=("600000.SH", "000001.SZ"), prices=None) -> pd.DataFrame:
    """One snapshot per trading minute (240 per symbol); `prices` overrides a symbol's price path."""
    times = [AM_OPEN + pd.Timedelta(minutes=i + 1) for i in range(120)]
    times += [PM_OPEN + pd.Timedelta(minutes=i + 1) for i in range(120)]
    rows = []
    for k, sym in enumerate(symbols):
        path = (prices or {}).get(sym) or [round(10 + k + 0.01 * (i % 7), 2) for i in range(len(times))]
        for i, (ts, px) in enumerate(zip(times, path, strict=True)):
            rows.append(
                {
                    "symbol": sym,
                    "trade_date": pd.Timestamp(DAY),
                    "ts": ts,
                    "price": px,
                    "open": path[0],
                    "high": max(path[: i + 1]),
                    "low": min(path[: i + 1]),
                    "prev_close": 10.0 + k,
                    "volume": 100 * (i + 1),
                    "amount": 1000.0 * (i + 1),
                    "bid": px - 0.01,
                    "ask": px + 0.01,
                }
            )
    return RAW_QUOTES.conform(pd.DataFrame(rows))


def metric(frame: pd.DataFrame, name: str) -> float:
    values = frame.loc[frame["metric"] == name, "value"]
    assert len(values) == 1, f"{name}: {list(frame['metric'])}"
    return float(values.iloc[0])


def test_robust_zscore():
    z = quality.robust_zscore([1.0, 2.0, 3.0, 4.0, 100.0])
    assert z[2] == 0.0
    assert z[4] == pytest.approx(0.6745 * 97 / 1.0, rel=1e-3)  # MAD of [2,1,0,1,97] is 1
    flat = quality.robust_zscore([0.0, 0.0, 0.0, 0.0, 0.05])  # MAD 0: mean-AD fallback
    assert flat[:4].tolist() == [0.0] * 4 and flat[4] > 3
    assert quality.robust_zscore([2.0, 2.0, np.nan]).tolist()[:2] == [0.0, 0.0]


def test_partition_metrics_are_tidy_qa_metrics():
    bars = BARS_1M.conform(full_day_bars(freq_minutes=1))
    m = quality.partition_metrics(bars, "bars_1m", trade_date=DAY, universe=["600000.SH", "000001.SZ"])
    assert list(m.columns) == QA_METRICS.names
    assert m.dtypes.astype(str).tolist() == ["datetime64[s]", "str", "str", "float64"]
    assert set(m["table_name"]) == {"bars_1m"} and set(m["trade_date"]) == {pd.Timestamp(DAY)}
    assert metric(m, "rows") == 480 and metric(m, "completeness_min") == 1.0
    assert metric(m, "calendar_gaps") == 0 and metric(m, "duplicates") == 0
    assert not m["metric"].duplicated().any()


def test_completeness_per_symbol_and_missing_symbols():
    bars = full_day_bars(freq_minutes=15)
    holed = bars.drop(index=[3, 4, 5, 6])  # four 15m bars of 600000.SH
    comp = quality.completeness_by_symbol(
        holed, "bars_15m", trade_date=DAY, universe=["600000.SH", "000001.SZ", "600004.SH"]
    )
    got = comp.set_index("symbol")
    assert got.loc["600000.SH", ["present", "expected", "completeness"]].tolist() == [12, 16, 0.75]
    assert got.loc["000001.SZ", "completeness"] == 1.0
    assert got.loc["600004.SH", "present"] == 0 and got.loc["600004.SH", "completeness"] == 0.0
    m = quality.partition_metrics(
        holed,
        "bars",
        freq="15m",
        trade_date=DAY,
        universe=["600000.SH", "000001.SZ", "600004.SH"],
        per_symbol=True,
    )
    assert metric(m, "symbols_missing") == 1
    assert metric(m, "symbols_incomplete") == 2
    assert metric(m, "completeness_mean") == pytest.approx((0.75 + 1 + 0) / 3)
    assert metric(m, "completeness[600000.SH]") == 0.75


def test_quote_completeness_uses_the_snapshot_interval():
    q = quotes_every_minute()
    comp = quality.completeness_by_symbol(q.iloc[:-40], "quotes", trade_date=DAY)  # inferred: 60 s
    assert comp["expected"].tolist() == [240, 240]
    assert comp.set_index("symbol")["completeness"].to_dict() == {"000001.SZ": 200 / 240, "600000.SH": 1.0}
    thirty = quality.completeness_by_symbol(q, "quotes", trade_date=DAY, snapshot_seconds=30)
    assert thirty["completeness"].tolist() == [0.5, 0.5]


def test_duplicates_and_quarantined_by_reason():
    q = quotes_every_minute()
    bad = q.copy()
    bad.loc[0, "price"] = -1.0
    bad.loc[1, "price"] = np.nan
    bad.loc[2, "high"] = 0.5
    split = quality.split_quotes(pd.concat([bad, bad.iloc[[10]]]), trade_date=DAY)
    m = quality.partition_metrics(split.clean, "raw_quotes", trade_date=DAY, quarantined=split.quarantined)
    assert metric(m, "quarantined_rows") == 4
    assert metric(m, "quarantined.duplicate") == 1
    assert metric(m, "quarantined.missing_value") == 1
    assert metric(m, "quarantined.non_positive_price") == 1
    assert metric(m, "quarantined.high_lt_low") == 1
    assert metric(m, "quarantined_share") == pytest.approx(4 / 481)
    raw = quality.partition_metrics(pd.concat([q, q.iloc[[5, 6]]]), "raw_quotes", trade_date=DAY)
    assert metric(raw, "duplicates") == 2


def test_return_outliers_klines_cross_section():
    rows = []
    for i in range(20):
        prev = 10.0
        change = 0.001 * (i % 5 - 2) if i != 7 else 0.095
        close = prev * (1 + change)
        rows.append(
            dict(
                symbol=f"{600000 + i}.SH",
                trade_date=pd.Timestamp(DAY),
                open=prev,
                high=max(prev, close),
                low=min(prev, close),
                close=close,
                prev_close=prev,
                volume=1,
                amount=1.0,
                change_rate=change,
                limit_up=11.0,
                limit_down=9.0,
            )
        )
    k = KLINES_DAILY.conform(pd.DataFrame(rows))
    out = quality.return_outliers(k, "klines", z=5.0)
    assert out["symbol"].tolist() == ["600007.SH"]
    m = quality.partition_metrics(k, "klines_daily", trade_date=DAY)
    assert metric(m, "return_outliers") == 1 and metric(m, "return_outlier_max_abs_z") > 5
    assert "stale_runs" not in set(m["metric"])  # intraday-only metrics are not written for klines


def test_return_outliers_quotes_use_last_price_vs_prev_close():
    symbols = [f"{600000 + i}.SH" for i in range(10)]
    q = quotes_every_minute(symbols)
    last = q.groupby("symbol")["ts"].transform("max") == q["ts"]
    q.loc[last & (q["symbol"] == "600003.SH"), "price"] = 13.0 * 1.09
    out = quality.return_outliers(q, "raw_quotes")
    assert out["symbol"].tolist() == ["600003.SH"]


def test_stale_prices():
    q = quotes_every_minute(prices={"600000.SH": [10.0] * 30 + [10.01 + 0.01 * (i % 2) for i in range(210)]})
    runs = quality.stale_runs(q, "raw_quotes", n=20)
    assert runs[["symbol", "length", "price"]].values.tolist() == [["600000.SH", 30, 10.0]]
    assert runs.loc[0, "start"] == AM_OPEN + pd.Timedelta(minutes=1)
    m = quality.partition_metrics(q, "raw_quotes", trade_date=DAY, stale_n=20)
    assert (metric(m, "stale_runs"), metric(m, "stale_symbols"), metric(m, "stale_max_run")) == (1, 1, 30)


def test_calendar_gaps_ignore_the_lunch_break():
    bars = full_day_bars(freq_minutes=15)
    gaps = quality.calendar_gaps(bars, "bars_15m", trade_date=DAY)
    assert gaps.empty  # 11:30 -> 13:15 is one bar apart in trading time
    holed = bars.drop(index=[5, 6])  # 600000.SH loses 11:00 and 11:15 (UTC 03:00, 03:15)
    gaps = quality.calendar_gaps(holed, "bars_15m", trade_date=DAY)
    assert gaps[["symbol", "seconds"]].values.tolist() == [["600000.SH", 45 * 60.0]]
    assert gaps.loc[0, "after"] == pd.Timestamp("2024-10-08 02:45", tz="UTC")
    late = bars[~((bars["symbol"] == "000001.SZ") & (bars["ts"] <= AM_OPEN + pd.Timedelta(minutes=30)))]
    gap = quality.calendar_gaps(late, "bars_15m", trade_date=DAY)
    assert gap["after"].isna().all() and gap["seconds"].tolist() == [45 * 60.0]  # hole at the open
    m = quality.partition_metrics(holed, "bars_15m", trade_date=DAY)
    assert metric(m, "calendar_gaps") == 1 and metric(m, "calendar_gap_max_seconds") == 2700


def test_kline_calendar_gaps_across_partitions():
    days = [dt.date(2024, 9, 27), dt.date(2024, 9, 30), dt.date(2024, 10, 8)]
    rows = [dict(symbol=s, trade_date=pd.Timestamp(d)) for d in days for s in ("600000.SH", "000001.SZ")]
    k = pd.DataFrame(rows).drop(index=3)  # 000001.SZ missing on 09-30 but present before and after
    gaps = quality.kline_calendar_gaps(k, start="2024-09-27", end="2024-10-08")
    assert list(gaps.columns) == QA_METRICS.names
    assert dict(zip(gaps["trade_date"].dt.date, gaps["value"], strict=True)) == {
        days[0]: 0.0,
        days[1]: 1.0,
        days[2]: 0.0,
    }


def test_empty_partition_metrics():
    m = quality.partition_metrics(RAW_QUOTES.empty(), "raw_quotes", trade_date=DAY, universe=["600000.SH"])
    assert metric(m, "rows") == 0 and metric(m, "symbols_missing") == 1
    assert metric(m, "completeness_min") == 0.0


def test_markdown_summary_and_trend():
    bars = full_day_bars(freq_minutes=15)
    day1 = quality.partition_metrics(bars, "bars_15m", trade_date=DAY)
    day2 = quality.partition_metrics(bars.iloc[:-3], "bars_15m", trade_date=DAY).assign(
        trade_date=pd.Timestamp("2024-10-09")
    )
    metrics = pd.concat([day1, day2], ignore_index=True)
    md = quality.summary_markdown(metrics)
    lines = md.splitlines()
    assert lines[0] == "| metric | bars_15m 2024-10-08 | bars_15m 2024-10-09 |"
    assert "| rows | 32 | 29 |" in lines
    trend = quality.qa_trend(metrics, metric_names=["rows", "completeness_min"])
    assert list(trend.columns) == ["rows", "completeness_min"]
    assert trend["rows"].tolist() == [32.0, 29.0]
    tmd = quality.trend_markdown(trend)
    assert tmd.splitlines()[2] == "| 2024-10-08 | 32 | 1 |"
    assert quality.summary_markdown(QA_METRICS.empty()) == "_no QA metrics_"


def test_plots_return_png_bytes():
    bars = full_day_bars(freq_minutes=15)
    metrics = pd.concat(
        [
            quality.partition_metrics(bars, "bars_15m", trade_date=DAY),
            quality.partition_metrics(bars, "bars_15m", trade_date=DAY).assign(
                trade_date=pd.Timestamp("2024-10-09")
            ),
        ]
    )
    metrics = pd.concat(
        [
            metrics,
            pd.DataFrame(
                {
                    "trade_date": [pd.Timestamp(DAY)],
                    "table_name": ["bars_15m"],
                    "metric": ["quarantined.duplicate"],
                    "value": [3.0],
                }
            ),
        ]
    )
    png_signature = b"\x89PNG\r\n\x1a\n"
    assert quality.plot_trend(quality.qa_trend(metrics, metric_names=["rows"])).startswith(png_signature)
    comp = quality.completeness_by_symbol(bars, "bars_15m", trade_date=DAY)
    assert quality.plot_completeness(comp).startswith(png_signature)
    assert quality.plot_quarantine(metrics).startswith(png_signature)
