"""Trading's Dagster wiring, added to the one `Definitions` in `quant_platform.definitions`."""

from quant_platform.trading.dagster.day_roll import (
    day_roll_after_close,
    position_day_roll_job,
    roll_position_days,
)

TRADING_JOBS = [position_day_roll_job]
TRADING_SCHEDULES = [day_roll_after_close]

__all__ = [
    "TRADING_JOBS",
    "TRADING_SCHEDULES",
    "day_roll_after_close",
    "position_day_roll_job",
    "roll_position_days",
]
