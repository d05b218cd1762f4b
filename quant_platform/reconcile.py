"""Crash leftovers in the Dagster instance, ended for good.

A killed process leaves its work half-done: a run it executed in process stays STARTED. Nobody else
finishes it, so `fail_orphaned_runs` does, before `quant-platform run` starts: runs that
`quant-platform run` executed in process (tagged with the host and pid of their process, see
`conventions.process_tags`) whose process on this host is gone are reported FAILURE, and the
concurrency-pool slots they held are freed. The daemon's run monitoring (dagster.yaml) cannot tell
these runs died: no run launcher started them.
"""

from __future__ import annotations

import dagster as dg

from quant_platform.conventions import HOST_TAG, PID_START_TAG, PID_TAG, tag_value
from quant_platform.core.processes import hostname, is_alive

# A run of a dead process may still be recorded as any of these (execute_in_process creates the run
# NOT_STARTED and reports it STARTED moments later).
ORPHAN_STATUSES = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


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
