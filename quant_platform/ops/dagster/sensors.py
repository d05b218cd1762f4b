"""Notification sensors: failed runs, blocked quality checks, finished or failed grid searches.

Each tick reads what happened since its cursor (a storage id of the Dagster event log, or the
`finished_at` of the last grid request it told about), sends one message per event through
`ops.notify.send` and moves the cursor past them, so a restart or the next tick never resends. With
no cursor yet (a new instance, a sensor just turned on) only the last `LOOKBACK_SECONDS` count: turning
notifications on does not replay a year of history. Without `QP_NOTIFY_URLS` the sensors skip and
keep their cursor. A channel that fails is retried and logged by `send`, which never raises: the tick
goes on, the cursor moves, nothing else fails.

They launch no runs and never open the cold store (whose embedded engine allows one process).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence

import dagster as dg

from quant_platform.conventions import GRID_REQUEST_TAG, run_partition_keys
from quant_platform.ops import notify
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.settings import settings
from quant_platform.storage.warm import WarmStore

LOOKBACK_SECONDS = 24 * 3600
BATCH = 100
Sender = Callable[[Sequence[str], notify.Notice], bool]


def _partition_text(tags) -> str | None:
    keys = run_partition_keys(tags)
    if keys is None:
        return None
    return keys[0] if keys[0] == keys[1] else f"{keys[0]} .. {keys[1]}"


def _meta(value):
    return getattr(value, "value", value)


# --------------------------------------------------------------------------------------- failed runs


def failed_run_notices(
    instance: dg.DagsterInstance, cursor: str | None, *, now: float | None = None
) -> tuple[list[notify.Notice], str | None]:
    """(one notice per run failure after `cursor`, the new cursor). Grid runs are told by the grid sensor."""
    from quant_platform.runner import first_error

    after = int(cursor) if cursor else None
    since = None if after is not None else (now or time.time()) - LOOKBACK_SECONDS
    records = instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(
            event_type=dg.DagsterEventType.RUN_FAILURE, after_storage_id=after, after_timestamp=since
        ),
        limit=BATCH,
        ascending=True,
    ).records
    notices = []
    for record in records:
        after = max(after or 0, record.storage_id)
        run = instance.get_run_by_id(record.event_log_entry.run_id)
        if run is None or GRID_REQUEST_TAG in run.tags or _only_blocked_checks(instance, run.run_id):
            continue
        error = _user_error(instance, run.run_id) or first_error(instance, run.run_id)
        notices.append(notify.run_failed(run.job_name, run.run_id, _partition_text(run.tags), error))
    return notices, (str(after) if after is not None else cursor)


def _user_error(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """`step: ExceptionType: message` of the run's first failed step, under Dagster's wrapper error."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE, limit=1).records
    for record in records:
        event = record.event_log_entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event is not None else None
        while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
            error = error.cause
        if error is not None and error.message:
            return f"{event.step_key}: {error.message.strip().splitlines()[0]}"
    return None


def _only_blocked_checks(instance: dg.DagsterInstance, run_id: str) -> bool:
    """True when every failed step of the run is a blocking check that failed: the check sensor tells
    that (table, day, rule, share), so the run's own failure would be the same news twice."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.STEP_FAILURE, limit=100
    ).records
    kinds = set()
    for record in records:
        event = record.event_log_entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event is not None else None
        kinds.add(getattr(error, "cls_name", None))
    return bool(kinds) and kinds == {"DagsterAssetCheckFailedError"}


# ------------------------------------------------------------------------------------ blocked checks


def quality_check_keys() -> list[dg.AssetCheckKey]:
    """The blocking checks of the definitions (daily tables and options)."""
    from quant_platform.checks.asset_checks import QUALITY_CHECKS
    from quant_platform.options.dagster import OPTIONS_CHECKS

    return [key for checks in (*QUALITY_CHECKS, *OPTIONS_CHECKS) for key in checks.check_keys]


def blocked_check_notices(
    instance: dg.DagsterInstance,
    cursor: str | None,
    *,
    keys: Sequence[dg.AssetCheckKey] | None = None,
    now: float | None = None,
) -> tuple[list[notify.Notice], str | None]:
    """(one notice per failed ERROR-severity check evaluation after `cursor`, the new cursor).

    Reads the instance's check-execution index (ids unique on every storage, unlike event ids of
    the run-sharded SQLite event log); the cursor is the highest execution id told about.
    """
    after = int(cursor) if cursor else None
    since = (now or time.time()) - LOOKBACK_SECONDS
    found = []
    for key in keys if keys is not None else quality_check_keys():
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=BATCH):
            if (after is not None and record.id <= after) or (
                after is None and record.create_timestamp < since
            ):
                continue
            found.append(record)
    found.sort(key=lambda r: r.id)
    notices = []
    for record in found:
        event = record.event.dagster_event if record.event is not None else None
        evaluation = event.event_specific_data if event is not None else None
        if not hasattr(evaluation, "passed"):  # planned: its row gets the evaluation later, same id
            run = instance.get_run_by_id(record.run_id)
            if run is not None and not run.is_finished:
                break  # the cursor stays before it until its run ends
            after = max(after or 0, record.id)
            continue
        after = max(after or 0, record.id)
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        meta = {k: _meta(v) for k, v in (evaluation.metadata or {}).items()}
        rules = {k.removeprefix("rule/"): float(v) for k, v in meta.items() if k.startswith("rule/")}
        for rule, rows in (meta.get("quarantined_by_rule") or {}).items():
            rules.setdefault(f"{rule} (rows)", float(rows))
        run = instance.get_run_by_id(record.run_id)
        days = meta.get("days") or (_partition_text(run.tags) if run is not None else None) or "-"
        share = meta.get("quarantined_share")
        notices.append(
            notify.check_blocked(
                evaluation.asset_key.to_user_string(),
                str(days),
                rules,
                float(share) if share is not None else None,
                evaluation.description or "",
                record.run_id,
            )
        )
    return notices, (str(after) if after is not None else cursor)


# ------------------------------------------------------------------------------------- grid searches


def grid_notices(
    store: WarmStore, cursor: str | None, *, now: dt.datetime | None = None
) -> tuple[list[notify.Notice], str | None]:
    """(one notice per grid request that ended succeeded or failed after `cursor`, the new cursor).

    The cursor is `{"t": finished_at of the newest told, "ids": requests told at that instant}`.
    """
    state = json.loads(cursor) if cursor else {}
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    since = (
        dt.datetime.fromisoformat(state["t"])
        if state.get("t")
        else now - dt.timedelta(seconds=LOOKBACK_SECONDS)
    )
    told = set(state.get("ids", []))
    ended = [
        r
        for status in ("succeeded", "failed")
        for r in store.list_grid_requests(status=status, limit=500)
        if r.finished_at is not None and _naive(r.finished_at) >= since and r.id not in told
    ]
    ended.sort(key=lambda r: (_naive(r.finished_at), r.id))
    notices = []
    for r in ended[:BATCH]:
        summary = r.summary or {}
        extra = {
            label: float(summary[key])
            for key, label in (("pbo", "PBO"), ("deflated_sharpe", "deflated Sharpe"))
            if isinstance(summary.get(key), int | float)
        }
        notices.append(
            notify.grid_done(r.id, r.status.value, r.body.get("strategy"), r.best_params, r.error, extra)
        )
        t = _naive(r.finished_at)
        if t > since:
            since, told = t, set()
        told.add(r.id)
    if not ended and not cursor:
        return notices, None
    return notices, json.dumps({"t": since.isoformat(), "ids": sorted(told)})


def _naive(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


# ----------------------------------------------------------------------------------------- collector

COLLECTOR = (
    "quant-platform collector"  # the `producer` of the collector's observations (collector/observe.py)
)


def collector_notices(
    instance: dg.DagsterInstance, cursor: str | None, silence: float, *, now: float | None = None
) -> tuple[list[notify.Notice], str | None]:
    """One notice when the collector's newest observation of `raw_quotes` is older than `silence`
    seconds (and younger than the lookback: a collector long gone is not news); the cursor is the
    storage id of the observation told about, so one silence is one message."""
    if silence <= 0:
        return [], cursor
    now = now or time.time()
    records = instance.fetch_observations(dg.AssetKey("raw_quotes"), limit=50).records  # newest first
    for record in records:
        meta = record.asset_observation.metadata if record.asset_observation else {}
        if _meta(meta.get("producer")) != COLLECTOR:
            continue
        age = now - record.timestamp
        if age <= silence or age > LOOKBACK_SECONDS or str(record.storage_id) == cursor:
            return [], cursor
        seen = dt.datetime.fromtimestamp(record.timestamp, dt.UTC).isoformat(timespec="seconds")
        notice = notify.collector_silent(seen, age, _meta(meta.get("source")), _meta(meta.get("watermark")))
        return [notice], str(record.storage_id)
    return [], cursor


# ------------------------------------------------------------------------------------------- sensors


def deliver(
    context: dg.SensorEvaluationContext,
    found: tuple[list[notify.Notice], str | None],
    urls: Sequence[str],
    sender: Sender = notify.send,
) -> dg.SensorResult:
    """Send each notice (failures are logged by the sender, never raised) and move the cursor."""
    notices, cursor = found
    failed = 0
    for notice in notices:
        if not sender(urls, notice):
            failed += 1
    if notices:
        context.log.info(f"sent {len(notices)} notification(s), {failed} not delivered to every channel")
    reason = f"{len(notices)} notification(s)" + (f", {failed} with a failing channel" if failed else "")
    return dg.SensorResult(skip_reason=reason, cursor=cursor)


def _urls_or_skip() -> tuple[str, ...] | None:
    return settings().notify_urls or None


NO_CHANNELS = "QP_NOTIFY_URLS is not set: no notifications"


@dg.sensor(
    name="notify_failed_runs",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One message per failed run (job, partition, first error) to QP_NOTIFY_URLS.",
)
def notify_failed_runs(context: dg.SensorEvaluationContext):
    urls = _urls_or_skip()
    if urls is None:
        return dg.SkipReason(NO_CHANNELS)
    return deliver(context, failed_run_notices(context.instance, context.cursor), urls)


@dg.sensor(
    name="notify_blocked_checks",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One message per blocking quality check that failed (table, day, rule, share).",
)
def notify_blocked_checks(context: dg.SensorEvaluationContext):
    urls = _urls_or_skip()
    if urls is None:
        return dg.SkipReason(NO_CHANNELS)
    return deliver(context, blocked_check_notices(context.instance, context.cursor), urls)


@dg.sensor(
    name="notify_grid_searches",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One message per grid search that finished (best parameters) or failed (its error).",
)
def notify_grid_searches(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    urls = _urls_or_skip()
    if urls is None:
        return dg.SkipReason(NO_CHANNELS)
    with warehouse.open() as store:
        found = grid_notices(store, context.cursor)
    return deliver(context, found, urls)


@dg.sensor(
    name="notify_collector_silence",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One message when the streaming collector has reported no observation for "
    "QP_NOTIFY_COLLECTOR_SILENCE seconds (stopped or unhealthy).",
)
def notify_collector_silence(context: dg.SensorEvaluationContext):
    urls = _urls_or_skip()
    if urls is None:
        return dg.SkipReason(NO_CHANNELS)
    silence = settings().notify_collector_silence
    return deliver(context, collector_notices(context.instance, context.cursor, silence), urls)
