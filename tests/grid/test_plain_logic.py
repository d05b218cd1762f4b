"""The Dagster-free pieces of grid search: progress and early stop, outcome, run config and tags,
winner activation. They run here without a Dagster instance."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from quant_platform.conventions import EMBEDDED_TAG, GRID_REQUEST_TAG, GRID_TAG, STRATEGY_TAG
from quant_platform.grid import progress, runs
from quant_platform.grid.spec import build_spec
from quant_platform.grid.winner import activate_winner


def test_batch_progress_reaches_95_when_every_batch_is_done():
    assert progress.batch_progress(0, 4) == 0.0
    assert progress.batch_progress(1, 3) == 31.67
    assert progress.batch_progress(4, 4) == progress.EVALUATED_PROGRESS == 95.0
    assert progress.batch_progress(5, 4) == 95.0  # a retried batch never pushes past 95
    assert progress.batch_progress(1, 0) == 95.0


def test_best_so_far_follows_the_direction():
    history = [(0.5, {"fast": 5}), (None, None), (1.5, {"fast": 10})]
    assert progress.best_so_far(history, ({"fast": 20}, 1.0), "max") == ({"fast": 10}, 1.5)
    assert progress.best_so_far(history, ({"fast": 20}, 1.0), "min") == ({"fast": 5}, 0.5)
    assert progress.best_so_far([], (None, None), "max") == (None, None)


def test_early_stop_counts_batches_without_improvement():
    assert progress.should_stop_early([1.0, 0.5, 0.4], None, "max") is None
    assert progress.should_stop_early([1.0, 0.5, 0.4], 2, "max") == 2
    assert progress.should_stop_early([1.0, 0.5, 2.0], 2, "max") is None


def test_outcome_prefers_the_first_stop_reason():
    assert progress.outcome([None, "early_stop", "cancelled"], planned=10, valid=10) == "early_stop"
    assert progress.outcome([None, None], planned=5, valid=10) == "max_evals"
    assert progress.outcome([None], planned=10, valid=10) == "completed"


def test_run_config_and_tags_trace_a_run_to_its_request():
    request = SimpleNamespace(id="g-1", body={"strategy": "s" * 100})
    tags = runs.run_tags(request)
    assert tags[GRID_REQUEST_TAG] == "g-1" and tags[GRID_TAG] == tags[EMBEDDED_TAG] == "true"
    assert tags[STRATEGY_TAG] == "s" * 63
    config = runs.run_config("g-2")
    assert runs.request_id_from({}, config) == "g-2"
    assert runs.request_id_from(tags, config) == "g-1"
    assert runs.request_id_from({}, None) is None


def test_rerun_body_rolls_the_window_forward_keeping_its_length():
    request = SimpleNamespace(id="g-1", body={"start": "2024-03-01", "end": "2024-03-31", "watch": True})
    body = runs.rerun_body(request, storage_id=7, partition="2024-04-10")
    assert (body["start"], body["end"], body["watch"]) == ("2024-03-11", "2024-04-10", False)
    assert body["origin"] == {"request_id": "g-1", "klines_storage_id": 7, "partition": "2024-04-10"}
    same = runs.rerun_body(request, storage_id=8, partition="not a day")
    assert (same["start"], same["end"]) == ("2024-03-01", "2024-03-31")


def test_activate_winner_adds_a_version_once_and_reports_the_diff(warm):
    spec = build_spec("sma_cross", {"fast": "5,10", "slow": "20,30"}, start="2024-01-02", end="2024-03-29",
                      universe="all")  # fmt: skip
    first = activate_winner(warm, spec, "g-1", {"fast": 5, "slow": 20}, 1.25)
    assert first["action"] == "activated" and first["previous_version"] is None
    assert first["added"] == {"fast": 5, "slow": 20}
    again = activate_winner(warm, spec, "g-1", {"fast": 5, "slow": 20}, 1.25)  # a retried write
    assert again["action"] == "activated" and again["version"] == first["version"]
    other = activate_winner(warm, spec, "g-2", {"fast": 10, "slow": 20}, 1.5)
    assert other["previous_version"] == first["version"] and other["changed"] == {"fast": [5, 10]}
    same = activate_winner(warm, spec, "g-3", {"fast": 10, "slow": 20}, 1.5)
    assert same["action"] == "unchanged" and same["version"] == other["version"]
    assert len(warm.list_param_versions("sma_cross")) == 2


def test_activation_is_a_decision():
    from quant_platform.grid.winner import decide

    ok = dict(stopped="completed", objective="sharpe")
    assert decide("if-validated", best=1.2, **ok)[0] is True
    assert decide("if-validated", best=1.2, stopped="max_evals", objective="sharpe")[0] is True
    early, why = decide("if-validated", best=1.2, stopped="early_stop", objective="sharpe")
    assert early is False and "early_stop" in why
    assert decide("if-validated", best=1.2, stopped="time_budget", objective="sharpe")[0] is False
    negative, why = decide("if-validated", best=-0.3, **ok)
    assert negative is False and "-0.3" in why
    assert decide("if-validated", best=float("nan"), **ok)[0] is False
    assert decide("best", best=float("inf"), **ok)[0] is False  # never a non-finite winner
    assert decide("best", best=-0.3, stopped="early_stop", objective="sharpe")[0] is True
    assert decide("never", best=2.0, **ok)[0] is False
    assert decide("if-validated", best=-0.05, stopped="completed", objective="annual_volatility")[0]
    gated, why = decide("if-validated", best=1.2, gates={"deflated_sharpe": (0.4, 0.95)}, **ok)
    assert gated is False and "deflated_sharpe" in why
    assert decide("if-validated", best=1.2, gates={"deflated_sharpe": (None, 0.95)}, **ok)[0]
    with pytest.raises(ValueError, match="activate must be"):
        decide("sometimes", best=1.0, **ok)


def test_a_winner_not_activated_is_kept_inactive_with_the_reason(warm):
    from quant_platform.grid.winner import save_inactive

    spec = build_spec("sma_cross", {"fast": "5,10", "slow": "20,30"}, start="2024-01-02", end="2024-03-29",
                      universe="all")  # fmt: skip
    first = save_inactive(warm, spec, "g-1", {"fast": 5, "slow": 20}, -0.4, "best sharpe -0.4 is not above 0")
    assert first["version"] is None and "no active version" in first["note"]
    assert warm.list_param_versions("sma_cross") == []
    active = warm.add_params("sma_cross", {"fast": 10, "slow": 30}, note="hand-tuned")
    kept = save_inactive(warm, spec, "g-2", {"fast": 5, "slow": 20}, -0.4, "not above 0")
    assert kept["version"] == active.version + 1 and kept["active_version"] == active.version
    assert warm.get_params("sma_cross").version == active.version  # still the hand-tuned one
    assert "not activated: not above 0" in warm.get_params("sma_cross", kept["version"]).note
    again = save_inactive(warm, spec, "g-2", {"fast": 5, "slow": 20}, -0.4, "not above 0")
    assert again["version"] == kept["version"] and len(warm.list_param_versions("sma_cross")) == 2


def test_overfitting_report_of_a_noise_grid():
    """Random-walk prices: PBO near one half, a deflated Sharpe ratio far below 0.95."""
    import numpy as np
    import pandas as pd

    from quant_platform.core.backtest.data import prepare_universe
    from quant_platform.grid import evaluate as ev
    from quant_platform.grid.validation import combination_returns, n_splits_for, overfitting_report

    rng = np.random.default_rng(5)
    days = pd.bdate_range("2022-01-03", periods=500)
    frames = []
    for sym in ("A", "B", "C"):
        close = 10 * np.exp(np.cumsum(rng.normal(0, 0.015, len(days))))
        frames.append(pd.DataFrame({"symbol": sym, "trade_date": days, "open": close, "high": close * 1.01,
                                    "low": close * 0.99, "close": close}))  # fmt: skip
    data = prepare_universe(pd.concat(frames, ignore_index=True))
    settings = {"t_plus_1": False, "price_limit": False}
    spec = build_spec("sma_cross", {"fast": "2:20:2", "slow": "10:60:5"}, start="2022-01-03",
                      end="2023-11-30", universe="all", settings=settings)  # fmt: skip
    rows = ev.evaluate_batch(data, spec, ev.plan_batches(spec, symbols=3).batches[0])
    ranked = ev.rank(ev.aggregate(rows, spec), spec.direction)
    report = overfitting_report(data, spec, ranked)
    assert report["n_trials"] == len(ranked) > 50 and report["n_splits"] == 16
    assert report["deflated_sharpe"] < 0.95
    assert 0.2 <= report["pbo"] <= 0.8
    one = combination_returns(data, spec, [dict(ranked["params"].iloc[0])])
    assert one.shape == (499, 1)
    assert n_splits_for(499) == 16 and n_splits_for(30) == 6 and n_splits_for(7) is None


def test_holdout_window_is_parsed_and_must_follow_the_search():
    from quant_platform.grid.spec import GridSpecError

    base = dict(start="2024-01-02", end="2024-03-29", universe="all")
    spec = build_spec("sma_cross", {"fast": "5,10", "slow": "20"}, holdout="2024-04-01..2024-06-28", **base)
    assert spec.holdout is not None and spec.body()["holdout"] == ["2024-04-01", "2024-06-28"]
    assert type(spec).from_body(spec.body()) == spec
    assert "holdout" not in build_spec("sma_cross", {"fast": "5"}, **base).body()
    with pytest.raises(GridSpecError, match="must start after"):
        build_spec("sma_cross", {"fast": "5"}, holdout="2024-03-01..2024-04-30", **base)
    with pytest.raises(GridSpecError, match="START..END"):
        build_spec("sma_cross", {"fast": "5"}, holdout="2024-04-01", **base)


def test_window_stats_by_hand():
    import pandas as pd

    from quant_platform.grid.validation import window_stats

    equity = pd.Series([100.0, 110.0, 99.0, 108.9, 119.79], index=pd.bdate_range("2024-01-01", periods=5))
    # window 01-03..01-05 measured from 110 (the last value before it): returns -10 %, +10 %, +10 %
    out = window_stats(equity, "2024-01-03", "2024-01-05", periods_per_year=1.0)
    assert out["total_return"] == pytest.approx(119.79 / 110 - 1)
    r = np.array([-0.1, 0.1, 0.1])
    assert out["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1))
    assert out["max_drawdown"] == pytest.approx(-0.1) and out["bars"] == 3
    assert window_stats(equity, "2025-01-01", "2025-02-01")["bars"] == 0
