"""Sensors of grid search: queued requests -> `grid_search` runs, new klines -> re-runs of watched searches.

`grid_request_sensor` only talks to the warm tier (never the cold store, whose embedded engine allows
one process per data path). Each tick:

1. claims up to `limit` queued requests (queued -> running, safe with concurrent claimers) and
   requests one `grid_search` run per request, with `run_key = request id`, so Dagster launches it
   at most once. The request id is in the run config and in the tag `quant_platform/grid_request`.
   The tags `quant_platform/embedded_store` and `quant_platform/grid` let the run queue limit the
   concurrency (see dagster.yaml).
2. reconciles running requests with their runs. A request whose run ended FAILURE or CANCELED while
   the request still says running (a killed process, a run cancelled in the UI) is failed or
   cancelled with that reason. A request claimed more than `relaunch_after` seconds ago that has no
   run at all (the tick that claimed it crashed before its run was submitted) is requested again
   with the same run key.

`watched_grid_sensor` watches `klines_daily`. When new materializations land, it submits a re-run of
every watched search (`watch: true`, not cancelled, created before those klines). The re-run's window
rolls forward to the newest materialized trading day, keeping the window's length. Its idempotency
key is ``watch:<request id>:<klines storage id>``, so every klines update starts each watched search
once, even if the sensor's cursor is reset. Materializations landing between two ticks (a 20-day
range run) count as one update.
"""

from __future__ import annotations

import warnings

import dagster as dg

from quant_platform.conventions import GRID_REQUEST_TAG
from quant_platform.grid.runs import GRID_JOB, age_seconds, run_config, run_tags, submit_reruns
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.storage.warm import GridRequest, IllegalTransition, Status, WarmStore

KLINES = dg.AssetKey("klines_daily")
SENSOR_DAEMON = "SENSOR"  # the daemon type that evaluates sensors, as Dagster names it


def sensor_daemon_age(instance: dg.DagsterInstance) -> float | None:
    """Seconds since the sensor daemon last heartbeated in `instance`, None if it never did.

    A queued grid request only starts when `grid_request_sensor` ticks, which needs this daemon.
    """
    import time

    beat = instance.get_daemon_heartbeats().get(SENSOR_DAEMON)
    return None if beat is None else max(0.0, time.time() - beat.timestamp)


def run_request(request: GridRequest) -> dg.RunRequest:
    return dg.RunRequest(run_key=request.id, run_config=run_config(request.id), tags=run_tags(request))


def _reconcile(
    context: dg.SensorEvaluationContext, store: WarmStore, skip: set[str], relaunch_after: float
) -> tuple[list[dg.RunRequest], list[str]]:
    requests: list[dg.RunRequest] = []
    notes: list[str] = []
    for request in store.list_grid_requests(status=Status.RUNNING.value, limit=500):
        if request.id in skip:
            continue
        runs = context.instance.get_runs(filters=dg.RunsFilter(tags={GRID_REQUEST_TAG: request.id}), limit=5)
        if not runs:
            if age_seconds(request.started_at) >= relaunch_after:
                requests.append(run_request(request))
                notes.append(f"{request.id}: claimed without a run, requested again")
            continue
        statuses = {r.status for r in runs}
        if statuses & {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                       dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                       dg.DagsterRunStatus.CANCELING}:  # fmt: skip
            continue
        run = runs[0]  # newest
        try:
            if run.status == dg.DagsterRunStatus.CANCELED:
                store.cancel_grid_request(request.id)
                notes.append(f"{request.id}: run {run.run_id} was cancelled")
            else:
                store.fail_grid_request(
                    request.id, f"Dagster run {run.run_id} ended {run.status.value} without finishing it"
                )
                notes.append(f"{request.id}: run {run.run_id} ended {run.status.value}")
        except IllegalTransition:  # finished meanwhile
            pass
    return requests, notes


def evaluate_grid_requests(
    context: dg.SensorEvaluationContext,
    store: WarmStore,
    *,
    limit: int = 4,
    relaunch_after: float = 300.0,
) -> dg.SensorResult:
    """One tick of `grid_request_sensor` (separate from the decorator so tests can call it)."""
    claimed = store.claim_queued_grid_requests(limit)
    requests = [run_request(r) for r in claimed]
    for r in claimed:
        context.log.info(f"grid request {r.id} ({r.body.get('strategy')}) claimed: run key {r.id}")
    again, notes = _reconcile(context, store, {r.id for r in claimed}, relaunch_after)
    for note in notes:
        context.log.info(note)
    requests += again
    skip = None if requests else ("; ".join(notes) or "no queued grid requests")
    return dg.SensorResult(run_requests=requests, skip_reason=skip)


@dg.sensor(
    name="grid_request_sensor",
    job_name=GRID_JOB,
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Claims queued grid requests (warm tier) and launches one grid_search run per request, "
    "run_key = request id; fails or cancels requests whose run ended without finishing them.",
)
def grid_request_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
    with warehouse.open() as store:
        return evaluate_grid_requests(context, store)


# ----------------------------------------------------------------------------------------- watching


def _watched_grid_sensor(
    context: dg.MultiAssetSensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    record = context.latest_materialization_records_by_key().get(KLINES)
    if record is None:
        return dg.SensorResult(skip_reason="no new klines_daily materialization")
    with warehouse.open() as store:
        submitted = submit_reruns(store, record.storage_id, record.partition_key, record.timestamp)
    context.advance_all_cursors()
    for r in submitted:
        context.log.info(f"watched grid search {r.body['origin']['request_id']}: re-run {r.id} ({r.status})")
    if not submitted:
        return dg.SensorResult(
            skip_reason=f"klines_daily updated (storage id {record.storage_id}); no watched searches"
        )
    return dg.SensorResult(skip_reason=f"submitted {len(submitted)} watched re-run(s)")


# Dagster recommends declarative automation over multi-asset sensors for launching runs; this sensor
# launches nothing, it has a side effect (new grid requests), which is what such sensors remain for.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    watched_grid_sensor = dg.multi_asset_sensor(
        monitored_assets=[KLINES],
        name="watched_grid_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-runs watched grid searches (watch: true) once per new klines_daily update, as new "
        "grid requests keyed by request id + klines materialization storage id.",
    )(_watched_grid_sensor)
