"""A backtest submitted over HTTP runs in Dagster, never in the web request: it stays queued (saying
why) until `backtest_request_sensor` launches it; executing that run (in process, as the daemon would
launch it) takes it to succeeded, with stats and downloadable artifacts that another user cannot see."""

from __future__ import annotations

import csv
import io

import dagster as dg

from quant_platform.api.dagster import API_JOBS
from quant_platform.api.dagster.sensors import evaluate_backtest_requests
from quant_platform.resources import ClickHouseResource, HotCacheResource, WarehouseResource
from quant_platform.sources.synthetic import synthetic_symbols
from tests.grid.conftest import END, N_SYMBOLS, START, chdb_path  # noqa: F401 - a copy of the klines

SYMBOLS = synthetic_symbols(N_SYMBOLS)[:2]


def backtest_body(start=START, end=END):
    return {
        "strategy": "sma_cross",
        "params": {"fast": 5, "slow": 20},
        "context": {"universe": SYMBOLS, "frequency": "1d", "window": {"start": start, "end": end}},
        "notes": "api e2e",
    }


def launch(api, chdb, instance):
    """One sensor tick, then the run it requested (a batch of the pending requests), executed in process."""
    with dg.build_sensor_context(instance=instance) as ctx:
        requests = evaluate_backtest_requests(ctx, api.warm).run_requests
    defs = dg.Definitions(
        jobs=API_JOBS,
        resources={
            "clickhouse": ClickHouseResource(dsn=f"chdb://{chdb}"),
            "warehouse": WarehouseResource(url=api.server.settings.stores.warehouse_url),
            "hot": HotCacheResource(url=api.server.settings.stores.redis_url),
        },
    )
    job = defs.resolve_job_def("backtest_request")
    return [
        job.execute_in_process(run_config=r.run_config, tags=r.tags, instance=instance, raise_on_error=False)
        for r in requests
    ]


def test_single_backtest_runs_to_succeeded_in_dagster(api, chdb_path):  # noqa: F811
    instance = dg.DagsterInstance.ephemeral()
    with api.client("trader") as c, api.client("other") as other:
        bid = c.post("/api/v1/backtests", json=backtest_body()).json()["backtest_id"]
        r = c.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "single", "params": {"fast": 3}})
        assert r.status_code == 202
        (run_id,) = r.json()["run_ids"]
        queued = c.get(f"/api/v1/backtests/{bid}/runs/{run_id}").json()
        assert queued["status"] == "queued" and queued["progress"] == 0
        assert "no Dagster sensor daemon" in queued["message"] and queued["params"] == {"fast": 3, "slow": 20}

        (result,) = launch(api, chdb_path, instance)
        assert result.success
        with dg.build_sensor_context(instance=instance) as ctx:  # launched once: nothing more to request
            assert evaluate_backtest_requests(ctx, api.warm).run_requests == []

        done = c.get(f"/api/v1/backtests/{bid}/runs/{run_id}").json()
        assert done["status"] == "succeeded" and done["progress"] == 100 and done["error"] is None
        assert done["stats"]["symbols"] == 2 and "total_return" in done["stats"]
        assert done["started_at"] and done["finished_at"] and done["finished_at"] >= done["started_at"]
        links = done["artifacts"]
        equity = c.get(links["equity"]).json()
        assert equity["count"] > 0 and {"run_id", "symbol", "equity"} <= set(equity["columns"])
        symbols = {row[equity["columns"].index("symbol")] for row in equity["rows"]}
        assert symbols == {"*", *SYMBOLS}
        trades_csv = c.get(links["trades"], params={"format": "csv"})
        assert trades_csv.status_code == 200 and trades_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(trades_csv.text)))
        assert all(row["run_id"] == run_id for row in rows)
        assert c.get(links["equity"], params={"format": "xml"}).status_code == 422

        # another user: not found, for the run and its artifacts alike
        for path in (f"/api/v1/backtests/{bid}/runs/{run_id}", links["equity"], links["trades"]):
            r = other.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        # a finished run cannot be cancelled
        r = c.post(f"/api/v1/backtests/{bid}/runs/{run_id}:cancel")
        assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"


def test_a_batch_runs_each_request_to_its_own_end(api, chdb_path):  # noqa: F811
    """One Dagster run for three requests: the one without klines fails with its reason, the others
    succeed with their own stats; the Dagster run reports the failure."""
    instance = dg.DagsterInstance.ephemeral()
    with api.client("trader") as c:
        empty = c.post("/api/v1/backtests", json=backtest_body("2023-01-03", "2023-02-28")).json()
        bid = c.post("/api/v1/backtests", json=backtest_body()).json()["backtest_id"]
        (first,) = c.post(f"/api/v1/backtests/{bid}/runs", json={"params": {"fast": 3}}).json()["run_ids"]
        (failing,) = c.post(f"/api/v1/backtests/{empty['backtest_id']}/runs", json={}).json()["run_ids"]
        (last,) = c.post(f"/api/v1/backtests/{bid}/runs", json={"params": {"fast": 8}}).json()["run_ids"]
        (result,) = launch(api, chdb_path, instance)
        assert not result.success
        runs = {r: c.get(f"/api/v1/backtests/{bid}/runs/{r}").json() for r in (first, last)}
        assert {r["status"] for r in runs.values()} == {"succeeded"}
        assert runs[first]["stats"]["total_return"] != runs[last]["stats"]["total_return"]
        failed = c.get(f"/api/v1/backtests/{empty['backtest_id']}/runs/{failing}").json()
        assert failed["status"] == "failed" and "no klines_daily" in failed["error"]


def test_klines_and_latest_quotes_come_from_the_cold_store(api, chdb_path):  # noqa: F811
    with api.client("viewer") as c:
        r = c.get("/api/v1/klines", params={"symbols": ",".join(SYMBOLS), "start": START, "end": END})
        assert r.status_code == 200
        body = r.json()
        sym = body["columns"].index("symbol")
        assert body["count"] > 100 and {row[sym] for row in body["rows"]} == set(SYMBOLS)
        quotes = c.get("/api/v1/quotes/latest", params={"symbols": SYMBOLS[0]}).json()
        assert quotes["count"] == 1 and quotes["rows"][0][quotes["columns"].index("symbol")] == SYMBOLS[0]


def test_no_klines_fails_with_the_reason_and_cancelled_runs_do_not_run(api, chdb_path):  # noqa: F811
    instance = dg.DagsterInstance.ephemeral()
    with api.client("trader") as c:
        empty = c.post("/api/v1/backtests", json=backtest_body("2023-01-03", "2023-02-28")).json()[
            "backtest_id"
        ]
        (failing,) = c.post(f"/api/v1/backtests/{empty}/runs", json={}).json()["run_ids"]
        bid = c.post("/api/v1/backtests", json=backtest_body()).json()["backtest_id"]
        (cancelled,) = c.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "single"}).json()["run_ids"]
        assert c.post(f"/api/v1/backtests/{bid}/runs/{cancelled}:cancel").status_code == 204
        (result,) = launch(api, chdb_path, instance)  # the cancelled run is not launched at all
        assert not result.success
        failed = c.get(f"/api/v1/backtests/{empty}/runs/{failing}").json()
        assert failed["status"] == "failed" and "no klines_daily" in failed["error"]
        assert "Traceback" not in failed["error"]
        assert c.get(f"/api/v1/backtests/{bid}/runs/{cancelled}").json()["status"] == "cancelled"
        assert c.get(f"/api/v1/runs/{failing}/artifacts/equity").status_code == 404


def test_grid_mode_queues_a_grid_request_owned_by_its_creator(api):
    with api.client("trader") as c, api.client("other") as other:
        bid = c.post("/api/v1/backtests", json=backtest_body()).json()["backtest_id"]
        r = c.post(
            f"/api/v1/backtests/{bid}/runs",
            json={"mode": "grid", "params": {"fast": "3:9:3", "slow": [20, 30]}, "max_evals": 4},
        )
        assert r.status_code == 202 and r.json()["run_ids"] == []
        grid_id = r.json()["grid_request_id"]
        g = c.get(f"/api/v1/grid-requests/{grid_id}").json()
        assert g["status"] == "queued" and g["progress"] == 0
        body = api.warm.get_grid_request(grid_id).body
        assert body["strategy"] == "sma_cross" and body["symbols"] == SYMBOLS and body["max_evals"] == 4
        assert other.get(f"/api/v1/grid-requests/{grid_id}").status_code == 404
        bad = c.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "grid", "params": {"nope": "1,2"}})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_INPUT"
        assert (
            c.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "single", "max_evals": 3}).status_code
            == 422
        )


def test_a_portfolio_strategy_runs_on_the_whole_universe(api, chdb_path):  # noqa: F811
    """xs_momentum over the API is one portfolio: the result of backtest.run on the long frame."""
    from quant_platform import backtest
    from quant_platform.storage.cold import ColdStore

    symbols = synthetic_symbols(N_SYMBOLS)
    params = {"lookback": 10, "top_n": 2, "rebalance": 5, "skip": 0}
    body = {**backtest_body(), "strategy": "xs_momentum", "params": params}
    body["context"] = {**body["context"], "universe": symbols}
    instance = dg.DagsterInstance.ephemeral()
    with api.client("trader") as c:
        bid = c.post("/api/v1/backtests", json=body).json()["backtest_id"]
        (run_id,) = c.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "single"}).json()["run_ids"]
        (result,) = launch(api, chdb_path, instance)
        assert result.success
        done = c.get(f"/api/v1/backtests/{bid}/runs/{run_id}").json()
    with ColdStore(f"chdb://{chdb_path}") as cold:
        long = cold.read_table("klines_daily", START, END, symbols=symbols)
    expected = backtest.run(
        long, "xs_momentum", params, cash=1_000_000.0, commission=0.00025, min_commission=5.0,
        stamp_duty=0.0005, lot_size=100.0, t_plus_1=True, price_limit=True, direction="long_only",
    )  # fmt: skip
    assert done["status"] == "succeeded" and done["stats"]["portfolio"] is True
    assert done["stats"]["total_return"] == expected.stats["total_return"]
    assert done["stats"]["num_trades"] == expected.stats["num_trades"] > 0
