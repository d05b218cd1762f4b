import datetime as dt

import pandas as pd
import pytest

from quant_platform.core.calendar import ALWAYS_OPEN, get_calendar, to_date


def test_national_day_is_not_a_session():
    cal = get_calendar("XSHG")
    assert not cal.is_session("2024-10-01")
    assert cal.is_session("2024-10-08")
    assert cal.sessions("2024-09-27", "2024-10-09") == [
        dt.date(2024, 9, 27),
        dt.date(2024, 9, 30),
        dt.date(2024, 10, 8),
        dt.date(2024, 10, 9),
    ]


def test_session_has_lunch_break_in_utc():
    s = get_calendar("XSHG").session("2024-10-08")
    assert [(a.isoformat(), b.isoformat()) for a, b in s.intervals] == [
        ("2024-10-08T01:30:00+00:00", "2024-10-08T03:30:00+00:00"),
        ("2024-10-08T05:00:00+00:00", "2024-10-08T07:00:00+00:00"),
    ]
    assert s.contains(pd.Timestamp("2024-10-08 02:00", tz="UTC"))
    assert not s.contains(pd.Timestamp("2024-10-08 04:00", tz="UTC"))  # lunch


def test_trading_time_and_next_open():
    cal = get_calendar("XSHG")
    assert cal.is_trading_time(pd.Timestamp("2024-10-08 10:00", tz="Asia/Shanghai"))
    assert not cal.is_trading_time(pd.Timestamp("2024-10-01 10:00", tz="Asia/Shanghai"))
    assert cal.next_open(pd.Timestamp("2024-09-30 16:00", tz="Asia/Shanghai")) == pd.Timestamp(
        "2024-10-08 09:30", tz="Asia/Shanghai"
    )
    with pytest.raises(ValueError, match="not a XSHG trading day"):
        cal.session("2024-10-01")


def test_other_exchange_and_always_open():
    nyse = get_calendar("XNYS")
    assert not nyse.is_session("2024-07-04") and nyse.is_session("2024-07-05")
    crypto = get_calendar(ALWAYS_OPEN)
    assert crypto.is_session("2024-10-01") and crypto.is_session("2024-10-05")
    assert len(crypto.sessions("2024-10-01", "2024-10-07")) == 7


def test_to_date_rejects_garbage():
    assert to_date("2024-10-08") == dt.date(2024, 10, 8)
    with pytest.raises(ValueError, match="expected YYYY-MM-DD"):
        to_date("10/08/2024")
    with pytest.raises(ValueError, match="before start"):
        get_calendar("XSHG").sessions("2024-10-09", "2024-10-08")
