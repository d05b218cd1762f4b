"""AKShare source against recorded-shape payloads (no network, no akshare package needed)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_platform.core.rollups import daily_klines
from quant_platform.core.schema import KLINES_DAILY, QUARANTINE, RAW_QUOTES
from quant_platform.sources.akshare import AkshareSource, LazyAkshare, missing_ranges
from quant_platform.sources.base import MarketSource
from quant_platform.sources.ratelimit import SourceUnavailable, TokenBucket, call_with_retry
from quant_platform.sources.vendor_columns import (
    VendorPayloadError,
    klines_from_akshare_hist,
    normalise_symbol,
    quotes_from_akshare_spot,
)

FIXTURES = Path(__file__).parent / "fixtures"
D = dt.date


def load(name: str) -> pd.DataFrame:
    """A recorded payload with AKShare's column names and dtypes (日期 holds datetime.date objects)."""
    rec = json.loads((FIXTURES / f"{name}.json").read_text())
    df = pd.DataFrame(rec["data"], columns=rec["columns"])
    for col, dtype in rec["dtypes"].items():
        if dtype == "date":
            df[col] = pd.to_datetime(df[col]).dt.date
        elif dtype == "object":
            df[col] = df[col].astype(object)
        else:
            df[col] = df[col].astype(dtype)
    return df


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeAkshare:
    """Answers like AKShare from the fixtures; records every call; can fail the first N calls."""

    def __init__(self, clock: FakeClock | None = None, fail_first: int = 0, error: Exception | None = None):
        self.hist = {code: load(f"stock_zh_a_hist_{code}") for code in ("600000", "300750")}
        self.hist["000001"] = load("stock_zh_a_hist_000001_malformed")
        self.spot = load("stock_zh_a_spot_em")
        self.calls: list[tuple] = []
        self.call_times: list[float] = []
        self.clock = clock
        self.fail_first = fail_first
        self.error = error or ConnectionError("Connection aborted: RemoteDisconnected")

    def _maybe_fail(self) -> None:
        if self.clock is not None:
            self.call_times.append(self.clock())
        if self.fail_first > 0:
            self.fail_first -= 1
            raise self.error

    def stock_zh_a_hist(self, symbol, period, start_date, end_date, adjust):
        self.calls.append(("hist", symbol, start_date, end_date, adjust))
        self._maybe_fail()
        df = self.hist.get(symbol, self.hist["600000"].iloc[0:0])
        days = pd.to_datetime(df["日期"].astype(str), errors="coerce")
        keep = days.isna() | ((days >= pd.Timestamp(start_date)) & (days <= pd.Timestamp(end_date)))
        return df[keep].reset_index(drop=True)

    def stock_zh_a_spot_em(self):
        self.calls.append(("spot",))
        self._maybe_fail()
        return self.spot.copy()


def source(fake: FakeAkshare, clock: FakeClock | None = None, **kw) -> AkshareSource:
    clock = clock or FakeClock()
    return AkshareSource(fake, clock=clock, sleep=clock.sleep, calls_per_second=kw.pop("rate", 1000.0), **kw)


# ------------------------------------------------------------------------------ vendor mapping


@pytest.mark.parametrize(
    ("raw", "ours"),
    [
        ("600000", "600000.SH"),
        (600000, "600000.SH"),
        (1, "000001.SZ"),
        ("sh600000", "600000.SH"),
        ("SZ.000001", "000001.SZ"),
        ("600000.XSHG", "600000.SH"),
        ("300750", "300750.SZ"),
        ("688981", "688981.SH"),
        ("830799", "830799.BJ"),
        ("920001", "920001.BJ"),
    ],
)
def test_symbols_are_normalised(raw, ours):
    assert normalise_symbol(raw) == ours


def test_hist_payload_maps_to_klines_with_lots_converted_to_shares():
    raw = load("stock_zh_a_hist_600000")
    assert raw["日期"].dtype == object and isinstance(raw["日期"].iloc[0], dt.date)
    klines, rejected = klines_from_akshare_hist(raw, "600000")
    assert rejected.empty
    assert list(klines.columns) == KLINES_DAILY.names and KLINES_DAILY.conform(klines).equals(klines)
    first = klines.iloc[0]
    assert first["symbol"] == "600000.SH" and first["trade_date"] == pd.Timestamp("2024-10-08")
    assert first["volume"] == raw["成交量"].iloc[0] * 100
    assert first["prev_close"] == pytest.approx(raw["收盘"].iloc[0] - raw["涨跌额"].iloc[0])
    assert first["change_rate"] == pytest.approx(first["close"] / first["prev_close"] - 1)
    assert first["limit_up"] == pytest.approx(round(first["prev_close"] * 1.1, 2))


def test_hist_payload_without_change_column_uses_previous_close():
    raw = load("stock_zh_a_hist_300750").drop(columns=["涨跌额"])
    klines, _ = klines_from_akshare_hist(raw, "300750.SZ")
    assert np.isnan(klines["prev_close"].iloc[0])
    assert klines["prev_close"].iloc[1] == klines["close"].iloc[0]
    assert klines["limit_up"].iloc[1] == pytest.approx(round(klines["close"].iloc[0] * 1.2, 2))  # ChiNext


def test_malformed_hist_rows_are_returned_with_reasons_not_dropped_silently():
    raw = load("stock_zh_a_hist_000001_malformed")
    klines, rejected = klines_from_akshare_hist(raw, "000001")
    assert len(klines) + len(rejected) == len(raw) == 4
    assert list(rejected.columns) == QUARANTINE.names
    reasons = " | ".join(rejected["reason"])
    assert "开盘='--' is not a number" in reasons and "日期='2024-13-45' is not a date" in reasons
    assert set(rejected["symbol"]) == {"000001.SZ"} and (rejected["table_name"] == "klines_daily").all()
    assert json.loads(rejected["payload"].iloc[0])["开盘"] == "--"


def test_missing_columns_and_empty_payloads():
    raw = load("stock_zh_a_hist_600000").drop(columns=["收盘", "成交量"])
    with pytest.raises(VendorPayloadError, match=r"lacks columns \['收盘', '成交量'\]"):
        klines_from_akshare_hist(raw, "600000")
    empty, rejected = klines_from_akshare_hist(load("stock_zh_a_hist_600000").iloc[0:0], "600000")
    assert empty.empty and rejected.empty and list(empty.columns) == KLINES_DAILY.names
    with pytest.raises(VendorPayloadError, match="empty payload"):
        quotes_from_akshare_spot(
            load("stock_zh_a_spot_em").iloc[0:0], ts=pd.Timestamp.now(tz="UTC"), trade_date=D(2024, 10, 8)
        )
    with pytest.raises(VendorPayloadError, match="expected a DataFrame"):
        klines_from_akshare_hist(None, "600000")


def test_spot_payload_maps_to_quotes_and_reports_suspended_and_bad_rows():
    raw = load("stock_zh_a_spot_em")
    raw["最新价"] = raw["最新价"].astype(object)
    raw.loc[6, "最新价"] = "停牌?"  # a string where a number belongs
    ts = pd.Timestamp("2024-10-08 02:00", tz="UTC")
    quotes, rejected = quotes_from_akshare_spot(raw, ts=ts, trade_date=D(2024, 10, 8))
    assert list(quotes.columns) == RAW_QUOTES.names and RAW_QUOTES.conform(quotes).equals(quotes)
    assert quotes["symbol"].tolist() == ["600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "830799.BJ"]
    assert (quotes["ts"] == ts).all() and quotes["bid"].isna().all()
    assert quotes.loc[0, "volume"] == 123456700 and quotes.loc[0, "prev_close"] == 9.10
    assert dict(zip(rejected["symbol"], rejected["rule"], strict=True)) == {
        "002594.SZ": "vendor_payload",
        "600001.SH": "no_trade",
    }


# ------------------------------------------------------------------------------ rate limit / retry


def test_token_bucket_spaces_calls_on_a_fake_clock():
    clock = FakeClock()
    bucket = TokenBucket(rate=4.0, capacity=2, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(6):
        bucket.acquire()
        times.append(clock.now - 1000.0)
    assert times == pytest.approx([0, 0, 0.25, 0.5, 0.75, 1.0])  # burst of 2, then 4/s
    clock.now += 10  # idle: the bucket refills up to its capacity only
    bucket.acquire(), bucket.acquire()
    before = clock.now
    bucket.acquire()
    assert clock.now - before == pytest.approx(0.25)


def test_source_calls_are_rate_limited():
    clock = FakeClock()
    fake = FakeAkshare(clock)
    src = source(fake, clock, rate=2.0)
    src.fetch_daily_range("2024-10-08", "2024-10-10", ["600000.SH", "300750.SZ", "000001.SZ"])
    gaps = np.diff(fake.call_times)
    assert len(fake.call_times) == 3 and gaps == pytest.approx([0.5, 0.5])


def test_transient_errors_are_retried_with_backoff_then_succeed():
    clock = FakeClock()
    fake = FakeAkshare(clock, fail_first=2)
    src = source(fake, clock, backoff_initial=0.5)
    bars = src.fetch_daily_bars(D(2024, 10, 8), ["600000.SH"])
    assert len(bars) == 1 and len(fake.calls) == 3
    waits = clock.sleeps
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 1.5  # 0.5*2^n + jitter


def test_retry_exhaustion_raises_a_clear_error():
    clock = FakeClock()
    fake = FakeAkshare(clock, fail_first=10, error=TimeoutError("read timed out"))
    src = source(fake, clock, max_attempts=3)
    with pytest.raises(SourceUnavailable) as err:
        src.fetch_daily_bars(D(2024, 10, 8), ["600000.SH"])
    text = str(err.value)
    assert "stock_zh_a_hist(symbol='600000'" in text and "3 attempts" in text and "read timed out" in text
    assert len(fake.calls) == 3


def test_non_transient_errors_are_not_retried():
    calls = []

    def broken():
        calls.append(1)
        raise KeyError("data")

    with pytest.raises(KeyError):
        call_with_retry(broken, what="x", attempts=5, sleep=lambda s: None)
    assert len(calls) == 1


# ------------------------------------------------------------------------------ incremental fetch


def test_missing_ranges_merge_runs_across_weekends():
    days = [D(2024, 10, d) for d in (8, 9, 10, 11, 14, 15)]
    have = {("A", D(2024, 10, 10))} | {("B", d) for d in days}
    assert missing_ranges(["A", "B"], days, have) == {
        "A": [(D(2024, 10, 8), D(2024, 10, 9)), (D(2024, 10, 11), D(2024, 10, 15))]
    }


def test_incremental_fetch_asks_only_for_missing_ranges():
    fake = FakeAkshare()
    stored_days = {D(2024, 10, 10), D(2024, 10, 11)}
    full = klines_from_akshare_hist(load("stock_zh_a_hist_600000"), "600000")[0]
    stored = full[
        pd.DatetimeIndex(full["trade_date"]).map(lambda t: t.date() in stored_days).to_numpy(dtype=bool)
    ]
    asked = []

    def known(symbols, start, end):
        asked.append((tuple(symbols), start, end))
        return stored[stored["symbol"].isin(symbols)]

    src = source(fake, known_klines=known)
    result = src.fetch_daily_range("2024-10-08", "2024-10-16", ["600000.SH", "300750.SZ"])
    hist_calls = sorted(c[1:4] for c in fake.calls)
    assert hist_calls == [
        ("300750", "20241008", "20241016"),  # nothing stored: one call for the whole range
        ("600000", "20241008", "20241009"),  # before the stored days
        ("600000", "20241014", "20241016"),  # after them (the weekend is not a gap)
    ]
    assert asked == [(("600000.SH", "300750.SZ"), D(2024, 10, 8), D(2024, 10, 16))]
    data = result.data
    assert len(data) == 2 * 7 and result.rejected.empty
    assert data.duplicated(["symbol", "trade_date"]).sum() == 0
    pd.testing.assert_frame_equal(
        data[data["symbol"] == "600000.SH"].reset_index(drop=True),
        full[(full["trade_date"] <= "2024-10-16")].reset_index(drop=True),
    )
    # Asking again (or for a sub-range) makes no new vendor call: the source remembers what it fetched.
    fake.calls.clear()
    again = src.fetch_daily_range("2024-10-09", "2024-10-15", ["600000.SH", "300750.SZ"])
    assert fake.calls == [] and len(again.data) == 2 * 5


def test_suspended_days_are_not_refetched():
    fake = FakeAkshare()
    src = source(fake)
    src.fetch_daily_range("2024-10-21", "2024-10-22", ["600000.SH"])  # the vendor has no rows there
    src.fetch_daily_range("2024-10-21", "2024-10-22", ["600000.SH"])
    assert len(fake.calls) == 1


def test_adjust_is_passed_through_and_validated():
    fake = FakeAkshare()
    source(fake, adjust="qfq").fetch_daily_bars(D(2024, 10, 8), ["600000.SH"])
    assert fake.calls[0][-1] == "qfq"
    with pytest.raises(ValueError, match="adjust must be one of"):
        AkshareSource(fake, adjust="forward")


# ------------------------------------------------------------------------------ MarketSource


def test_spot_serves_a_batch_with_one_call():
    fake = FakeAkshare()
    now = pd.Timestamp("2024-10-08 02:15", tz="UTC")  # 10:15 Shanghai, morning session
    src = source(fake, now=lambda: now)
    assert isinstance(src, MarketSource)
    symbols = ["600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "600001.SH"]
    quotes = src.fetch_quotes(D(2024, 10, 8), symbols)
    assert fake.calls == [("spot",)]
    assert sorted(quotes["symbol"]) == sorted(symbols[:4]) and (quotes["ts"] == now).all()
    rejected = src.take_rejected()
    assert rejected["symbol"].tolist() == ["600001.SH"] and rejected["rule"].tolist() == ["no_trade"]
    assert src.take_rejected().empty
    assert len(src.universe(D(2024, 10, 8))) == 7  # reuses the same spot payload
    assert fake.calls == [("spot",)]


def test_spot_after_the_close_is_stamped_at_the_close_and_before_the_open_is_empty():
    fake = FakeAkshare()
    evening = pd.Timestamp("2024-10-08 12:00", tz="UTC")  # 20:00 Shanghai
    quotes = source(fake, now=lambda: evening).fetch_quotes(D(2024, 10, 8), ["600000.SH"])
    assert quotes["ts"].tolist() == [pd.Timestamp("2024-10-08 07:00", tz="UTC")]
    early = pd.Timestamp("2024-10-08 00:30", tz="UTC")  # 08:30 Shanghai
    assert source(FakeAkshare(), now=lambda: early).fetch_quotes(D(2024, 10, 8)).empty


def test_past_days_give_close_snapshots_that_roll_up_to_the_vendor_klines():
    fake = FakeAkshare()
    src = source(fake, now=lambda: pd.Timestamp("2024-11-01 02:00", tz="UTC"))
    quotes = src.fetch_quotes(D(2024, 10, 9), ["600000.SH", "300750.SZ"])
    assert list(quotes.columns) == RAW_QUOTES.names and len(quotes) == 2
    assert (quotes["ts"] == pd.Timestamp("2024-10-09 07:00", tz="UTC")).all()
    bars = src.fetch_daily_bars(D(2024, 10, 9), ["600000.SH", "300750.SZ"])
    rolled = daily_klines(quotes)
    cols = ["symbol", "open", "high", "low", "close", "prev_close", "volume", "amount"]
    pd.testing.assert_frame_equal(rolled[cols], bars[cols])
    assert src.fetch_quotes(D(2024, 10, 1)).empty  # National Day: not a session


def test_lazy_akshare_import_error_is_actionable(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_akshare(name, *args, **kwargs):
        if name == "akshare":
            raise ImportError("No module named 'akshare'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_akshare)
    with pytest.raises(ImportError, match=r"quant-platform\[akshare\]"):
        LazyAkshare().stock_zh_a_spot_em()
