"""grid_request_sensor (queued requests -> runs, exactly once) and watched_grid_sensor (new klines ->
re-runs), evaluated with real Dagster instances and the warm tier."""

from __future__ import annotations

import dagster as dg

from quant_platform import grid
from quant_platform.conventions import EMBEDDED_TAG, GRID_REQUEST_TAG, GRID_TAG
from quant_platform.grid.dagster.ops import request_id_of_run
from quant_platform.grid.dagster.sensors import (
    evaluate_grid_requests,
    grid_request_sensor,
    watched_grid_sensor,
)
from quant_platform.storage.warm import Status


def _submit(warm, **kw):
    args = dict(universe="all", start="2024-03-01", end="2024-05-31", store=warm)
    return grid.submit("sma_cross", {"fast": "3:9:3", "slow": "10,20"}, **{**args, **kw})


def _tick(instance, resources):
    with dg.build_sensor_context(instance=instance, resources={"warehouse": resources["warehouse"]}) as ctx:
        return grid_request_sensor(ctx)


def test_sensor_needs_only_the_warm_tier():
    assert grid_request_sensor.required_resource_keys == {"warehouse"}
    assert watched_grid_sensor.required_resource_keys == {"warehouse"}
    assert grid_request_sensor.job_name == "grid_search"


def test_each_queued_request_becomes_one_run_request_exactly_once(warm, instance, resources):
    a, b = _submit(warm), _submit(warm, objective="sortino")
    first = _tick(instance, resources)
    assert sorted(r.run_key for r in first.run_requests) == sorted([a.id, b.id])
    for r in first.run_requests:
        assert r.tags[GRID_REQUEST_TAG] == r.run_key and r.tags[GRID_TAG] == "true"
        assert r.tags[EMBEDDED_TAG] == "true"
        load = r.run_config["ops"]["grid_search_results"]["ops"]["grid_load_klines"]
        assert load["config"]["request_id"] == r.run_key
    assert {warm.get_grid_request(i).status for i in (a.id, b.id)} == {Status.RUNNING}

    second = _tick(instance, resources)
    assert second.run_requests == [] and "no queued grid requests" in second.skip_reason.skip_message
    c = _submit(warm, objective="calmar")
    third = _tick(instance, resources)
    assert [r.run_key for r in third.run_requests] == [c.id]


def test_claims_without_a_run_are_requested_again_with_the_same_key(warm, instance):
    req = _submit(warm)
    with dg.build_sensor_context(instance=instance) as ctx:
        assert [r.run_key for r in evaluate_grid_requests(ctx, warm).run_requests] == [req.id]
    with dg.build_sensor_context(instance=instance) as ctx:  # run never created (a crashed tick)
        again = evaluate_grid_requests(ctx, warm, relaunch_after=0)
    assert [r.run_key for r in again.run_requests] == [req.id]


@dg.op
def _boom():
    raise RuntimeError("worker died")


@dg.job
def _dead_job():
    _boom()


def test_requests_whose_run_died_are_failed_or_cancelled(warm, instance):
    failed, cancelled = _submit(warm), _submit(warm, objective="sortino")
    with dg.build_sensor_context(instance=instance) as ctx:
        evaluate_grid_requests(ctx, warm)
    dead = _dead_job.execute_in_process(
        instance=instance, tags={GRID_REQUEST_TAG: failed.id}, raise_on_error=False
    )
    assert not dead.success
    run = instance.create_run_for_job(_dead_job, tags={GRID_REQUEST_TAG: cancelled.id})
    instance.report_run_canceled(run)
    assert request_id_of_run(instance.get_run_by_id(run.run_id)) == cancelled.id

    with dg.build_sensor_context(instance=instance) as ctx:
        result = evaluate_grid_requests(ctx, warm, relaunch_after=0)
    assert result.run_requests == []
    f = warm.get_grid_request(failed.id)
    assert f.status is Status.FAILED and f"Dagster run {dead.run_id} ended FAILURE" in f.error
    assert warm.get_grid_request(cancelled.id).status is Status.CANCELLED


def _watch_tick(instance, defs, resources, cursor=None):
    with dg.build_multi_asset_sensor_context(
        monitored_assets=[dg.AssetKey("klines_daily")],
        instance=instance,
        definitions=defs,
        resources={"warehouse": resources["warehouse"]},
        cursor=cursor,
    ) as ctx:
        result = watched_grid_sensor(ctx)
        return result, ctx.cursor


def _klines_update(instance, day):
    instance.report_runless_asset_event(dg.AssetMaterialization("klines_daily", partition=day))
    return instance.fetch_materializations(dg.AssetKey("klines_daily"), limit=1).records[0].storage_id


def test_watched_searches_rerun_once_per_klines_update(warm, instance, defs, resources):
    watched = _submit(warm, watch=True)
    _submit(warm, objective="sortino")  # not watched
    grid.cancel(_submit(warm, watch=True, objective="calmar").id, store=warm)  # cancelled: unwatched

    result, cursor = _watch_tick(instance, defs, resources)
    assert "no new klines_daily materialization" in result.skip_reason.skip_message

    sid = _klines_update(instance, "2024-06-03")
    result, cursor = _watch_tick(instance, defs, resources, cursor)
    reruns = [r for r in warm.list_grid_requests(limit=100) if r.body.get("origin")]
    assert len(reruns) == 1
    rerun = reruns[0]
    assert rerun.idempotency_key == f"watch:{watched.id}:{sid}" and rerun.status is Status.QUEUED
    assert rerun.body["origin"] == {
        "request_id": watched.id,
        "klines_storage_id": sid,
        "partition": "2024-06-03",
    }
    assert (rerun.body["start"], rerun.body["end"]) == ("2024-03-04", "2024-06-03")  # window rolled forward
    assert rerun.body["watch"] is False and rerun.body["grid"] == watched.body["grid"]

    result, cursor = _watch_tick(instance, defs, resources, cursor)  # nothing new
    assert len([r for r in warm.list_grid_requests(limit=100) if r.body.get("origin")]) == 1
    _watch_tick(instance, defs, resources, None)  # a reset cursor does not duplicate re-runs
    assert len([r for r in warm.list_grid_requests(limit=100) if r.body.get("origin")]) == 1

    sid2 = _klines_update(instance, "2024-06-04")
    _watch_tick(instance, defs, resources, cursor)
    keys = sorted(r.idempotency_key for r in warm.list_grid_requests(limit=100) if r.body.get("origin"))
    assert keys == sorted([f"watch:{watched.id}:{sid}", f"watch:{watched.id}:{sid2}"])

    # the re-runs are ordinary queued requests: the request sensor launches them
    launched = _tick(instance, resources)
    assert {r.run_key for r in launched.run_requests} >= {rerun.id}
