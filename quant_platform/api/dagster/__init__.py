"""The HTTP API's Dagster wiring, added to the one `Definitions` in `quant_platform.definitions`:
the `backtest_request` job (`ops.py`) and `backtest_request_sensor` (`sensors.py`)."""

from quant_platform.api.dagster.ops import backtest_request_job
from quant_platform.api.dagster.sensors import backtest_request_sensor

API_JOBS = [backtest_request_job]
API_SENSORS = [backtest_request_sensor]

__all__ = ["API_JOBS", "API_SENSORS", "backtest_request_job", "backtest_request_sensor"]
