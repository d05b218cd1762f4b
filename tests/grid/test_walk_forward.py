"""Walk-forward validation, the summary a finished search leaves in the warm tier, and `grid status`
reading it: through the grid CLI's real entry point and the grid_search job executed in process."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from quant_platform import grid
from quant_platform.cli import app
from tests.grid.test_grid_search import GRID, WINDOW, launch, submit

runner = CliRunner()
SUBMIT = ["grid", "submit", "--strategy", "sma_cross", "--param", "fast=3:15:3", "--param", "slow=10,20,30",
          "--universe", "all", "--start", WINDOW["start"], "--end", WINDOW["end"]]  # fmt: skip


def test_walk_forward_chooses_each_fold_on_its_in_sample_part_only(defs, instance, warm):
    out = runner.invoke(app, [*SUBMIT, "--walk-forward", "2", "--activate", "never", "--json"])
    assert out.exit_code == 0, out.output
    req = json.loads(out.output)
    assert req["body"]["walk_forward"] == 2
    result = launch(defs, instance, warm)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert (
        "2 anchored folds" in meta["walk_forward"].value
        and "stitched out-of-sample" in meta["walk_forward"].value
    )

    done = warm.get_grid_request(req["id"])
    wf = done.summary["walk_forward"]
    folds = wf["per_fold"]
    assert wf["folds"] == 2 and [f["fold"] for f in folds] == [1, 2]
    # 61 trading days in 3 segments (21, 20, 20): fold 1 learns on the first, is tested on the second
    assert folds[0]["out_of_sample"][0] > WINDOW["start"] and folds[1]["out_of_sample"][1] == WINDOW["end"]
    assert folds[0]["out_of_sample"][1] < folds[1]["out_of_sample"][0]
    assert wf["oos"]["bars"] == 40 and all(f["oos_sharpe"] is not None for f in folds)

    # fold 1's choice is the winner of a search over its in-sample part alone, and not the
    # full-window winner: what the full window knows did not leak into the fold
    is_end = folds[0]["out_of_sample"][0]
    output = result.output_for_node("grid_search_results")
    in_sample_end = output["walk_forward"]["folds"][0]["in_sample"][1]
    assert in_sample_end < is_end
    alone = grid.submit("sma_cross", GRID, universe="all", start=WINDOW["start"], end=in_sample_end,
                        activate="never", store=warm)  # fmt: skip
    assert launch(defs, instance, warm).success
    assert warm.get_grid_request(alone.id).best_params == folds[0]["params"]
    assert folds[0]["params"] != done.best_params


def test_walk_forward_gates_activation_on_the_stitched_out_of_sample_sharpe(defs, instance, warm):
    req = submit(warm, walk_forward=2, activate="if-validated")
    assert launch(defs, instance, warm).success
    summary = warm.get_grid_request(req.id).summary
    act, oos = summary["activation"], summary["walk_forward"]["oos"]
    assert act["policy"] == "if-validated" and act["action"] == "not activated"
    if oos["sharpe"] is not None and oos["sharpe"] < 0:
        assert "walk_forward_oos_sharpe" in act["reason"] or "deflated_sharpe" in act["reason"]


def test_grid_status_shows_counts_stop_reason_pbo_and_dsr_after_a_run(defs, instance, warm):
    req = submit(warm, max_evals=8)
    assert launch(defs, instance, warm).success
    summary = warm.get_grid_request(req.id).summary
    assert summary["stopped"] == "max_evals" and summary["evaluated"] == 8 and summary["planned"] == 8
    assert (
        summary["n_trials"] == 8 and 0.0 <= summary["pbo"] <= 1.0 and 0.0 <= summary["deflated_sharpe"] <= 1
    )
    assert summary["activation"]["policy"] == "if-validated"

    shown = runner.invoke(app, ["grid", "status", req.id])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "stopped │ max_evals" in text and "evaluated / planned │ 8 / 8" in text
    assert f"PBO │ {summary['pbo']:.3f}" in text
    assert f"deflated Sharpe │ {summary['deflated_sharpe']:.3f} (n_trials 8)" in text
    assert "activation │" in text
    as_json = json.loads(runner.invoke(app, ["grid", "status", req.id, "--json"]).output)
    assert as_json["summary"] == summary


def test_a_noise_grid_reports_pbo_near_a_half_and_a_low_dsr_and_keeps_its_winner(defs, instance, warm):
    """Synthetic prices are random walks: the summary says the winner is luck, and it stays inactive."""
    warm.create_strategy("sma_cross")
    hand = warm.add_params("sma_cross", {"fast": 5, "slow": 20}, note="hand-tuned")
    req = submit(warm, {"fast": "2:12:1", "slow": "14:40:2"})
    assert launch(defs, instance, warm).success
    summary = warm.get_grid_request(req.id).summary
    assert 0.3 <= summary["pbo"] <= 0.7
    assert summary["deflated_sharpe"] < 0.5 and summary["n_trials"] == 154
    assert summary["activation"]["action"] == "not activated"
    assert warm.get_params("sma_cross").version == hand.version


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--walk-forward", "3", "--holdout", "2024-06-03..2024-06-28"], "not both"),
        (["--walk-forward", "1"], "from 2 to 20"),
        (["--walk-forward", "21"], "from 2 to 20"),
        (["--walk-forward", "20"], "use fewer folds or a longer window"),
        (["--frequency", "1h"], "frequency must be one of 1d, 5m, 15m"),
    ],
)
def test_bad_walk_forward_or_frequency_is_one_line_and_exit_2(qp_home, extra, message):
    out = runner.invoke(app, [*SUBMIT, *extra])
    assert out.exit_code == 2, out.output
    assert message in out.output and "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) <= 2  # one message, soft-wrapped at most once


def test_submit_says_which_bars_and_checks_it_queued(qp_home):
    out = runner.invoke(app, [*SUBMIT, "--walk-forward", "2", "--frequency", "15m"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "15m bars, 2 walk-forward folds" in text and "queued" in text
