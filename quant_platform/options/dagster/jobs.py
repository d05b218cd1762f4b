"""The `options_daily` job (the options group for trading days) and its schedule after the close."""

import dagster as dg

from quant_platform.core.calendar import get_calendar
from quant_platform.partitions import calendar_name, daily_partitions, scheduled_trading_day

options_job = dg.define_asset_job(
    "options_daily",
    selection=dg.AssetSelection.groups("options"),
    partitions_def=daily_partitions,
    description="Option chain -> snapshots -> daily rows -> IV and greeks (T+1 open interest) -> options QA.",
)

_TZ = str(get_calendar(calendar_name()).tz)


@dg.schedule(
    job=options_job,
    cron_schedule="40 15 * * 1-5",
    execution_timezone=_TZ,
    description="After the close (15:40 exchange time): the day's options partition, trading days only.",
)
def options_after_close(context: dg.ScheduleEvaluationContext):
    day = scheduled_trading_day(context)
    if isinstance(day, dg.SkipReason):
        return day
    return dg.RunRequest(run_key=f"options-{day.isoformat()}", partition_key=day.isoformat())
