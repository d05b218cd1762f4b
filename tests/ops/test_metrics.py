"""Pipeline metrics over real HTTP: `quant-platform metrics`' server and `/metrics` of the API, both
reading what runs recorded in the Dagster instance."""

from __future__ import annotations

import dagster as dg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from quant_platform.collector.metrics import MetricsServer
from quant_platform.ops.metrics import instance_at, registry
from quant_platform.partitions import daily_partitions
from quant_platform.settings import settings


@dg.asset(partitions_def=daily_partitions, name="klines_daily")
def fake_klines() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": 12})


@dg.asset_check(asset=fake_klines, name="quality_gate", blocking=True)
def fake_gate() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"days": "2024-01-03", "quarantined_share": 0.002})


@dg.op
def explode() -> None:
    raise RuntimeError("boom")


@dg.job
def broken_job() -> None:
    explode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def record_some_runs() -> None:
    from quant_platform.storage.warm import WarmStore

    WarmStore(settings().stores.warehouse_url).migrate()  # what any command or the API does first
    instance = dg.DagsterInstance.get()
    dg.materialize([fake_klines, fake_gate], partition_key="2024-01-03", instance=instance)
    broken_job.execute_in_process(instance=instance, raise_on_error=False)


def assert_pipeline_series(text: str) -> None:
    got = samples(text)
    assert got[("qp_pipeline_rows_written", (("asset", "klines_daily"), ("partition", "2024-01-03")))] == 12
    assert (
        got[("qp_pipeline_quarantined_ratio", (("asset", "klines_daily"), ("partition", "2024-01-03")))]
        == 0.002
    )
    passed = (("asset", "klines_daily"), ("check", "quality_gate"), ("outcome", "passed"))
    assert got[("qp_pipeline_check_evaluations_total", passed)] == 1
    assert got[("qp_pipeline_runs", (("job", "broken_job"), ("status", "FAILURE")))] == 1
    assert got[("qp_pipeline_runs", (("job", "__ephemeral_asset_job__"), ("status", "SUCCESS")))] == 1
    assert (
        "qp_pipeline_step_duration_seconds",
        (("job", "__ephemeral_asset_job__"), ("step", "klines_daily")),
    ) in got
    assert got[("qp_pipeline_queue_depth", (("queue", "grid"),))] == 0
    assert got[("qp_store_up", (("tier", "warm"),))] == 1
    assert all(name.startswith("qp_") for name, _ in got)


def test_metrics_server_serves_the_instance_records(qp_home):
    record_some_runs()
    current = settings()
    reg = registry(instance_at(current.dagster_home), current.stores.warehouse_url, current.stores.redis_url)
    server = MetricsServer(reg, lambda: (True, {}), port=0).start()
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=30)
    finally:
        server.stop()
    assert response.status_code == 200
    assert_pipeline_series(response.text)


def test_serve_has_metrics(qp_home, monkeypatch):
    from tests.api.conftest import start_api

    monkeypatch.setenv("QP_API_RATE_LIMIT", "1000/minute")
    record_some_runs()
    api = start_api(settings())
    server = next(api)
    try:
        response = httpx.get(f"{server.url}/metrics", timeout=30)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        assert_pipeline_series(response.text)
        assert "/metrics" not in httpx.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]
    finally:
        api.close()
