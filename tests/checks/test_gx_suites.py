"""Great Expectations suites, run for real (GX is imported once per test session)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from quant_platform.core.schema import BARS_5M, KLINES_DAILY, RAW_QUOTES

DAY = dt.date(2024, 10, 8)
OPEN_UTC = pd.Timestamp("2024-10-08 01:30", tz="UTC")


@pytest.fixture(scope="session")
def gx():
    """The suites module with GX imported and the ephemeral context built (once per session)."""
    from quant_platform.core.quality import gx_suites

    gx_suites.warm_up()
    return gx_suites


def quotes(n: int = 5, symbols=("600000.SH", "000001.SZ")) -> pd.DataFrame:
    rows = []
    for k, sym in enumerate(symbols):
        for i in range(n):
            price = 10.0 + k + 0.01 * (i % 2)
            rows.append(
                dict(
                    symbol=sym,
                    trade_date=pd.Timestamp(DAY),
                    ts=OPEN_UTC + pd.Timedelta(seconds=3 * (i + 1)),
                    price=price,
                    open=10.0 + k,
                    high=10.01 + k,
                    low=10.0 + k,
                    prev_close=9.9 + k,
                    volume=100 * (i + 1),
                    amount=1000.0 * (i + 1),
                    bid=price - 0.01,
                    ask=price + 0.01,
                )
            )
    return RAW_QUOTES.conform(pd.DataFrame(rows))


def bars_5m(n: int = 4) -> pd.DataFrame:
    rows = [
        dict(
            symbol="600000.SH",
            trade_date=pd.Timestamp(DAY),
            ts=OPEN_UTC + pd.Timedelta(minutes=5 * (i + 1)),
            open=10.0,
            high=10.2,
            low=9.9,
            close=10.1,
            volume=500,
            amount=5050.0,
            change_rate=0.01,
        )
        for i in range(n)
    ]
    return BARS_5M.conform(pd.DataFrame(rows))


def klines() -> pd.DataFrame:
    rows = [
        dict(
            symbol=s,
            trade_date=pd.Timestamp(DAY),
            open=10.0,
            high=10.6,
            low=9.8,
            close=10.5,
            prev_close=10.0,
            volume=1000,
            amount=10_300.0,
            change_rate=0.05,
            limit_up=11.0,
            limit_down=9.0,
        )
        for s in ("600000.SH", "000001.SZ")
    ]
    return KLINES_DAILY.conform(pd.DataFrame(rows))


def test_importing_the_facade_does_not_import_gx():
    code = (
        "import sys; import quant_platform.quality, quant_platform.core.quality.gx_suites; "
        "print('great_expectations' in sys.modules, 'dagster' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_clean_quotes_pass(gx):
    frame = quotes()
    result = gx.validate_frame("raw_quotes", frame, DAY)
    pd.testing.assert_frame_equal(frame, quotes())  # validation does not touch the frame
    assert result.success, result.markdown()
    assert result.failed == []
    names = [r.name for r in result.results]
    expected_names = [
        "columns_present",
        "type.ts",
        "not_null.symbol",
        "unique.symbol+ts",
        "positive_finite.price",
        "nonneg.volume",
        "ohlc.high>=low",
        "ohlc.high>=price",
        "ohlc.price>=low",
        "trade_date.partition",
        "session.1",
        "session.2",
    ]
    for expected in expected_names:
        assert expected in names
    assert result.unexpected_counts["unique.symbol+ts"] == 0


def test_quote_failures_are_counted_per_expectation(gx):
    q = quotes()
    q.loc[0, "price"] = np.inf
    q.loc[1, "price"] = np.nan
    q.loc[2, "high"] = 9.0  # below low, open and price
    q.loc[3, "volume"] = -1
    q.loc[5, "ts"] = pd.Timestamp("2024-10-08 04:00", tz="UTC")  # lunch break
    q.loc[6, "ts"] = pd.Timestamp("2024-10-08 01:00", tz="UTC")  # before the open
    q.loc[7, "trade_date"] = pd.Timestamp("2024-10-09")
    q = pd.concat([q, q.iloc[[8]]], ignore_index=True)
    result = gx.validate_frame("quotes", q, DAY)
    assert not result.success
    assert result.metadata["unexpected"] == {
        "unique.symbol+ts": 2,
        "not_null.price": 1,
        "positive_finite.price": 1,
        "nonneg.volume": 1,
        "ohlc.high>=low": 1,
        "ohlc.high>=open": 1,
        "ohlc.high>=price": 2,  # the inf price too
        "trade_date.partition": 1,
        "session.1": 1,
        "session.2": 1,
    }
    assert result["session.2"].examples == ("2024-10-08 04:00:00+00:00",)
    assert result["ohlc.high>=low"].examples == ("(9.0, 10.0)",)
    json.dumps(result.metadata)  # Dagster metadata must be JSON-friendly
    assert "| session.2 | **no** | 1 |" in result.markdown()


def test_types_and_missing_columns(gx):
    q = quotes().astype({"price": object})
    q.loc[0, "price"] = "abc"
    typed = gx.validate_frame("raw_quotes", q, DAY)
    assert typed.failed == ["type.price", "positive_finite.price", "ohlc.high>=price", "ohlc.price>=low"]
    assert typed["type.price"].examples[0] == "abc"
    assert "same type" in typed["positive_finite.price"].exception  # GX cannot compare text with numbers
    missing = gx.validate_frame("raw_quotes", quotes().drop(columns=["bid", "amount"]), DAY)
    assert missing.failed == ["columns_present"]
    assert "type.bid" not in [r.name for r in missing.results]  # left out, not errored
    assert all(r.exception is None for r in missing.results)
    naive = quotes()
    naive["ts"] = naive["ts"].dt.tz_localize(None)
    assert "type.ts" in gx.validate_frame("raw_quotes", naive, DAY).failed


def test_bars_are_right_closed(gx):
    ok = gx.validate_frame("bars_5m", bars_5m(), DAY)
    assert ok.success, ok.markdown()
    b = bars_5m()
    b.loc[0, "ts"] = OPEN_UTC  # a bar ending at the open covers pre-open time
    b.loc[1, "close"] = 10.5  # above high
    result = gx.validate_frame("bars", b, DAY, freq="5m")
    assert set(result.failed) == {"ohlc.high>=close", "session.1"}
    assert result["session.1"].unexpected_count == 1 and result["ohlc.high>=close"].unexpected_count == 1


def test_klines_suite(gx):
    k = klines()
    assert gx.validate_frame("klines_daily", k, DAY).success
    assert gx.validate_frame("klines", k, None).trade_date == DAY  # inferred from the frame
    k.loc[0, "high"] = 11.5  # above limit-up
    k.loc[1, "low"] = 8.5
    result = gx.validate_frame("klines", k, DAY)
    assert set(result.failed) == {"limit.high<=limit_up", "limit.low>=limit_down"}
    holiday = gx.validate_frame("klines", klines(), "2024-10-01")
    assert set(holiday.failed) == {"trade_date.partition", "session.trading_day"}


def test_empty_frame_and_cached_suites(gx):
    assert gx.validate_frame("raw_quotes", RAW_QUOTES.empty(), DAY).success
    a = gx.build_suite("raw_quotes", DAY, columns=RAW_QUOTES.names)
    b = gx.build_suite("quotes", "2024-10-08", columns=tuple(RAW_QUOTES.names))
    assert a is b
    with pytest.raises(ValueError, match="unknown table kind"):
        gx.validate_frame("ticks", quotes(), DAY)


def test_100k_rows_validate_quickly(gx):
    n_sym, per = 50, 2000
    ts = OPEN_UTC + pd.to_timedelta(np.arange(per) * 3 + 3, unit="s")
    price = 10 + (np.arange(per) % 5) * 0.01
    frame = pd.DataFrame(
        {
            "symbol": np.repeat([f"{600000 + i}.SH" for i in range(n_sym)], per),
            "trade_date": pd.Timestamp(DAY),
            "ts": np.tile(ts, n_sym),
            "price": np.tile(price, n_sym),
            "open": 10.0,
            "high": 10.04,
            "low": 10.0,
            "prev_close": 10.0,
            "volume": np.tile(np.arange(per) * 100, n_sym),
            "amount": np.tile(np.arange(per) * 1000.0, n_sym),
            "bid": 9.99,
            "ask": 10.05,
        }
    )
    frame = RAW_QUOTES.conform(frame)
    assert len(frame) == 100_000
    start = time.perf_counter()
    result = gx.validate_frame("raw_quotes", frame, DAY)
    elapsed = time.perf_counter() - start
    assert result.success, result.markdown()
    assert elapsed < 15, elapsed
