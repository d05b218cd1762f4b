"""Trading-day partitions: one partition per session of the configured exchange calendar.

A Monday-to-Friday cron with the exchange's weekday holidays excluded keeps Dagster's time-window
semantics (ranges, single-run backfills) while 2024-10-01 (National Day) simply is not a partition.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import dagster as dg

from quant_platform.core.calendar import ALWAYS_OPEN, DEFAULT_CALENDAR, get_calendar
from quant_platform.core.limits import FIRST_PARTITION_DAY

DEFAULT_START = FIRST_PARTITION_DAY.isoformat()


def calendar_name() -> str:
    """The exchange calendar of partitions and schedules (`QP_CALENDAR`)."""
    from quant_platform.settings import settings

    return settings().calendar


def exchange_tz() -> str:
    """The time zone of the configured exchange: the clock every schedule runs on."""
    return str(get_calendar(calendar_name()).tz)


def scheduled_trading_day(context: dg.ScheduleEvaluationContext) -> dt.date | dg.SkipReason:
    """The exchange-local day of a schedule tick, or the reason to skip it (not a trading day).

    One place for the after-close schedules (market data, options, the position day roll).
    """
    import pandas as pd

    day = pd.Timestamp(context.scheduled_execution_time).tz_convert(exchange_tz()).date()
    if not get_calendar(calendar_name()).is_session(day):
        return dg.SkipReason(f"{day} is not a {calendar_name()} trading day")
    return day


@cache
def trading_day_partitions(
    calendar: str = DEFAULT_CALENDAR, start: str = DEFAULT_START
) -> dg.TimeWindowPartitionsDefinition:
    cal = get_calendar(calendar)
    first = max(dt.date.fromisoformat(start), cal.first_session)
    first = cal.sessions(first, first + dt.timedelta(days=30))[0]
    holidays = [dt.datetime(d.year, d.month, d.day) for d in cal.non_session_weekdays() if d >= first]
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * *" if calendar == ALWAYS_OPEN else "0 0 * * 1-5",
        fmt="%Y-%m-%d",
        start=first.isoformat(),
        timezone=str(cal.tz),
        end_offset=1,  # today's session is a partition from midnight on: intraday refreshes write it
        exclusions=holidays or None,
    )


def partition_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The trading days a run covers: one partition or a whole range (single-run backfill)."""
    return [dt.date.fromisoformat(k) for k in context.partition_keys]


daily_partitions = trading_day_partitions(calendar_name())
