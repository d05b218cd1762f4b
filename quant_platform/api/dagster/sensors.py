"""`backtest_request_sensor`: backtest runs requested through the API (warm tier) -> `backtest_request` runs.

Each tick requests one run per pending request, `run_key = run id`, so Dagster launches it at most
once, and marks the request launched. A request launched more than `relaunch_after` seconds ago
whose record is still queued is requested again (same run key: launched only if no run exists). A
record whose Dagster run ended FAILURE or CANCELED while it still says queued or running is failed
or cancelled with that reason. Only the warm tier is touched, never the cold store.
"""

from __future__ import annotations

import dagster as dg

from quant_platform.api.dagster.runs import JOB, RUN_TAG, run_config, run_tags
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.storage.warm import IllegalTransition, Status, WarmStore

_ACTIVE = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}


def _reconcile(context: dg.SensorEvaluationContext, store: WarmStore) -> list[str]:
    notes = []
    for status in (Status.QUEUED, Status.RUNNING):
        for record in store.list_runs(status=status.value, limit=200):
            if record.backtest_id is None or store.get_backtest_request(record.id) is None:
                continue
            runs = context.instance.get_runs(filters=dg.RunsFilter(tags={RUN_TAG: record.id}), limit=5)
            if not runs or any(r.status in _ACTIVE for r in runs):
                continue
            run = runs[0]
            try:
                if run.status == dg.DagsterRunStatus.CANCELED:
                    store.cancel_run(record.id)
                elif run.status == dg.DagsterRunStatus.FAILURE:
                    store.fail_run(record.id, f"Dagster run {run.run_id} failed before finishing the run")
                else:
                    continue
                notes.append(f"{record.id}: Dagster run {run.run_id} ended {run.status.value}")
            except IllegalTransition:
                pass
    return notes


def evaluate_backtest_requests(
    context: dg.SensorEvaluationContext, store: WarmStore, *, limit: int = 20, relaunch_after: float = 300.0
) -> dg.SensorResult:
    """One tick of `backtest_request_sensor` (separate from the decorator so tests can call it)."""
    pending = store.pending_backtest_requests(limit, relaunch_after=relaunch_after)
    requests = []
    for request in pending:
        run = store.get_run(request.run_id)
        requests.append(
            dg.RunRequest(
                run_key=request.run_id,
                run_config=run_config(request.run_id),
                tags=run_tags(request.run_id, run.strategy),
            )
        )
        context.log.info(
            f"backtest run {request.run_id} ({run.strategy}) requested: run key {request.run_id}"
        )
    store.mark_launched([r.run_id for r in pending])
    notes = _reconcile(context, store)
    for note in notes:
        context.log.info(note)
    skip = None if requests else ("; ".join(notes) or "no requested backtest runs")
    return dg.SensorResult(run_requests=requests, skip_reason=skip)


@dg.sensor(
    name="backtest_request_sensor",
    job_name=JOB,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches backtest runs requested through the HTTP API (warm tier) as backtest_request "
    "runs, run_key = run id; fails or cancels records whose Dagster run ended without finishing them.",
)
def backtest_request_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    with warehouse.open() as store:
        return evaluate_backtest_requests(context, store)
