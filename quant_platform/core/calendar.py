"""Trading calendars: which days are sessions and when each session trades.

Backed by `exchange-calendars` (XSHG for Shanghai A-shares, XNYS, ...) plus an always-open 24/7
calendar for crypto. Partitions, schedules, the synthetic market and the data-quality rules all ask
this module, so "is 2024-10-01 a trading day?" has one answer everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import pandas as pd

ALWAYS_OPEN = "24/7"
DEFAULT_CALENDAR = "XSHG"
_EXCHANGE_TZ = {"XSHG": "Asia/Shanghai", "XSHE": "Asia/Shanghai", "XHKG": "Asia/Hong_Kong"}

DateLike = str | dt.date | pd.Timestamp


@dataclass(frozen=True)
class Session:
    """One trading day: its local date and the UTC intervals in which it trades (lunch break split)."""

    date: dt.date
    intervals: tuple[tuple[pd.Timestamp, pd.Timestamp], ...]

    @property
    def open(self) -> pd.Timestamp:
        return self.intervals[0][0]

    @property
    def close(self) -> pd.Timestamp:
        return self.intervals[-1][1]

    def contains(self, ts: pd.Timestamp) -> bool:
        return any(start <= ts <= end for start, end in self.intervals)


class TradingCalendar:
    """Sessions of one exchange. Construct with `get_calendar(name)` (cached)."""

    def __init__(self, name: str, start: DateLike = "2015-01-01") -> None:
        self.name = name
        self._start = pd.Timestamp(start)
        if name == ALWAYS_OPEN:
            self.tz = ZoneInfo("UTC")
            self._xc = None
        else:
            import exchange_calendars as xc

            self._xc = xc.get_calendar(name, start=self._start)
            self.tz = ZoneInfo(_EXCHANGE_TZ.get(name, str(self._xc.tz)))

    @property
    def first_session(self) -> dt.date:
        return self._start.date() if self._xc is None else self._xc.first_session.date()

    @property
    def last_session(self) -> dt.date:
        """Last day the calendar knows; exchanges publish holidays about a year ahead."""
        if self._xc is None:
            return (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=366)).date()
        return self._xc.last_session.date()

    def is_session(self, day: DateLike) -> bool:
        d = to_date(day)
        if self._xc is None:
            return True
        if not (self.first_session <= d <= self.last_session):
            return False
        return bool(self._xc.is_session(pd.Timestamp(d)))

    def sessions(self, start: DateLike, end: DateLike) -> list[dt.date]:
        """Trading days in [start, end], both inclusive."""
        s, e = to_date(start), to_date(end)
        if e < s:
            raise ValueError(f"end {e} is before start {s}")
        if self._xc is None:
            return [d.date() for d in pd.date_range(s, e, freq="D")]
        s, e = max(s, self.first_session), min(e, self.last_session)
        if e < s:
            return []
        return [d.date() for d in self._xc.sessions_in_range(pd.Timestamp(s), pd.Timestamp(e))]

    def non_session_weekdays(self) -> list[dt.date]:
        """Monday-to-Friday holidays: the exclusions of the trading-day partitions."""
        if self._xc is None:
            return []
        weekdays = pd.bdate_range(self.first_session, self.last_session)
        sessions = set(self._xc.sessions_in_range(weekdays[0], weekdays[-1]))
        return [d.date() for d in weekdays if d not in sessions]

    def session(self, day: DateLike) -> Session:
        """The trading intervals of `day` in UTC. Raises ValueError on a non-trading day."""
        d = to_date(day)
        if not self.is_session(d):
            raise ValueError(f"{d} is not a {self.name} trading day")
        if self._xc is None:
            start = pd.Timestamp(d, tz="UTC")
            return Session(d, ((start, start + pd.Timedelta(days=1)),))
        row = self._xc.schedule.loc[pd.Timestamp(d)]
        if pd.notna(row["break_start"]):
            intervals = ((row["open"], row["break_start"]), (row["break_end"], row["close"]))
        else:
            intervals = ((row["open"], row["close"]),)
        return Session(d, tuple((pd.Timestamp(a), pd.Timestamp(b)) for a, b in intervals))

    def previous_session(self, day: DateLike) -> dt.date | None:
        d = to_date(day)
        if self._xc is None:
            return d - dt.timedelta(days=1)
        earlier = (
            self.sessions(self.first_session, d - dt.timedelta(days=1)) if d > self.first_session else []
        )
        return earlier[-1] if earlier else None

    def is_trading_time(self, ts: pd.Timestamp) -> bool:
        ts = pd.Timestamp(ts).tz_convert("UTC") if pd.Timestamp(ts).tzinfo else pd.Timestamp(ts, tz="UTC")
        local_day = ts.tz_convert(self.tz).date()
        return self.is_session(local_day) and self.session(local_day).contains(ts)

    def next_open(self, ts: pd.Timestamp) -> pd.Timestamp:
        """The next session open strictly after `ts` (for hot-tier TTLs while the market is closed)."""
        ts = pd.Timestamp(ts)
        ts = ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")
        if self._xc is None:
            return ts
        return pd.Timestamp(self._xc.next_open(ts))


def to_date(value: DateLike) -> dt.date:
    """Parse '2024-10-08', a date or a Timestamp into a date; a clear ValueError otherwise."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"not a date (expected YYYY-MM-DD): {value!r}") from None


@cache
def get_calendar(name: str = DEFAULT_CALENDAR, start: str = "2015-01-01") -> TradingCalendar:
    return TradingCalendar(name, start)
