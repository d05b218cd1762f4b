"""Option contract terms: codes, listed expiries, strike grids and the day's snapshot slots.

SSE ETF options (the A-share case) expire on the fourth Wednesday of their month (the next session
when that is a holiday); on any day four months are listed: the current and next month, and the
next two quarterly months (March, June, September, December). Codes here follow the exchange's
trading code, with the underlying's exchange suffix: ``510050C2410M02500.SH`` is the October 2024
call on 510050 struck at 2.500.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import pandas as pd

from quant_platform.core.calendar import TradingCalendar, get_calendar

KINDS = ("call", "put")
QUARTER_MONTHS = (3, 6, 9, 12)
CODE = re.compile(r"^(?P<code>\d{6})(?P<cp>[CP])(?P<yymm>\d{4})M(?P<strike>\d{5})\.(?P<exchange>[A-Z]{2})$")
DEFAULT_SLOT_MINUTES = 30


def option_symbol(underlying: str, kind: str, expiry: dt.date, strike: float) -> str:
    """The option's code: underlying digits, C/P, YYMM of expiry, M, strike x 1000 on 5 digits, suffix."""
    code, _, exchange = underlying.partition(".")
    cp = "C" if kind == "call" else "P"
    return f"{code}{cp}{expiry:%y%m}M{int(round(strike * 1000)):05d}.{exchange or 'SH'}"


def parse_symbol(symbol: str) -> dict | None:
    """(underlying, kind, strike, year-month) of an option code; None if it is not one."""
    m = CODE.match(symbol)
    if not m:
        return None
    return {
        "underlying": f"{m['code']}.{m['exchange']}",
        "kind": "call" if m["cp"] == "C" else "put",
        "strike": int(m["strike"]) / 1000,
        "month": (2000 + int(m["yymm"][:2]), int(m["yymm"][2:])),
    }


def expiry_of_month(year: int, month: int, calendar: str | TradingCalendar = "XSHG") -> dt.date:
    """The fourth Wednesday of the month, or the next session when it is not one."""
    cal = get_calendar(calendar) if isinstance(calendar, str) else calendar
    first = dt.date(year, month, 1)
    day = first + dt.timedelta(days=(2 - first.weekday()) % 7 + 21)
    for _ in range(15):
        if cal.is_session(day):
            return day
        day += dt.timedelta(days=1)
    return day


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    k = year * 12 + month - 1 + n
    return k // 12, k % 12 + 1


def listed_expiries(day: dt.date, calendar: str = "XSHG") -> list[dt.date]:
    """The four expiries listed on `day`: this and next month, then the next two quarterly months.

    After this month's expiry day the "current month" is the next one.
    """
    cal = get_calendar(calendar)
    year, month = day.year, day.month
    if expiry_of_month(year, month, cal) < day:
        year, month = _add_months(year, month, 1)
    months = [(year, month), _add_months(year, month, 1)]
    y, m = months[-1]
    while len(months) < 4:
        y, m = _add_months(y, m, 1)
        if m in QUARTER_MONTHS:
            months.append((y, m))
    return [expiry_of_month(y, m, cal) for y, m in months]


def strike_step(price: float) -> float:
    """SSE ETF option strike interval for an underlying price."""
    for bound, step in ((3.0, 0.05), (5.0, 0.1), (10.0, 0.25), (20.0, 0.5), (50.0, 1.0), (100.0, 2.5)):
        if price <= bound:
            return step
    return 5.0


def strike_grid(low: float, high: float, step: float, around: int = 4) -> np.ndarray:
    """Strikes on the `step` grid from `around` steps below the strike nearest `low` to `around`
    above the one nearest `high`."""
    lo = int(round(low / step)) - around
    hi = int(round(high / step)) + around
    return np.round(np.arange(max(lo, 1), hi + 1) * step, 4)


def slot_times(
    day: dt.date, minutes: int = DEFAULT_SLOT_MINUTES, calendar: str = "XSHG"
) -> list[tuple[str, pd.Timestamp]]:
    """(HH:MM local, UTC instant) of the day's snapshot slots: every `minutes` after each trading
    interval's start, up to its end; the last slot is the close."""
    cal = get_calendar(calendar)
    if not cal.is_session(day):
        return []
    out = []
    step = pd.Timedelta(minutes=minutes)
    for start, end in cal.session(day).intervals:
        for ts in pd.date_range(start + step, end, freq=step):
            out.append((ts.tz_convert(cal.tz).strftime("%H:%M"), ts.tz_convert("UTC")))
    return out


def close_slot(day: dt.date, minutes: int = DEFAULT_SLOT_MINUTES, calendar: str = "XSHG") -> str | None:
    slots = slot_times(day, minutes, calendar)
    return slots[-1][0] if slots else None


def year_fraction(ts: pd.Series | pd.Timestamp, expiry, calendar: str = "XSHG"):
    """ACT/365 years from `ts` (UTC instants) to the close of `expiry` (dates, exchange-local)."""
    tz = get_calendar(calendar).tz
    expiry = pd.to_datetime(expiry)
    close = (expiry + pd.Timedelta(hours=15)).dt.tz_localize(tz) if hasattr(expiry, "dt") else None
    if close is None:
        close = (pd.Timestamp(expiry) + pd.Timedelta(hours=15)).tz_localize(tz)
    seconds = (close - pd.to_datetime(ts, utc=True)) / pd.Timedelta(seconds=1)
    return seconds / (365.0 * 86400.0)


def atm_index(strikes: np.ndarray, spot: float) -> int:
    return int(np.argmin(np.abs(strikes - spot))) if len(strikes) and math.isfinite(spot) else -1
