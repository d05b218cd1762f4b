"""Scale-out: the grid_search job with the Celery executor, its steps run by one real Celery worker.

The worker is a subprocess (`celery -A dagster_celery.app worker --pool=solo`) on the Redis broker,
listening on a queue of this test only. It runs one step at a time, so only one process holds the
embedded cold store at any moment: the worker's load step opens it, reads the klines and closes it;
its write step does the same. The test process only orchestrates (and reads the results after the
run). The Dagster instance is persistent (SQLite under a temporary DAGSTER_HOME), because the worker
loads the run from it, and the fs IO manager passes step outputs through that directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableJob

from quant_platform import grid
from quant_platform.storage.cold import ColdStore
from quant_platform.storage.warm import Status

pytest.importorskip("dagster_celery", reason="needs the celery extra: pip install 'quant-platform[celery]'")

CELERY_REDIS_DB = int(os.environ.get("QP_TEST_CELERY_REDIS_DB", "12"))
WORKER_START_TIMEOUT = 60.0
RUN_TIMEOUT = 120.0
JOB_FILE = Path(__file__).with_name("celery_job.py")


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"celery worker exited with {proc.returncode}:\n{path.read_text()[-3000:]}")
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"celery worker not ready after {timeout}s:\n{path.read_text()[-3000:]}")


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(proc.pid, sig)


@pytest.fixture
def celery_env(qp_home, chdb_path, redis_url, monkeypatch, tmp_path):
    """Environment shared by the test and the worker; a dagster.yaml with SQLite storage."""
    import redis

    broker = redis_url.rsplit("/", 1)[0] + f"/{CELERY_REDIS_DB}"
    queue = f"qp-grid-test-{uuid.uuid4().hex[:8]}"
    home = qp_home / "dagster"
    (home / "dagster.yaml").write_text(
        f"storage:\n  sqlite:\n    base_dir: {home / 'storage'}\ntelemetry:\n  enabled: false\n"
    )
    monkeypatch.setenv("QP_TEST_CELERY_BROKER", broker)
    monkeypatch.setenv("QP_TEST_CELERY_QUEUE", queue)
    yield {"broker": broker, "queue": queue, "home": home}
    client = redis.Redis.from_url(broker)
    client.delete(queue)
    client.close()


@pytest.fixture
def worker(celery_env, tmp_path):
    """One Celery worker, solo pool (steps run in its own process), killed at the end whatever happens."""
    config_dir = tmp_path / "celery_config"
    config_dir.mkdir()
    (config_dir / "dagster_celery_config.py").write_text(
        f"broker_url = {celery_env['broker']!r}\nresult_backend = {celery_env['broker']!r}\n"
        f"task_default_queue = {celery_env['queue']!r}\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(config_dir), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "worker.log"
    cmd = [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker", "--pool=solo",
           "--concurrency=1", "--prefetch-multiplier=1", "-Q", celery_env["queue"],
           "-n", f"{celery_env['queue']}@%h", "--loglevel=INFO", "--without-heartbeat",
           "--without-gossip", "--without-mingle"]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(log, "ready.", proc, WORKER_START_TIMEOUT)
        yield proc, log
    finally:
        _kill_group(proc, signal.SIGTERM)  # its own session: the worker and anything it started
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered")
def test_grid_search_steps_run_on_a_celery_worker(celery_env, worker, warm, chdb_path):
    proc, log = worker
    req = grid.submit("sma_cross", {"fast": "3:15:3", "slow": "10,20,30"}, universe="all",
                      start="2024-03-01", end="2024-05-31", batch_size=5, store=warm)  # fmt: skip
    (claimed,) = warm.claim_queued_grid_requests(1)
    assert claimed.id == req.id

    from quant_platform.grid.runs import run_config, run_tags

    instance = dg.DagsterInstance.from_config(str(celery_env["home"]))
    try:
        recon = ReconstructableJob.for_file(str(JOB_FILE), "celery_grid_job")
        t0 = time.monotonic()
        result = dg.execute_job(recon, instance, run_config=run_config(req.id), tags=run_tags(claimed))
        assert time.monotonic() - t0 < RUN_TIMEOUT
        assert result.success, log.read_text()[-3000:]
        starts = [
            e.dagster_event
            for e in instance.all_logs(result.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
        ]
        # load, 3 batches (13 valid combinations, 5 per batch), write: all in the worker's process
        assert len(starts) == 5
        assert {e.pid for e in starts} == {proc.pid} and proc.pid != os.getpid()
        engine = [
            e.message for e in instance.all_logs(result.run_id) if "in celery worker" in (e.message or "")
        ]
        assert len(engine) == 5
    finally:
        instance.dispose()

    done = warm.get_grid_request(req.id)
    assert done.status is Status.SUCCEEDED and done.progress == 100.0 and done.best_params
    with ColdStore(f"chdb://{chdb_path}") as cold:
        ranked = cold.grid_results(req.id)
    assert len(ranked) == 13 and ranked["rank"].iloc[0] == 1
