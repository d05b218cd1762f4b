"""The one `Definitions` of quant-platform: assets, checks, jobs, schedules, sensors and resources.

Resources are chosen per deployment (`QP_DEPLOYMENT=local|prod`, see `quant_platform.settings`):
local runs every store embedded with the in-process executor; prod talks to servers.
"""

from __future__ import annotations

import dagster as dg

from quant_platform import jobs, schedules
from quant_platform.assets import bars, klines, market_data, qa
from quant_platform.resources import build_resources
from quant_platform.settings import LOCAL, deployment

defs = dg.Definitions(
    assets=[market_data.raw_quotes, bars.intraday_bars_assets, klines.klines_daily, qa.qa_report],
    jobs=jobs.all_jobs(),
    schedules=schedules.all_schedules(),
    resources=build_resources(),
    executor=dg.in_process_executor if deployment() == LOCAL else dg.multiprocess_executor,
)
