"""Schedules on the exchange's clock: they skip holidays because they ask the trading calendar."""

import dagster as dg
import pandas as pd

from quant_platform.conventions import AS_OF_TAG
from quant_platform.core.calendar import get_calendar
from quant_platform.jobs import intraday_job, market_data_job
from quant_platform.partitions import calendar_name, scheduled_trading_day

_TZ = str(get_calendar(calendar_name()).tz)


@dg.schedule(
    job=market_data_job,
    cron_schedule="30 15 * * 1-5",
    execution_timezone=_TZ,
    # On whenever the daemon runs: the day's data is what a user expects without clicking anything.
    # Off: the UI (Automation -> daily_after_close -> off) or `dagster schedule stop daily_after_close`.
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="After the close (15:30 exchange time): materialize the day's partition, trading days only.",
)
def daily_after_close(context: dg.ScheduleEvaluationContext):
    day = scheduled_trading_day(context)
    if isinstance(day, dg.SkipReason):
        return day
    return dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())


@dg.schedule(
    job=intraday_job,
    cron_schedule="*/5 9-15 * * 1-5",
    execution_timezone=_TZ,
    description="Every 5 minutes while the exchange trades: refresh today's quotes and bars.",
)
def intraday_during_sessions(context: dg.ScheduleEvaluationContext):
    now = pd.Timestamp(context.scheduled_execution_time).tz_convert("UTC")
    cal = get_calendar(calendar_name())
    if not cal.is_trading_time(now):
        return dg.SkipReason(f"{now.tz_convert(_TZ)} is outside {calendar_name()} trading sessions")
    day = now.tz_convert(_TZ).date()
    return dg.RunRequest(
        run_key=now.isoformat(), partition_key=day.isoformat(), tags={AS_OF_TAG: now.isoformat()}
    )


def all_schedules() -> list:
    return [daily_after_close, intraday_during_sessions]
