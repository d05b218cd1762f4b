"""The grid_search job end to end (execute_in_process) on materialized klines: ranked results in the cold
tier, heatmap, new active parameter version, progress events, budgets, early stop, cancellation and
failing batches."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pytest

from quant_platform import grid
from quant_platform.grid import evaluate as ev
from quant_platform.grid.dagster.sensors import evaluate_grid_requests
from quant_platform.storage.cold import ColdStore
from quant_platform.storage.hot import RedisHotStore
from quant_platform.storage.warm import Status

GRID = {"fast": "3:15:3", "slow": "10,20,30"}  # 15 combinations, 2 of them invalid (slow <= fast)
WINDOW = {"start": "2024-03-01", "end": "2024-05-31"}


def submit(warm, params=None, **kw):
    return grid.submit("sma_cross", params or GRID, **{"universe": "all", **WINDOW, **kw, "store": warm})


def launch(defs, instance, warm):
    """One sensor tick, then the run it requested, as the daemon would launch it."""
    with dg.build_sensor_context(instance=instance) as ctx:
        (request,) = evaluate_grid_requests(ctx, warm).run_requests
    job = defs.resolve_job_def("grid_search")
    return job.execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance, raise_on_error=False
    )


def batch_outputs(result):
    """Metadata of every grid_evaluate_batch output of a run."""
    return [
        e.event_specific_data.metadata
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT" and "grid_evaluate_batch" in (e.step_key or "")
    ]


def results(chdb_path, request_id, per_symbol=False):
    with ColdStore(f"chdb://{chdb_path}") as cold:
        return cold.grid_results(request_id, per_symbol=per_symbol)


def test_end_to_end(defs, instance, warm, chdb_path, redis_url):
    warm.create_strategy("sma_cross")
    previous = warm.add_params("sma_cross", {"fast": 5, "slow": 20}, note="hand-tuned")
    req = submit(warm, batch_size=3, activate="best")
    with RedisHotStore(redis_url) as hot, hot.subscribe_run_events(req.id) as events:
        result = launch(defs, instance, warm)
        received = []
        while (event := events.get(timeout=0.5)) is not None:
            received.append(event)
    assert result.success

    # the request: succeeded at 100 %, with the winner
    done = warm.get_grid_request(req.id)
    assert done.status is Status.SUCCEEDED and done.progress == 100.0 and done.error is None

    # ranked results in the cold tier: every valid combination, best first, plus one row per symbol
    ranked = results(chdb_path, req.id)
    assert len(ranked) == 13 and ranked["rank"].tolist() == list(range(1, 14))
    objective = ranked["objective"].to_numpy()
    assert np.all(np.diff(objective[np.isfinite(objective)]) <= 0)
    assert np.allclose(ranked["objective"], ranked["sharpe"], equal_nan=True)
    best = json.loads(ranked["params"].iloc[0])
    assert done.best_params == best
    every = results(chdb_path, req.id, per_symbol=True)
    assert len(every) == 13 * 5 and set(every["symbol"]) - {"*"} == set(every["symbol"].unique()) - {"*"}
    top = every[every["rank"] == 1]
    assert top[top["symbol"] != "*"]["sharpe"].mean() == pytest.approx(ranked["sharpe"].iloc[0])

    # the winner is the strategy's new active parameter version; the diff is in the metadata
    active = warm.get_params("sma_cross")
    assert active.params == best and active.version == previous.version + 1 and req.id in active.note
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    saved = meta["param_version"].value
    assert saved["action"] == "activated" and saved["previous_version"] == previous.version
    assert saved["version"] == active.version
    assert {k: tuple(v) for k, v in saved["changed"].items()} == {
        k: (previous.params[k], best[k]) for k in ("fast", "slow") if previous.params[k] != best[k]
    }
    assert meta["heatmap"].value.startswith("![sharpe heatmap](data:image/png;base64,")
    assert meta["best_params"].value == best and meta["stopped"].value == "completed"
    assert meta["combinations"].value["evaluated"] == 13 and meta["combinations"].value["batches"] == 5
    overfit = meta["overfitting"].value
    assert overfit["n_trials"] == 13 and overfit["trials_used"] == 13 and 0.0 <= overfit["pbo"] <= 1.0
    assert 0.0 <= overfit["deflated_sharpe"] <= 1.0
    assert overfit["n_splits"] == 14 and 56 <= overfit["periods"] < 64  # >= 4 days per split

    # progress: warm tier per batch, hot-tier events up to 100
    progress = [e["progress"] for e in received if "progress" in e]
    assert received[0]["type"] == "started" and received[-1]["type"] == "finished"
    assert progress == sorted(progress) and progress[-1] == 100.0 and len(progress) >= 5
    assert received[-1]["best_params"] == best


def test_max_evals_is_honoured(defs, instance, warm, chdb_path):
    req = submit(warm, max_evals=4)
    result = launch(defs, instance, warm)
    assert result.success
    assert len(results(chdb_path, req.id)) == 4
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["stopped"].value == "max_evals" and meta["combinations"].value["planned"] == 4


def test_early_stop_after_patience_batches_without_improvement(defs, instance, warm, chdb_path):
    req = submit(warm, early_stop=1, batch_size=2)
    result = launch(defs, instance, warm)
    assert result.success
    outputs = batch_outputs(result)
    evaluated = [m for m in outputs if m["evaluated"].value]
    assert len(outputs) == 7 and 2 <= len(evaluated) < 7
    assert {m["stopped"].value for m in outputs if not m["evaluated"].value} == {"early_stop"}
    assert len(results(chdb_path, req.id)) == sum(m["combinations"].value for m in evaluated)
    assert warm.get_grid_request(req.id).status is Status.SUCCEEDED


def test_a_cancelled_request_stops_and_writes_nothing(defs, instance, warm, chdb_path, monkeypatch):
    req = submit(warm, batch_size=2)
    evaluate = ev.evaluate_batch

    def evaluate_then_cancel(*args, **kwargs):
        rows = evaluate(*args, **kwargs)
        grid.cancel(req.id, store=warm)  # the user cancels while the first batch runs
        return rows

    monkeypatch.setattr(ev, "evaluate_batch", evaluate_then_cancel)
    result = launch(defs, instance, warm)
    assert result.success and not result.get_asset_materialization_events()
    outputs = batch_outputs(result)
    assert sum(m["evaluated"].value for m in outputs) == 1
    assert {m["stopped"].value for m in outputs if not m["evaluated"].value} == {"cancelled"}
    assert warm.get_grid_request(req.id).status is Status.CANCELLED
    assert results(chdb_path, req.id).empty
    assert warm.list_strategies() == [] or not warm.list_param_versions("sma_cross")


def test_a_failing_batch_is_retried_then_fails_the_request(defs, instance, warm, monkeypatch):
    evaluate = ev.evaluate_batch
    calls: dict[int, int] = {}

    def failing(data, spec, batch):
        calls[batch.index] = calls.get(batch.index, 0) + 1
        if batch.index == 0 and calls[0] == 1:
            raise ConnectionError("transient")  # batch 0: fails once, then the retry succeeds
        if batch.index == 1:
            raise RuntimeError("numba exploded")  # batch 1: fails every time
        return evaluate(data, spec, batch)

    monkeypatch.setattr(ev, "evaluate_batch", failing)
    req = submit(warm, batch_size=10)  # 13 combinations: 2 batches
    result = launch(defs, instance, warm)
    assert not result.success
    assert calls == {0: 2, 1: 3}  # 2 retries for each failing batch
    retried = {e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"}
    assert retried == {f"grid_search_results.grid_evaluate_batch[b0000{i}]" for i in (0, 1)}
    failed = warm.get_grid_request(req.id)
    assert failed.status is Status.FAILED
    assert "grid_evaluate_batch[b00001] failed" in failed.error and "numba exploded" in failed.error


def test_no_klines_or_no_time_fails_with_the_reason(defs, instance, warm):
    empty = submit(warm, start="2023-01-03", end="2023-02-28")
    assert not launch(defs, instance, warm).success
    assert (
        "no klines_daily for every symbol between 2023-01-03 and 2023-02-28"
        in warm.get_grid_request(empty.id).error
    )

    rushed = submit(warm, time_budget=0.001)
    assert not launch(defs, instance, warm).success
    assert "no combination was evaluated (stopped: time_budget)" in warm.get_grid_request(rushed.id).error
    summary = warm.get_grid_request(rushed.id).summary
    assert summary["stopped"] == "time_budget" and summary["evaluated"] == 0 and summary["planned"] == 13


def test_portfolio_strategy_is_searched_on_the_whole_universe(defs, instance, warm, chdb_path):
    """xs_momentum: one row per combination ('*'), the numbers of backtest.run on the long frame."""
    from quant_platform import backtest
    from quant_platform.grid.spec import DEFAULT_SETTINGS

    req = grid.submit("xs_momentum", {"lookback": "5,10", "top_n": "1,2", "rebalance": "5"},
                      universe="all", **WINDOW, store=warm)  # fmt: skip
    result = launch(defs, instance, warm)
    assert result.success
    every = results(chdb_path, req.id, per_symbol=True)
    assert set(every["symbol"]) == {"*"} and len(every) == 4
    with ColdStore(f"chdb://{chdb_path}") as cold:
        long = cold.read_table("klines_daily", WINDOW["start"], WINDOW["end"])
    for _, row in every.iterrows():
        params = {**json.loads(row["params"]), "skip": 0}
        expected = backtest.run(long, "xs_momentum", params, **DEFAULT_SETTINGS)
        assert row["total_return"] == pytest.approx(expected.stats["total_return"], abs=1e-9)
        assert row["num_trades"] == expected.stats["num_trades"]


def test_an_early_stop_does_not_activate_its_winner_unless_asked(defs, instance, warm):
    warm.create_strategy("sma_cross")
    hand = warm.add_params("sma_cross", {"fast": 5, "slow": 20}, note="hand-tuned")
    req = submit(warm, early_stop=1, batch_size=2)
    result = launch(defs, instance, warm)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    saved = meta["param_version"].value
    assert meta["stopped"].value == "early_stop"
    assert saved["action"] == "not activated" and "early_stop" in saved["reason"]
    assert saved["policy"] == "if-validated"
    assert warm.get_params("sma_cross").version == hand.version  # the active version is untouched
    if saved["version"] is not None:  # kept, inactive, with the reason
        kept = warm.get_params("sma_cross", saved["version"])
        assert not kept.active and req.id in kept.note and "not activated" in kept.note

    submit(warm, early_stop=1, batch_size=2, activate="best")
    forced = launch(defs, instance, warm).get_asset_materialization_events()[0].materialization.metadata
    assert forced["param_version"].value["action"] == "activated"
    assert forced["param_version"].value["policy"] == "best"
    assert warm.get_params("sma_cross").version != hand.version


def test_a_grid_on_noise_reports_overfitting_and_keeps_its_winner_inactive(defs, instance, warm):
    """Synthetic prices are random walks: picking the best of the grid is luck, and the default
    policy says so instead of activating it."""
    warm.create_strategy("sma_cross")
    hand = warm.add_params("sma_cross", {"fast": 5, "slow": 20}, note="hand-tuned")
    submit(warm, {"fast": "2:12:2", "slow": "14:30:4"})
    result = launch(defs, instance, warm)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    overfit, saved = meta["overfitting"].value, meta["param_version"].value
    assert overfit["n_trials"] == 30 and overfit["deflated_sharpe"] < 0.95
    assert 0.0 <= overfit["pbo"] <= 1.0
    assert saved["action"] == "not activated" and saved["policy"] == "if-validated"
    assert warm.get_params("sma_cross").version == hand.version


def test_holdout_shows_in_and_out_of_sample_side_by_side(defs, instance, warm, chdb_path):
    req = grid.submit("sma_cross", GRID, universe="all", start="2024-03-01", end="2024-04-19",
                      holdout="2024-04-22..2024-05-31", store=warm)  # fmt: skip
    assert req.body["holdout"] == ["2024-04-22", "2024-05-31"]
    result = launch(defs, instance, warm)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    table = meta["holdout"].value
    assert "out-of-sample (oos) 2024-04-22..2024-05-31" in table
    assert "is_sharpe" in table and "oos_sharpe" in table and table.count("\n") == 2 + 1 + 10  # top 10
    assert isinstance(meta["holdout_sharpe"].value, float)
    ranked = results(chdb_path, req.id)
    # parameters are chosen on the in-sample window only: the ranking equals a search without holdout
    plain = grid.submit("sma_cross", GRID, universe="all", start="2024-03-01", end="2024-04-19",
                        store=warm)  # fmt: skip
    assert launch(defs, instance, warm).success
    again = results(chdb_path, plain.id)
    assert again["params"].tolist() == ranked["params"].tolist()
    assert np.allclose(again["objective"], ranked["objective"], equal_nan=True)
