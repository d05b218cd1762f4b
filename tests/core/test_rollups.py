"""Rollups against a naive pandas reference, plus the bar-boundary rules written out by hand."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from quant_platform.core.calendar import get_calendar
from quant_platform.core.rollups import bars_from_quotes, daily_klines, intraday_bars
from quant_platform.core.schema import RAW_QUOTES
from quant_platform.sources.synthetic import SyntheticMarket

DAY = dt.date(2024, 10, 8)
STARTS = [a for a, _ in get_calendar("XSHG").session(DAY).intervals]


def reference_bars(quotes: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """The obvious, slow way: label each snapshot by hand, group, diff the cumulative totals."""
    q = quotes.sort_values(["symbol", "ts"]).copy()
    step = pd.Timedelta(minutes=minutes)
    starts = set(STARTS)

    def label(ts):
        lab = ts.ceil(step)
        return lab + step if lab in starts else lab

    q["label"] = [label(t) for t in q["ts"]]
    rows = []
    for sym, g in q.groupby("symbol", sort=True):
        prev_vol, prev_amt, prev_close = 0, 0.0, g["prev_close"].iloc[0]
        for lab, b in g.groupby("label", sort=True):
            close = b["price"].iloc[-1]
            rows.append(
                {
                    "symbol": sym,
                    "ts": lab,
                    "open": b["price"].iloc[0],
                    "high": b["price"].max(),
                    "low": b["price"].min(),
                    "close": close,
                    "volume": b["volume"].iloc[-1] - prev_vol,
                    "amount": round(b["amount"].iloc[-1] - prev_amt, 2),
                    "change_rate": close / prev_close - 1,
                }
            )
            prev_vol, prev_amt, prev_close = b["volume"].iloc[-1], b["amount"].iloc[-1], close
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def quotes():
    return SyntheticMarket(n_symbols=4, snapshot_seconds=20).fetch_quotes(DAY)


@pytest.mark.parametrize("freq,minutes", [("1m", 1), ("5m", 5), ("15m", 15)])
def test_bars_match_reference(quotes, freq, minutes):
    ours = intraday_bars(quotes, STARTS)[freq]
    ref = reference_bars(quotes, minutes)
    assert len(ours) == len(ref) == 4 * 240 // minutes
    ours = ours.sort_values(["symbol", "ts"]).reset_index(drop=True)
    assert list(ours["symbol"]) == list(ref["symbol"])
    assert (ours["ts"].values == pd.DatetimeIndex(ref["ts"]).values).all()
    for col in ["open", "high", "low", "close", "volume", "amount", "change_rate"]:
        np.testing.assert_allclose(
            ours[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-12, err_msg=col
        )


def test_bar_labels_follow_a_share_convention(quotes):
    bars = bars_from_quotes(quotes, "1m", STARTS)
    local = bars["ts"].dt.tz_convert("Asia/Shanghai").dt.strftime("%H:%M")
    per_symbol = local[bars["symbol"] == bars["symbol"].iloc[0]].tolist()
    assert per_symbol[0] == "09:31" and per_symbol[119] == "11:30"
    assert per_symbol[120] == "13:01" and per_symbol[-1] == "15:00"


def test_boundary_snapshots_open_the_next_bar():
    ts = (
        pd.to_datetime(
            ["2024-10-08 09:30:00", "2024-10-08 09:31:00", "2024-10-08 13:00:00", "2024-10-08 13:00:30"]
        )
        .tz_localize("Asia/Shanghai")
        .tz_convert("UTC")
    )
    q = pd.DataFrame(
        {
            "symbol": "600000.SH",
            "trade_date": pd.Timestamp(DAY),
            "ts": ts,
            "price": [10.0, 10.1, 10.2, 10.3],
            "open": 10.0,
            "high": [10.0, 10.1, 10.2, 10.3],
            "low": 10.0,
            "prev_close": 9.9,
            "volume": [100, 300, 600, 1000],
            "amount": [1000.0, 3020.0, 6080.0, 10200.0],
            "bid": 9.99,
            "ask": 10.01,
        }
    )
    bars = bars_from_quotes(RAW_QUOTES.conform(q), "1m", STARTS)
    local = bars["ts"].dt.tz_convert("Asia/Shanghai").dt.strftime("%H:%M").tolist()
    assert local == ["09:31", "13:01"]  # 09:30:00 and 09:31:00 share the first bar; 13:00 opens the afternoon
    assert bars["volume"].tolist() == [300, 700]
    assert bars["amount"].tolist() == [3020.0, 7180.0]


def test_unsorted_input_gives_same_bars(quotes):
    shuffled = quotes.sample(frac=1.0, random_state=1)
    a = intraday_bars(quotes, STARTS)["5m"]
    b = intraday_bars(shuffled, STARTS)["5m"]
    key = ["symbol", "ts"]
    pd.testing.assert_frame_equal(
        a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
    )


def test_daily_klines_use_last_snapshot_and_limits():
    quotes = SyntheticMarket(n_symbols=10, snapshot_seconds=60).fetch_quotes(DAY)
    k = daily_klines(quotes).set_index("symbol")
    last = quotes.sort_values("ts").groupby("symbol").tail(1).set_index("symbol").loc[k.index]
    assert (k["close"] == last["price"]).all()
    assert (k["volume"] == last["volume"]).all()
    chinext = [s for s in k.index if s.startswith("300")]
    main = [s for s in k.index if s.startswith("600")]
    assert chinext and main
    pc = k.loc[main[0], "prev_close"]
    assert k.loc[main[0], "limit_up"] == pytest.approx(round(pc * 1.1 + 1e-9, 2))
    pc = k.loc[chinext[0], "prev_close"]
    assert k.loc[chinext[0], "limit_up"] == pytest.approx(round(pc * 1.2 + 1e-9, 2))


def test_empty_input_gives_empty_frames():
    assert all(b.empty for b in intraday_bars(RAW_QUOTES.empty(), STARTS).values())
    assert daily_klines(RAW_QUOTES.empty()).empty
