"""Names shared by runs, sensors and queues: run-tag keys, pools, and Dagster's partition-range tags.

One home so a sensor that launches a run and the op that reads its tags can never disagree, and
so `dagster.yaml`'s tag concurrency limits name keys that exist. Importing this module does not
import Dagster: the plain grid and source modules use these names too. It is the only module that
touches Dagster's private `dagster._core` (for the partition-range tag keys, which Dagster does not
export publicly), inside the two functions at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

PREFIX = "quant_platform/"

# ------------------------------------------------------------------------------------------ run tags
AS_OF_TAG = PREFIX + "as_of"  # intraday refresh: the instant the snapshot stands for
EMBEDDED_TAG = PREFIX + "embedded_store"  # the run opens the embedded cold store: queue behind others
MARKET_SOURCE_TAG = PREFIX + "market_source"  # overrides QP_MARKET_SOURCE for one run
DROP_FILE_TAG = PREFIX + "drop_file"  # content id of the dropped file a run ingests
DROP_NAME_TAG = PREFIX + "drop_file_name"
GRID_TAG = PREFIX + "grid"  # a grid_search run (run-queue limit in dagster.yaml)
GRID_REQUEST_TAG = PREFIX + "grid_request"  # the grid request a run evaluates
STRATEGY_TAG = PREFIX + "strategy"
BACKTEST_REQUEST_TAG = PREFIX + "backtest_request"  # the API-requested backtest run a run executes
# The process that executes a run in process (`quant-platform run`): if it dies, no daemon can tell,
# so `reconcile.fail_orphaned_runs` fails runs whose process on this host is gone.
HOST_TAG = PREFIX + "host"
PID_TAG = PREFIX + "pid"
PID_START_TAG = PREFIX + "pid_start"  # the pid's start time (clock ticks since boot): pid reuse is not life

# ---------------------------------------------------------------------------------------------- pools
# One step at a time holds the cold store: the embedded engine allows one process per data path.
COLD_POOL = "cold_store"

# Tag values are at most 63 characters in Dagster's run storage indexes.
MAX_TAG_VALUE = 63


def tag_value(value: object) -> str:
    """A value shortened to what a run tag holds."""
    return str(value)[:MAX_TAG_VALUE]


def process_tags() -> dict[str, str]:
    """Tags naming this process ({host, pid} and, on Linux, the pid's start time) for runs it executes."""
    from quant_platform.core.processes import current

    me = current()
    tags = {HOST_TAG: tag_value(me.host), PID_TAG: str(me.pid)}
    if me.start is not None:
        tags[PID_START_TAG] = str(me.start)
    return tags


# ------------------------------------------------------------------------ Dagster's partition tags


def partition_range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Tags that make one run materialize the partitions `first`..`last` (a single-run backfill)."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }


def run_partition_keys(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """(first, last) partition key of the run with `tags`: one partition, a range, or None."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
        PARTITION_NAME_TAG,
    )

    if PARTITION_NAME_TAG in tags:
        return tags[PARTITION_NAME_TAG], tags[PARTITION_NAME_TAG]
    if ASSET_PARTITION_RANGE_START_TAG in tags:
        return tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]
    return None
