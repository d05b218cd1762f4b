"""TTL policy of the hot tier: how long an entry lives depends on whether the market trades.

Apart from the stores because it needs only the trading calendar, and callers such as the collector
build a policy themselves and hand it to whichever store they get.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from quant_platform.core.calendar import DEFAULT_CALENDAR, TradingCalendar, get_calendar

log = logging.getLogger(__name__)


class TTLPolicy:
    """How long a hot entry written at `now` should live, depending on whether the market trades.

    Trading: `session_ttl` seconds (or more when the writer's own cadence is slower, see `floor`).
    Closed: until trading next starts, i.e. the afternoon reopen during the lunch break and
    otherwise the next session open. If the calendar cannot answer (beyond its last known session),
    the fallback is `closed_fallback_ttl`.
    """

    def __init__(
        self,
        calendar: str | TradingCalendar = DEFAULT_CALENDAR,
        *,
        session_ttl: float = 300.0,
        closed_fallback_ttl: float = 86_400.0,
        min_ttl: float = 1.0,
    ) -> None:
        self.calendar = get_calendar(calendar) if isinstance(calendar, str) else calendar
        self.session_ttl = float(session_ttl)
        self.closed_fallback_ttl = float(closed_fallback_ttl)
        self.min_ttl = float(min_ttl)

    def seconds(self, now: pd.Timestamp | dt.datetime | None = None, *, floor: float = 0.0) -> float:
        ts = _utc(now)
        try:
            if self.calendar.is_trading_time(ts):
                return max(self.session_ttl, floor)
            return max(self.min_ttl, (self._next_start(ts) - ts).total_seconds())
        except (ValueError, KeyError, IndexError) as err:  # outside the calendar's known range
            log.debug("TTLPolicy: calendar cannot place %s (%s); using fallback TTL", ts, err)
            return self.closed_fallback_ttl

    def _next_start(self, ts: pd.Timestamp) -> pd.Timestamp:
        day = ts.tz_convert(self.calendar.tz).date()
        if self.calendar.is_session(day):
            for start, _end in self.calendar.session(day).intervals:
                if start > ts:
                    return start
        return self.calendar.next_open(ts)


def _utc(now: pd.Timestamp | dt.datetime | None) -> pd.Timestamp:
    if now is None:
        return pd.Timestamp.now(tz="UTC")
    ts = pd.Timestamp(now)
    return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")
