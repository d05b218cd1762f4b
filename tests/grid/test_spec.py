"""Grid specs: parsing `name=start:stop:step` / `name=v1,v2`, validation against the strategy registry,
canonical bodies, and batch planning."""

from __future__ import annotations

import itertools

import pytest

from quant_platform.backtest import STAT_NAMES
from quant_platform.grid import evaluate as ev
from quant_platform.grid.spec import GridSpec, GridSpecError, build_spec, parse_params, parse_values

WINDOW = {"start": "2024-01-02", "end": "2024-10-31"}


def spec(params=None, strategy="sma_cross", **kw):
    args = {"symbols": "600000.SH,600001.SH", **WINDOW, **kw}
    return build_spec(strategy, {"fast": "5:50:5", "slow": "20,30,60"} if params is None else params, **args)


def test_ranges_are_inclusive_and_lists_keep_their_order():
    assert parse_params(["fast=5:50:5", "slow=20,30,60"]) == {"fast": "5:50:5", "slow": "20,30,60"}
    s = spec()
    assert s.grid == {"fast": [5, 10, 15, 20, 25, 30, 35, 40, 45, 50], "slow": [20, 30, 60]}
    assert parse_values("w", "3:6") == [3, 4, 5, 6]
    assert parse_values("k", "0.5:2:0.5") == [0.5, 1.0, 1.5, 2.0]
    assert parse_values("k", "0.1:0.3:0.1") == [0.1, 0.2, 0.3]  # decimal steps, no 0.30000000000000004
    assert parse_values("w", "7") == [7]
    assert parse_values("w", "30,20,30") == [30, 20]  # duplicates dropped, order kept


def test_values_take_the_registered_parameter_type():
    s = spec({"window": "10:20:5", "k": "1:2:0.5"}, strategy="bollinger_breakout")
    assert s.grid == {"k": [1.0, 1.5, 2.0], "window": [10, 15, 20]}
    assert all(isinstance(v, float) for v in s.grid["k"]) and all(
        isinstance(v, int) for v in s.grid["window"]
    )
    lists = spec({"fast": [5, 10], "slow": (20.0, 30)})
    assert lists.grid == {"fast": [5, 10], "slow": [20, 30]}


def test_body_is_canonical_so_equal_searches_hash_equally():
    a = spec({"fast": "5:15:5", "slow": "20,30"}, symbols="600001.SH,600000.SH")
    b = spec({"slow": [20, 30], "fast": [5, 10, 15]}, symbols=["600000.SH", "600001.SH", "600000.SH"])
    assert a.body() == b.body()
    assert GridSpec.from_body(a.body()) == a
    body = spec(universe="all", symbols=None).body()
    assert body["universe"] == "all" and body["symbols"] == []
    assert body["settings"]["lot_size"] == 100.0 and body["settings"]["t_plus_1"] is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "nope"}, "unknown strategy 'nope'; registered strategies"),
        (
            {"params": {"fast": "5:10", "window": "3"}},
            "unknown parameter(s) ['window'] for strategy 'sma_cross'",
        ),
        ({"params": {}}, "empty grid"),
        ({"params": {"fast": "30:40", "slow": "10,20"}}, "every one of the 22 combinations is invalid"),
        ({"params": {"fast": "5.5"}}, "parameter 'fast' must be an integer"),
        ({"params": {"fast": "0:3"}}, "parameter 'fast' must be >= 1"),
        ({"params": {"fast": "50:5:5"}}, "stop (5) is below start (50)"),
        ({"params": {"fast": "5:50:0"}}, "step must be > 0"),
        ({"params": {"fast": "5:x"}}, "'x' is not a number"),
        ({"params": {"fast": "5,,6"}}, "empty value"),
        ({"start": "2024-13-01"}, "start must be a date YYYY-MM-DD"),
        ({"end": "2023-12-31"}, "end 2023-12-31 is before start 2024-01-02"),
        ({"objective": "alpha"}, "unknown objective 'alpha'"),
        ({"symbols": None}, "no symbols"),
        ({"universe": "all"}, "either symbols or universe"),
        ({"symbols": "600000.SH,bad symbol"}, "invalid symbol(s) ['bad symbol']"),
        ({"max_evals": 0}, "max_evals must be a positive integer"),
        ({"time_budget": -1}, "time_budget must be > 0"),
        ({"settings": {"comission": 0.1}}, "unknown backtest setting(s) ['comission']"),
    ],
)
def test_invalid_requests_are_rejected_with_a_clear_message(kwargs, message):
    with pytest.raises(GridSpecError) as err:
        spec(**kwargs)
    assert message in str(err.value)


def test_bad_param_syntax():
    for bad in ("fast", "fast=", "=5", "1x=5"):
        with pytest.raises(GridSpecError):
            parse_params([bad])
    with pytest.raises(GridSpecError, match="more than once"):
        parse_params(["fast=5", "fast=6"])


def test_partly_invalid_grids_are_accepted_and_planned_without_the_invalid_combinations():
    s = spec({"fast": "10:40:10", "slow": "20,30"})  # fast 30, 40 with slow 20, 30 are invalid...
    mask = ev.valid_mask(s)
    assert mask.tolist() == [True, True, False, True, False, False, False, False]
    plan = ev.plan_batches(s)
    assert (plan.valid, plan.skipped, plan.planned) == (3, 5, 3)


def test_cover_is_exact_for_every_range():
    values = [[1, 2, 3], ["a", "b"], [10, 20, 30, 40]]
    combos = list(itertools.product(*values))
    for lo in range(len(combos)):
        for hi in range(lo + 1, len(combos) + 1):
            pieces = ev.cover(values, lo, hi)
            got = [c for g in pieces for c in itertools.product(*g)]
            assert got == combos[lo:hi], (lo, hi)
            assert len(pieces) <= 2 * len(values)


def test_batches_respect_max_evals_and_batch_size():
    s = spec({"fast": "2:21", "slow": "30:59"}, max_evals=250, batch_size=40)  # 600 combinations
    plan = ev.plan_batches(s)
    assert plan.valid == 600 and plan.planned == 250 and plan.truncated
    assert [b.combinations for b in plan.batches] == [40] * 6 + [10]
    assert plan.batches[0].lo == 0 and plan.batches[-1].hi == 250
    default = ev.plan_batches(spec({"fast": "2:21", "slow": "30:59"}), symbols=100)  # 60,000 backtests
    assert [b.combinations for b in default.batches] == [200, 200, 200]
    assert len(ev.plan_batches(spec({"fast": "2:21", "slow": "30:59"}), symbols=5000).batches) == 16
    assert len(ev.plan_batches(spec({"fast": "2:21", "slow": "30:59"}), symbols=1).batches) == 1


def test_stored_metrics_are_stats_of_the_engine():
    assert set(ev.METRICS) <= set(STAT_NAMES)
    assert ev.stalled_batches([1.0, 0.5, 0.7], "max") == 2
    assert ev.stalled_batches([1.0, 0.5, 1.2], "max") == 0
    assert ev.stalled_batches([None, 1.0, None], "min") == 1
