"""`backtest_request_sensor`: backtest runs requested through the API (warm tier) -> `backtest_request` runs.

Each tick requests at most one Dagster run, for a batch of up to `BATCH_SIZE` pending requests in
order of submission (`runs.py` says why a batch), and marks them launched. A request launched more
than `relaunch_after` seconds ago whose record is still queued is requested again (a request of one:
same run key, launched only if no run exists; in a batch the job skips records no longer queued). A
record whose Dagster run ended FAILURE or CANCELED while it still says queued or running is failed or
cancelled with that reason. Only the warm tier and the Dagster instance are touched, never the cold
store. The minimum interval is 2 s: a tick is one indexed warm-tier query, and under load the wait
for the next tick is a visible share of a request's queue time (the daemon evaluates sensors at
most every 5 s, so in practice a request waits 0-5 s for its tick).
"""

from __future__ import annotations

import dagster as dg

from quant_platform.api.dagster.runs import BATCH_SIZE, JOB, run_config, run_ids_of, run_key, run_tags
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.storage.warm import IllegalTransition, Status, WarmStore

_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
_ENDED_BADLY = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def dagster_runs_of(instance: dg.DagsterInstance, statuses, limit: int = 100) -> dict[str, dg.DagsterRun]:
    """request run id -> the newest `backtest_request` run with one of `statuses` that executes it."""
    found: dict[str, dg.DagsterRun] = {}
    for run in instance.get_runs(filters=dg.RunsFilter(job_name=JOB, statuses=list(statuses)), limit=limit):
        for rid in run_ids_of(run.run_config):
            found.setdefault(rid, run)
    return found


def _reconcile(context: dg.SensorEvaluationContext, store: WarmStore) -> list[str]:
    records = [
        r
        for status in (Status.QUEUED, Status.RUNNING)
        for r in store.list_runs(status=status.value, limit=200)
        if r.backtest_id is not None
    ]
    if not records:
        return []
    active = dagster_runs_of(context.instance, _ACTIVE)
    ended = dagster_runs_of(context.instance, _ENDED_BADLY)
    notes = []
    for record in records:
        run = ended.get(record.id)
        if run is None or record.id in active or store.get_backtest_request(record.id) is None:
            continue
        try:
            if run.status == dg.DagsterRunStatus.CANCELED:
                store.cancel_run(record.id)
            else:
                store.fail_run(record.id, f"Dagster run {run.run_id} failed before finishing the run")
            notes.append(f"{record.id}: Dagster run {run.run_id} ended {run.status.value}")
        except IllegalTransition:
            pass
    return notes


def evaluate_backtest_requests(
    context: dg.SensorEvaluationContext,
    store: WarmStore,
    *,
    limit: int = BATCH_SIZE,
    relaunch_after: float = 300.0,
) -> dg.SensorResult:
    """One tick of `backtest_request_sensor` (separate from the decorator so tests can call it)."""
    pending = store.pending_backtest_requests(limit, relaunch_after=relaunch_after)
    requests = []
    if pending:
        ids = [r.run_id for r in pending]
        strategies = [store.get_run(rid).strategy for rid in ids]
        requests.append(
            dg.RunRequest(run_key=run_key(ids), run_config=run_config(ids), tags=run_tags(ids, strategies))
        )
        context.log.info(f"{len(ids)} backtest runs requested in one run: {', '.join(ids[:5])}")
        store.mark_launched(ids)
    notes = _reconcile(context, store)
    for note in notes:
        context.log.info(note)
    skip = None if requests else ("; ".join(notes) or "no requested backtest runs")
    return dg.SensorResult(run_requests=requests, skip_reason=skip)


@dg.sensor(
    name="backtest_request_sensor",
    job_name=JOB,
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches backtest runs requested through the HTTP API (warm tier) in batches, one "
    "backtest_request run per tick; fails or cancels records whose Dagster run ended without finishing them.",
)
def backtest_request_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    with warehouse.open() as store:
        return evaluate_backtest_requests(context, store)
