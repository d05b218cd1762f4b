"""Crash leftovers in the Dagster instance and the warm tier, ended for good.

A killed process leaves its work half-done: a run it executed in process stays STARTED, a backtest
record it was writing stays `running`. Nobody else finishes either, so these plain functions do,
each tick of `stale_runs_sensor` and before `quant-platform run` starts:

- `fail_orphaned_runs`: runs that `quant-platform run` executed in process (tagged with the host
  and pid of their process, see `conventions.process_tags`) whose process on this host is gone are
  reported FAILURE, and the concurrency-pool slots they held are freed. The daemon's run monitoring
  (dagster.yaml) cannot tell these runs died: no run launcher started them.
- `reconcile_backtest_records`: backtest records (`backtest_runs` asset, id
  `<dagster run id>-<retry number>`) still queued or running while their Dagster run has ended, or
  is unknown to the instance, are failed with the reason, once older than a grace period.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

import dagster as dg

from quant_platform.conventions import HOST_TAG, PID_START_TAG, PID_TAG, tag_value
from quant_platform.core.processes import hostname, is_alive
from quant_platform.storage.warm import IllegalTransition, NotFound, Status, WarmStore

# A run of a dead process may still be recorded as any of these (execute_in_process creates the run
# NOT_STARTED and reports it STARTED moments later).
ORPHAN_STATUSES = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# A Dagster run in any of these may still finish its backtest: its records are left alone.
UNFINISHED = frozenset(
    {
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
        dg.DagsterRunStatus.SUSPENDED,
    }
)
RECORD_GRACE_SECONDS = 600.0
_RECORD_ID = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-\d+$")


def _int_tag(tags: dict[str, str], key: str) -> int | None:
    try:
        return int(tags[key])
    except (KeyError, ValueError):
        return None


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Report FAILURE for every unfinished in-process run whose process on this host is gone (or is
    another process reusing its pid); free the pool slots those runs held. Returns their run ids.

    Only runs tagged with this host are looked at: whether a pid on another machine lives cannot be
    told from here. Runs a launcher started (from the UI, a schedule or a sensor, including
    re-executions that copied a CLI run's tags) are never touched: the code server that launched
    them and the daemon's run monitoring look after those.
    """
    host = tag_value(hostname())
    failed: list[str] = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=ORPHAN_STATUSES, tags={HOST_TAG: host}), limit=1000
    )
    for record in records:
        run = record.dagster_run
        pid = _int_tag(run.tags, PID_TAG)
        if pid is None or run.remote_job_origin is not None:
            continue
        if is_alive(pid, _int_tag(run.tags, PID_START_TAG)):
            continue
        current = instance.get_run_by_id(run.run_id)  # another reconciler may have been first
        if current is None or current.status not in ORPHAN_STATUSES:
            continue
        instance.report_run_failed(
            current,
            f"Process {pid} on {host}, which executed this run in process, is gone (killed or "
            "crashed); the run cannot finish and is marked failed.",
        )
        _free_pool_slots(instance, run.run_id)
        failed.append(run.run_id)
    return failed


def _free_pool_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    """Give back the concurrency-pool slots (e.g. `cold_store`) a dead run's steps held: with the
    in-process executor they died with the process, and a held slot would block the pool forever
    (the daemon frees such slots too, `free_slots_after_run_end_seconds`, but only where it runs)."""
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        storage.free_concurrency_slots_for_run(run_id)


def dagster_run_id(record_id: str) -> str | None:
    """The Dagster run of a backtest record id `<run id>-<retry number>`; None for other ids."""
    match = _RECORD_ID.match(record_id)
    return match.group(1) if match else None


def _age_seconds(ts: dt.datetime | None, now: dt.datetime) -> float:
    return (now - ts).total_seconds() if ts is not None else 0.0


def reconcile_backtest_records(
    instance: dg.DagsterInstance,
    warm: WarmStore,
    grace_seconds: float = RECORD_GRACE_SECONDS,
    *,
    limit: int = 1000,
) -> list[str]:
    """Fail the queued or running backtest records whose Dagster run has ended (SUCCESS, FAILURE,
    CANCELED) or is unknown to `instance`, once they have been in that status for `grace_seconds`.
    Returns one note per record failed.

    Records whose id is not `<dagster run id>-<retry>` were not written by a Dagster run and are
    left alone. Failing a record that finished meanwhile is skipped, not an error.
    """
    now = dt.datetime.now(dt.UTC)
    candidates = []
    for status in (Status.RUNNING, Status.QUEUED):
        for record in warm.list_runs(status=status.value, limit=limit):
            run_id = dagster_run_id(record.id)
            since = record.started_at or record.created_at
            if run_id is not None and _age_seconds(since, now) >= grace_seconds:
                candidates.append((record, run_id))
    if not candidates:
        return []
    runs = _runs_by_id(instance, {run_id for _, run_id in candidates})
    notes: list[str] = []
    for record, run_id in candidates:
        run = runs.get(run_id)
        if run is not None and run.status in UNFINISHED:
            continue
        reason = (
            f"Dagster run {run_id} ended {run.status.value} without finishing this backtest"
            if run is not None
            else f"Dagster run {run_id} is unknown to the Dagster instance (deleted, or run on another "
            "instance) and did not finish this backtest"
        )
        try:
            warm.fail_run(record.id, reason)
        except (IllegalTransition, NotFound):  # finished or removed meanwhile
            continue
        notes.append(f"backtest record {record.id} failed: {reason}")
    return notes


def _runs_by_id(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> dict[str, dg.DagsterRun]:
    ids = sorted(run_ids)
    found: dict[str, dg.DagsterRun] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for run in instance.get_runs(filters=dg.RunsFilter(run_ids=chunk), limit=len(chunk)):
            found[run.run_id] = run
    return found
