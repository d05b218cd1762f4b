"""Crash leftovers: runs of a killed `quant-platform run` process are failed (and their pool slots
freed), backtest records of ended runs are failed; live work is never touched. Real child processes,
a real SQLite Dagster instance and a real SQLite warm tier."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import dagster as dg
import pytest

from quant_platform.conventions import HOST_TAG, PID_START_TAG, PID_TAG, process_tags
from quant_platform.core.processes import current, is_alive, start_ticks
from quant_platform.reconcile import dagster_run_id, fail_orphaned_runs, reconcile_backtest_records
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.sensors.reconcile import evaluate_stale_runs, stale_runs_sensor
from quant_platform.storage.warm import Status, WarmStore

ROOT = Path(__file__).resolve().parents[1]

# A `quant-platform run` stand-in: executes a job in process, tagged like runner.py tags its runs,
# and hangs inside a step (holding the cold_store pool slot when asked to) until it is killed.
CHILD = textwrap.dedent(
    """
    import sys, time
    import dagster as dg
    from quant_platform.conventions import process_tags

    @dg.op(pool="cold_store" if sys.argv[1] == "pool" else None)
    def hang():
        print("in step", flush=True)
        time.sleep(600)

    @dg.job
    def cli_range():
        hang()

    with dg.DagsterInstance.get() as instance:
        cli_range.execute_in_process(instance=instance, tags=process_tags())
    """
)


@dg.op
def _noop():
    pass


@dg.job
def _other():
    _noop()


@pytest.fixture
def instance(qp_home):
    """The local deployment's instance (the repository's dagster.yaml: pool cold_store, limit 1)."""
    shutil.copy(ROOT / "dagster.yaml", qp_home / "dagster" / "dagster.yaml")
    with dg.DagsterInstance.get() as inst:
        yield inst


def _start_child(mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_in_step(child: subprocess.Popen) -> None:
    line = child.stdout.readline()  # the child prints once its run is STARTED and inside the step
    assert line.strip() == "in step", child.stderr.read() if child.poll() is not None else line


def _run_of(instance, pid: int) -> dg.DagsterRun:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={PID_TAG: str(pid)}))
    assert len(runs) == 1
    return runs[0]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_process_tags_name_this_process():
    tags = process_tags()
    me = current()
    assert tags[HOST_TAG] == me.host[:63] and tags[PID_TAG] == str(os.getpid())
    if me.start is not None:
        assert tags[PID_START_TAG] == str(me.start) and is_alive(os.getpid(), me.start)
        assert not is_alive(os.getpid(), me.start + 1)  # same pid, another process
    assert not is_alive(_dead_pid())


def test_runs_of_a_killed_process_are_failed_and_free_their_pool_slot(instance):
    dying, living = _start_child("pool"), _start_child("no pool")
    try:
        _wait_in_step(dying)
        _wait_in_step(living)
        dead_run, live_run = _run_of(instance, dying.pid), _run_of(instance, living.pid)
        assert dead_run.status == live_run.status == dg.DagsterRunStatus.STARTED
        slots = instance.event_log_storage.get_concurrency_info("cold_store")
        assert slots.active_run_ids == {dead_run.run_id}

        dying.send_signal(signal.SIGKILL)
        dying.wait(timeout=30)
        elsewhere = instance.create_run_for_job(  # a dead pid, but on another host: not ours to judge
            _other, tags={HOST_TAG: "another-host", PID_TAG: str(dying.pid)}
        )

        assert fail_orphaned_runs(instance) == [dead_run.run_id]
        failed = instance.get_run_by_id(dead_run.run_id)
        assert failed.status == dg.DagsterRunStatus.FAILURE
        event = instance.all_logs(dead_run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
        assert f"Process {dying.pid} on " in event.message and "is gone" in event.message
        assert instance.event_log_storage.get_concurrency_info("cold_store").active_run_ids == set()

        assert instance.get_run_by_id(live_run.run_id).status == dg.DagsterRunStatus.STARTED
        assert instance.get_run_by_id(elsewhere.run_id).status == dg.DagsterRunStatus.NOT_STARTED
        assert fail_orphaned_runs(instance) == []  # idempotent
    finally:
        for child in (dying, living):
            child.kill()
            child.wait(timeout=30)


def _launched_origin():
    """Where a run launched from a code location (UI, schedule, sensor) comes from."""
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteRepositoryOrigin

    return RemoteRepositoryOrigin(
        GrpcServerCodeLocationOrigin(host="localhost", port=4266, location_name="quant_platform"),
        "__repository__",
    ).get_job_origin("_other")


def test_runs_a_launcher_started_are_left_to_the_daemon(instance):
    """A UI re-execution of a CLI run copies its tags, but a launcher (monitored by the daemon) runs it."""
    launched = instance.create_run_for_job(
        _other,
        remote_job_origin=_launched_origin(),
        tags={**process_tags(), PID_TAG: str(_dead_pid()), PID_START_TAG: "1"},
    )
    assert fail_orphaned_runs(instance) == []
    assert instance.get_run_by_id(launched.run_id).status == dg.DagsterRunStatus.NOT_STARTED


# ------------------------------------------------------------------------------ backtest records


@pytest.fixture
def warm_url(qp_home) -> str:
    return f"sqlite:///{qp_home / 'warehouse.sqlite'}"


@pytest.fixture
def warm(warm_url):
    store = WarmStore(warm_url, retry_initial=0.01)
    store.migrate()
    store.create_strategy("sma_cross", exist_ok=True)
    yield store
    store.close()


def _record(warm: WarmStore, dagster_run: str | None, retry: int = 0, start: bool = True) -> str:
    """A backtest record as `backtest_runs` writes it: `<dagster run id>-<retry number>`."""
    rid = f"{dagster_run}-{retry}" if dagster_run else f"manual-{uuid.uuid4().hex[:8]}"
    warm.create_run("sma_cross", {"fast": 5, "slow": 20}, run_id=rid)
    if start:
        warm.start_run(rid)
    return rid


def _run(instance, status: dg.DagsterRunStatus) -> str:
    origin = _launched_origin() if status == dg.DagsterRunStatus.QUEUED else None
    run = instance.create_run_for_job(_other, status=status, remote_job_origin=origin)
    return run.run_id


def test_records_of_ended_runs_are_failed_live_ones_are_kept(instance, warm):
    S = dg.DagsterRunStatus
    failed_run, canceled_run, success_run = (_run(instance, s) for s in (S.FAILURE, S.CANCELED, S.SUCCESS))
    live_run, queued_run = _run(instance, S.STARTED), _run(instance, S.QUEUED)
    unknown_run = str(uuid.uuid4())
    crashed = _record(warm, failed_run)
    cancelled = _record(warm, canceled_run)
    retried = _record(warm, success_run, retry=0)  # attempt 0 died, attempt 1 succeeded
    warm.finish_run(_record(warm, success_run, retry=1), stats={"total_return": 0.1})
    never_started = _record(warm, failed_run, retry=2, start=False)  # died between create and start
    lost = _record(warm, unknown_run)
    running = _record(warm, live_run)
    waiting = _record(warm, queued_run)
    manual = _record(warm, None)  # not written by a Dagster run

    assert reconcile_backtest_records(instance, warm, grace_seconds=3600) == []  # still in grace
    notes = reconcile_backtest_records(instance, warm, grace_seconds=0)
    assert len(notes) == 5

    def status(rid):
        return warm.get_run(rid).status

    for rid in (crashed, cancelled, retried, never_started, lost):
        assert status(rid) is Status.FAILED
    ending = "without finishing this backtest"
    assert warm.get_run(crashed).error == f"Dagster run {failed_run} ended FAILURE {ending}"
    assert warm.get_run(cancelled).error == f"Dagster run {canceled_run} ended CANCELED {ending}"
    assert warm.get_run(retried).error == f"Dagster run {success_run} ended SUCCESS {ending}"
    assert f"Dagster run {unknown_run} is unknown to the Dagster instance" in warm.get_run(lost).error
    assert status(running) is Status.RUNNING and status(waiting) is Status.RUNNING
    assert status(manual) is Status.RUNNING
    assert reconcile_backtest_records(instance, warm, grace_seconds=0) == []  # idempotent


def test_dagster_run_id_of_record_ids():
    rid = str(uuid.uuid4())
    assert dagster_run_id(f"{rid}-0") == rid and dagster_run_id(f"{rid}-12") == rid
    assert dagster_run_id(rid) is None and dagster_run_id("manual-1") is None


def test_stale_runs_sensor_ticks_on_the_warm_tier(instance, warm, warm_url):
    assert stale_runs_sensor.required_resource_keys == {"warehouse"}
    crashed = _record(warm, _run(instance, dg.DagsterRunStatus.FAILURE))
    resources = {"warehouse": WarehouseResource(url=warm_url)}
    with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
        result = stale_runs_sensor(ctx)
    assert "no crash leftovers" in result.skip_message  # still within the default grace period
    with dg.build_sensor_context(instance=instance) as ctx:
        result = evaluate_stale_runs(ctx, warm, grace_seconds=0)
    assert f"backtest record {crashed} failed" in result.skip_message
    assert warm.get_run(crashed).status is Status.FAILED


def test_start_ticks_of_a_gone_process_are_unknown():
    assert start_ticks(_dead_pid()) is None
