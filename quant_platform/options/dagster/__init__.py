"""The options feature's Dagster wiring, added to the one `Definitions` in `quant_platform.definitions`.

- `resources.py`: the `options` resource (`QP_OPTIONS_SOURCE`: synthetic or IB);
- `assets.py`: option_contracts -> option_quotes -> option_daily -> option_greeks -> options_qa;
- `checks.py`: a blocking `quality_gate` per option table (GX suite + quarantined share);
- `jobs.py`: the `options_daily` job and its after-the-close schedule.

The logic they call (sources, rules, rollup, greeks, QA) is in the Dagster-free modules of
`quant_platform.options`.
"""

from quant_platform.options.dagster.assets import OPTIONS_ASSETS
from quant_platform.options.dagster.checks import OPTIONS_CHECKS
from quant_platform.options.dagster.jobs import options_after_close, options_job
from quant_platform.options.dagster.resources import OptionSourceResource, option_source_resource_from_env

OPTIONS_JOBS = [options_job]
OPTIONS_SCHEDULES = [options_after_close]


def options_resources() -> dict:
    return {"options": option_source_resource_from_env()}


__all__ = [
    "OPTIONS_ASSETS",
    "OPTIONS_CHECKS",
    "OPTIONS_JOBS",
    "OPTIONS_SCHEDULES",
    "OptionSourceResource",
    "option_source_resource_from_env",
    "options_resources",
]
