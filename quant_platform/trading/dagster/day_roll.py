"""The position day roll as a job: `position_day_roll`, launched by `day_roll_after_close`.

After the close of every trading day (15:45 exchange time, after the market-data run starts at
15:30) the schedule requests one run for that day (`run_key = day-roll-<day>`); the run adds a held
day to every open position of the active accounts. The roll is idempotent per day in the hot tier
itself, so a retried or manually re-launched run for the same day changes nothing; a run during a
hot-tier outage fails instead of skipping the day silently. It reads no cold
data, so it does not queue behind the embedded ClickHouse.

With the in-process hot tier (`QP_REDIS_URL=memory://`) positions live in the process that recorded
them, so the job only has something to roll when the hot tier is Redis.
"""

import dagster as dg

from quant_platform.core.calendar import get_calendar, to_date
from quant_platform.partitions import calendar_name, scheduled_trading_day
from quant_platform.resources.hot import HotCacheResource
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.trading.service import TradingService

_TZ = str(get_calendar(calendar_name()).tz)


@dg.op(config_schema={"date": dg.Field(str, description="Trading day rolled, YYYY-MM-DD")})
def roll_position_days(
    context: dg.OpExecutionContext, warehouse: WarehouseResource, hot: HotCacheResource
) -> dict[str, int]:
    day = to_date(context.op_config["date"])
    store = hot.store()
    try:
        with warehouse.open() as warm:
            rolled = TradingService(None, warm, store, calendar=calendar_name()).roll_day(None, day)
        if not store.available:  # the resilient store skipped the rolls: fail, so a retry rolls the day
            raise dg.Failure(f"hot tier {store.url} unavailable: the day roll of {day} was not applied")
    finally:
        store.close()
    total = sum(rolled.values())
    context.log.info(f"day roll of {day}: {total} positions in {len(rolled)} active accounts")
    context.add_output_metadata({"day": day.isoformat(), "accounts": len(rolled), "positions": total})
    return rolled


@dg.job(
    name="position_day_roll",
    description="Adds a held day to every open position of the active accounts (idempotent per day).",
)
def position_day_roll_job() -> None:
    roll_position_days()


@dg.schedule(
    job=position_day_roll_job,
    cron_schedule="45 15 * * 1-5",
    execution_timezone=_TZ,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="After the close (15:45 exchange time): the day roll of positions, trading days only.",
)
def day_roll_after_close(context: dg.ScheduleEvaluationContext):
    day = scheduled_trading_day(context)
    if isinstance(day, dg.SkipReason):
        return day
    return roll_request(day.isoformat())


def roll_request(day: str) -> dg.RunRequest:
    """The run of one day's roll; its run key makes the schedule launch a day once."""
    return dg.RunRequest(
        run_key=f"day-roll-{day}",
        run_config={"ops": {"roll_position_days": {"config": {"date": day}}}},
    )
