"""`:cancel` in Dagster too: a request cancelled while queued is never executed, and the Dagster run
that holds it leaves the queue once no other live request of its batch is left; cancelling is
idempotent (204). The Dagster run is a real run, not yet launched, in the API's own instance
($DAGSTER_HOME)."""

from __future__ import annotations

import dagster as dg

from quant_platform.api.dagster import API_JOBS
from quant_platform.api.dagster.runs import run_config, run_tags
from quant_platform.api.dagster.sensors import evaluate_backtest_requests
from quant_platform.resources import ClickHouseResource, HotCacheResource, WarehouseResource
from tests.api.test_backtest_runs import backtest_body


def unlaunched_dagster_run(api, run_ids: list[str]) -> tuple[dg.DagsterInstance, str]:
    settings = api.server.settings
    defs = dg.Definitions(
        jobs=API_JOBS,
        resources={
            "clickhouse": ClickHouseResource(dsn=settings.stores.clickhouse_dsn),
            "warehouse": WarehouseResource(url=settings.stores.warehouse_url),
            "hot": HotCacheResource(url=settings.stores.redis_url),
        },
    )
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    run = instance.create_run_for_job(
        job_def=defs.resolve_job_def("backtest_request"),
        run_config=run_config(run_ids),
        tags=run_tags(run_ids, ["sma_cross"] * len(run_ids)),
        status=dg.DagsterRunStatus.NOT_STARTED,  # as the sensor leaves it before the queue takes it
    )
    return instance, run.run_id


def test_cancel_leaves_a_batch_running_until_its_last_live_request_is_cancelled(api):
    with api.client("trader") as c:
        bid = c.post("/api/v1/backtests", json=backtest_body()).json()["backtest_id"]
        first, second = (
            c.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "single"}).json()["run_ids"][0]
            for _ in range(2)
        )
        with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as ctx:
            (request,) = evaluate_backtest_requests(ctx, api.warm).run_requests  # one run, both requests
        assert request.run_config == run_config([first, second])
        instance, dagster_run = unlaunched_dagster_run(api, [first, second])
        try:
            assert c.post(f"/api/v1/backtests/{bid}/runs/{first}:cancel").status_code == 204
            live = instance.get_run_by_id(dagster_run).status  # `second` keeps its batch alive
            assert live == dg.DagsterRunStatus.NOT_STARTED
            assert c.post(f"/api/v1/backtests/{bid}/runs/{first}:cancel").status_code == 204  # idempotent
            assert c.post(f"/api/v1/backtests/{bid}/runs/{second}:cancel").status_code == 204
            assert instance.get_run_by_id(dagster_run).status == dg.DagsterRunStatus.CANCELED
            for run_id in (first, second):
                assert c.get(f"/api/v1/backtests/{bid}/runs/{run_id}").json()["status"] == "cancelled"
            with dg.build_sensor_context(instance=instance) as ctx:  # nothing left to launch
                assert evaluate_backtest_requests(ctx, api.warm).run_requests == []
        finally:
            instance.dispose()
