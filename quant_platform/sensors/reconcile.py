"""`stale_runs_sensor`: work a dead process left half-done is ended, not left running forever.

Each tick (see `quant_platform.reconcile` for the rules):

1. runs that `quant-platform run` executed in process on this host, whose process is gone, are
   reported FAILURE (run monitoring in dagster.yaml covers the runs the daemon launched);
2. backtest records still queued or running in the warm tier whose Dagster run has ended are
   failed with the reason, after a grace period.

It launches nothing and touches only the Dagster instance and the warm tier, never the cold store
(whose embedded engine allows one process per data path).
"""

from __future__ import annotations

import dagster as dg

from quant_platform.reconcile import RECORD_GRACE_SECONDS, fail_orphaned_runs, reconcile_backtest_records
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.storage.warm import WarmStore


def evaluate_stale_runs(
    context: dg.SensorEvaluationContext, store: WarmStore, *, grace_seconds: float = RECORD_GRACE_SECONDS
) -> dg.SkipReason:
    """One tick of `stale_runs_sensor` (separate from the decorator so tests can call it)."""
    notes = [
        f"run {run_id} of a dead process marked FAILURE" for run_id in fail_orphaned_runs(context.instance)
    ]
    notes += reconcile_backtest_records(context.instance, store, grace_seconds)
    for note in notes:
        context.log.info(note)
    return dg.SkipReason("; ".join(notes) or "no crash leftovers")


@dg.sensor(
    name="stale_runs_sensor",
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails in-process runs whose process died (quant-platform run) and backtest records "
    "(warm tier) still running after their Dagster run ended. Launches no runs.",
)
def stale_runs_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SkipReason:
    with warehouse.open() as store:
        return evaluate_stale_runs(context, store)
