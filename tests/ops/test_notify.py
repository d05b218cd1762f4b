"""Notifications end to end: real events in a Dagster instance and the warm tier, the sensors' ticks,
apprise posting JSON to a webhook receiver on 127.0.0.1: one message per event, none on the next tick."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from quant_platform.ops import notify
from quant_platform.ops.dagster import sensors
from quant_platform.partitions import daily_partitions
from quant_platform.resources.warehouse import WarehouseResource


class Receiver:
    """A local webhook: keeps every JSON body posted to it; `fail` answers 500 instead."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.fail = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.fail:
                    self.send_response(500)
                else:
                    outer.messages.append(json.loads(body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch, qp_home):
    r = Receiver()
    monkeypatch.setenv("QP_NOTIFY_URLS", r.url)
    yield r
    r.close()


@dg.op
def explode() -> None:
    raise RuntimeError("vendor returned HTTP 502 for https://user:hunter2@vendor.example/quotes")


@dg.job
def broken_job() -> None:
    explode()


@dg.asset(partitions_def=daily_partitions, name="klines_daily")
def fake_klines() -> None:
    return None


@dg.asset_check(asset=fake_klines, name="quality_gate", blocking=True)
def fake_gate() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description="quarantined share 3.0000% above 1.0000%",
        metadata={"days": "2024-01-03", "quarantined_share": 0.03, "quarantined_by_rule": {"ohlc_order": 42}},
    )


def tick(sensor, instance, cursor=None, **resources):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources or None)
    result = sensor(context)
    return result, getattr(result, "cursor", None)


def test_failed_run_blocked_check_and_grid_each_send_one_message(receiver, qp_home):
    instance = dg.DagsterInstance.get()
    broken_job.execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/partition": "2024-01-03"}
    )
    dg.materialize(
        [fake_klines, fake_gate], partition_key="2024-01-03", instance=instance, raise_on_error=False
    )

    warehouse = WarehouseResource(url=f"sqlite:///{qp_home / 'warehouse.sqlite'}")
    with warehouse.open() as store:
        request = store.submit_grid_request({"strategy": "sma_cross"}, "key-1")
        store.claim_queued_grid_requests(1)
        store.finish_grid_request(request.id, best_params={"fast": 5, "slow": 20})
        store.set_grid_summary(request.id, {"pbo": 0.4375, "deflated_sharpe": 0.12, "stopped": "completed"})

    _, c1 = tick(sensors.notify_failed_runs, instance)
    _, c2 = tick(sensors.notify_blocked_checks, instance)
    _, c3 = tick(sensors.notify_grid_searches, instance, warehouse=warehouse)
    assert len(receiver.messages) == 3
    failed, blocked, grid = receiver.messages
    assert "broken_job" in failed["title"] and "2024-01-03" in failed["message"]
    assert "explode" in failed["message"] and "vendor returned HTTP 502" in failed["message"]
    assert "hunter2" not in json.dumps(receiver.messages)  # no secret leaves the platform
    assert "klines_daily" in blocked["title"] and "2024-01-03" in blocked["message"]
    assert "ohlc_order" in blocked["message"] and "3.0000%" in blocked["message"]
    assert request.id in grid["title"] and "fast=5" in grid["message"]
    assert "PBO: 0.4375" in grid["message"] and "deflated Sharpe: 0.12" in grid["message"]

    # the next ticks (or a restarted daemon, which keeps the cursors) send nothing again
    tick(sensors.notify_failed_runs, instance, c1)
    tick(sensors.notify_blocked_checks, instance, c2)
    tick(sensors.notify_grid_searches, instance, c3, warehouse=warehouse)
    assert len(receiver.messages) == 3

    # a new failure after the cursor is one more message
    broken_job.execute_in_process(instance=instance, raise_on_error=False)
    tick(sensors.notify_failed_runs, instance, c1)
    assert len(receiver.messages) == 4


def test_a_failing_channel_is_retried_logged_and_never_raises(receiver, caplog):
    receiver.fail = True
    ok = notify.send([receiver.url], notify.run_failed("j", "r1", None, "boom"), attempts=2, backoff=0.01)
    assert ok is False
    assert "given up after 2 attempts" in caplog.text
    assert "127.0.0.1" not in caplog.text  # channel URLs (tokens) are not logged
    receiver.fail = False
    assert notify.send([receiver.url], notify.run_failed("j", "r1", None, "boom"))
    assert len(receiver.messages) == 1


def test_without_channels_the_sensors_skip(qp_home, monkeypatch):
    monkeypatch.delenv("QP_NOTIFY_URLS", raising=False)
    result, _ = tick(sensors.notify_failed_runs, dg.DagsterInstance.get())
    assert "QP_NOTIFY_URLS" in result.skip_message


def test_scrub_removes_credentials():
    text = "dsn mysql+pymysql://qp:s3cret@db:3306/x password=abc token: xyz key qp_ab12_ABCDEFGHIJKL"
    clean = notify.scrub(text, ["json://h/tok123"])
    assert "s3cret" not in clean and "abc" not in clean and "xyz" not in clean and "ABCDEFGH" not in clean
    assert "mysql+pymysql://***@db:3306/x" in clean


def test_a_silent_collector_is_one_message(receiver, qp_home, monkeypatch):
    import time

    import pandas as pd

    from quant_platform.collector.observe import report_observation

    instance = dg.DagsterInstance.get()
    report_observation(instance, rows=10, watermark=pd.Timestamp("2026-01-01T00:00:00Z"), pairs=2,
                       source="binance", table="crypto_ticks")  # fmt: skip
    found, cursor = sensors.collector_notices(instance, None, silence=600)
    assert found == [] and cursor is None  # fresh: healthy
    later = time.time() + 900
    found, cursor = sensors.collector_notices(instance, None, silence=600, now=later)
    assert len(found) == 1 and "binance" in found[0].body and cursor
    assert sensors.collector_notices(instance, cursor, silence=600, now=later + 300) == ([], cursor)
    monkeypatch.setenv("QP_NOTIFY_COLLECTOR_SILENCE", "0.001")
    time.sleep(0.05)
    tick(sensors.notify_collector_silence, instance)
    assert len(receiver.messages) == 1 and "collector silent" in receiver.messages[0]["title"]
