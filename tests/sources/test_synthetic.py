import datetime as dt

import numpy as np
import pytest

from quant_platform.core.calendar import get_calendar
from quant_platform.core.schema import RAW_QUOTES
from quant_platform.sources.base import MarketSource
from quant_platform.sources.synthetic import SyntheticMarket

DAY = dt.date(2024, 10, 8)


def test_same_seed_same_day_same_data():
    a = SyntheticMarket(n_symbols=10, seed=3).fetch_quotes(DAY)
    b = SyntheticMarket(n_symbols=10, seed=3).fetch_quotes(DAY)
    c = SyntheticMarket(n_symbols=10, seed=4).fetch_quotes(DAY)
    assert a.equals(b)
    assert not a["price"].equals(c["price"])


def test_conforms_to_schema_and_is_a_market_source():
    m = SyntheticMarket(n_symbols=5)
    q = m.fetch_quotes(DAY)
    assert isinstance(m, MarketSource)
    assert list(q.columns) == RAW_QUOTES.names
    assert RAW_QUOTES.conform(q).equals(q)


def test_snapshots_inside_sessions_and_within_price_limits():
    q = SyntheticMarket(n_symbols=20).fetch_quotes(DAY)
    session = get_calendar("XSHG").session(DAY)
    assert q["ts"].map(session.contains).all()
    local = q["ts"].dt.tz_convert("Asia/Shanghai")
    assert local.min().strftime("%H:%M:%S") == "09:30:15" and local.max().strftime("%H:%M") == "15:00"
    limit = np.where(q["symbol"].str.startswith("300"), 0.2, 0.1)
    assert (q["price"] <= np.round(q["prev_close"] * (1 + limit), 2) + 1e-9).all()
    assert (q["price"] >= np.round(q["prev_close"] * (1 - limit), 2) - 1e-9).all()
    assert (q["high"] >= q["price"]).all() and (q["low"] <= q["price"]).all()
    grouped = q.sort_values("ts").groupby("symbol")["volume"]
    assert grouped.apply(lambda v: v.is_monotonic_increasing).all()


def test_a_symbol_does_not_depend_on_universe_size():
    small = SyntheticMarket(n_symbols=5).fetch_quotes(DAY)
    large = SyntheticMarket(n_symbols=200).fetch_quotes(DAY)
    sub = large[large["symbol"].isin(small["symbol"].unique())]
    key = ["symbol", "ts"]
    assert sub.sort_values(key).reset_index(drop=True).equals(small.sort_values(key).reset_index(drop=True))


def test_prev_close_chains_across_sessions():
    m = SyntheticMarket(n_symbols=8)
    k1 = m.fetch_daily_bars(dt.date(2024, 9, 30)).set_index("symbol")
    k2 = m.fetch_daily_bars(dt.date(2024, 10, 8)).set_index("symbol")  # next session after the holiday
    common = k1.index.intersection(k2.index)
    assert len(common) > 0
    assert (k2.loc[common, "prev_close"] == k1.loc[common, "close"]).all()


def test_holiday_is_empty_and_suspensions_happen():
    m = SyntheticMarket(n_symbols=50, suspension_rate=0.2)
    assert m.fetch_quotes(dt.date(2024, 10, 1)).empty
    assert 0 < 50 - m.fetch_quotes(DAY)["symbol"].nunique() < 30


def test_invalid_configuration():
    with pytest.raises(ValueError):
        SyntheticMarket(n_symbols=0)
    with pytest.raises(ValueError):
        SyntheticMarket(snapshot_seconds=7)
