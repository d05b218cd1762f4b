"""Submitting, inspecting and cancelling grid requests: Python API on SQLite and MariaDB, and the CLI."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from quant_platform import grid
from quant_platform.grid.cli import grid_app
from quant_platform.storage.warm import Status

runner = CliRunner()


def _submit(store, symbol, **kw):
    args = dict(symbols=[symbol], start="2024-01-02", end="2024-10-31", store=store)
    return grid.submit("sma_cross", {"fast": "5:50:5", "slow": "20,30,60"}, **{**args, **kw})


def _symbol() -> str:  # a unique body per test: the MariaDB database is shared by the session
    return f"T{uuid.uuid4().hex[:8]}.SH"


def test_same_key_same_body_returns_the_first_request(any_warm):
    sym, key = _symbol(), f"key-{uuid.uuid4().hex}"
    first = _submit(any_warm, sym, idempotency_key=key)
    again = _submit(any_warm, sym, idempotency_key=key)
    assert first.status is Status.QUEUED and again.id == first.id
    assert first.body["grid"] == {"fast": list(range(5, 55, 5)), "slow": [20, 30, 60]}


def test_same_key_different_body_is_a_conflict(any_warm):
    sym, key = _symbol(), f"key-{uuid.uuid4().hex}"
    first = _submit(any_warm, sym, idempotency_key=key)
    with pytest.raises(grid.IdempotencyConflict, match=f"already used for grid request {first.id}"):
        _submit(any_warm, sym, idempotency_key=key, objective="sortino")


def test_without_a_key_double_submits_are_idempotent(any_warm):
    sym = _symbol()
    first = _submit(any_warm, sym)
    assert first.idempotency_key == grid.default_idempotency_key(first.body)
    assert _submit(any_warm, sym).id == first.id
    # the same search spelled differently is the same request
    assert grid.submit("sma_cross", {"slow": [20, 30, 60], "fast": "5:50:5"}, symbols=sym, start="2024-01-02",
                       end="2024-10-31", store=any_warm).id == first.id  # fmt: skip
    assert _submit(any_warm, sym, max_evals=10).id != first.id


def test_cancel_is_idempotent_and_status_reports_it(any_warm):
    req = _submit(any_warm, _symbol())
    first = grid.cancel(req.id, store=any_warm)
    second = grid.cancel(req.id, store=any_warm)
    assert first.status is Status.CANCELLED and second == first
    assert grid.status(req.id, store=any_warm).status is Status.CANCELLED
    with pytest.raises(grid.NotFound):
        grid.status("does-not-exist", store=any_warm)


def test_invalid_request_is_not_stored(any_warm):
    with pytest.raises(grid.GridSpecError, match="unknown objective"):
        _submit(any_warm, _symbol(), objective="alpha")
    assert not [r for r in any_warm.list_grid_requests(limit=1000) if r.body.get("objective") == "alpha"]


# ----------------------------------------------------------------------------------------------- CLI


SUBMIT = ["submit", "--strategy", "sma_cross", "--param", "fast=5:50:5", "--param", "slow=20,30,60",
          "--symbols", "600000.SH,600001.SH", "--start", "2024-01-02", "--end", "2024-10-31"]  # fmt: skip


def test_cli_submit_status_cancel_list(qp_home):
    out = runner.invoke(grid_app, [*SUBMIT, "--json"])
    assert out.exit_code == 0, out.output
    req = json.loads(out.output)
    assert req["status"] == "queued" and req["existing"] is False

    again = runner.invoke(grid_app, [*SUBMIT, "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["id"] == req["id"]
    assert json.loads(again.output)["existing"] is True

    status = runner.invoke(grid_app, ["status", req["id"]])
    assert status.exit_code == 0 and "queued" in status.output and "0.0 %" in status.output

    for _ in range(2):
        cancelled = runner.invoke(grid_app, ["cancel", req["id"]])
        assert cancelled.exit_code == 0 and "cancelled" in cancelled.output

    listed = runner.invoke(grid_app, ["list", "--json"])
    assert [r["id"] for r in json.loads(listed.output)] == [req["id"]]
    assert runner.invoke(grid_app, ["status", "nope"]).exit_code == 1


def test_cli_conflict_and_invalid_specs_exit_2(qp_home):
    keyed = [*SUBMIT, "--idempotency-key", "k1"]
    assert runner.invoke(grid_app, keyed).exit_code == 0
    conflict = runner.invoke(grid_app, [*keyed, "--objective", "sortino"])
    assert conflict.exit_code == 2 and "already used for grid request" in conflict.output

    bad = runner.invoke(grid_app, [*SUBMIT[:-4], "--start", "2024-02-30", "--end", "2024-10-31"])
    assert bad.exit_code == 2 and "start must be a date" in bad.output
    invalid = runner.invoke(grid_app, [*SUBMIT, "--param", "slow=1,2"])
    assert invalid.exit_code == 2 and "given more than once" in invalid.output
    all_invalid = runner.invoke(
        grid_app,
        ["submit", "--strategy", "sma_cross", "-p", "fast=50", "-p", "slow=20,30", "--universe", "all",
         "--start", "2024-01-02", "--end", "2024-10-31"],
    )  # fmt: skip
    assert all_invalid.exit_code == 2 and "combinations is invalid" in all_invalid.output


def test_cli_submit_warns_when_no_daemon_will_launch_the_request(qp_home):
    import time

    import dagster as dg
    from dagster._daemon.types import DaemonHeartbeat

    out = runner.invoke(grid_app, SUBMIT)
    text = " ".join(out.output.split())
    assert out.exit_code == 0 and "queued" in text
    assert "Dagster daemon" in text and "has never run" in text and "dagster-daemon run" in text

    with dg.DagsterInstance.get() as instance:  # a sensor daemon that heartbeated just now
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time(), "SENSOR", "test", []))
    again = runner.invoke(grid_app, [*SUBMIT, "--objective", "sortino"])
    assert again.exit_code == 0 and "queued" in again.output and "warning" not in again.output


def test_a_summary_is_stored_with_the_request_on_both_engines(any_warm):
    req = _submit(any_warm, _symbol())
    assert any_warm.get_grid_request(req.id).summary is None
    summary = {
        "stopped": "completed",
        "evaluated": 30,
        "planned": 30,
        "pbo": 0.5,
        "deflated_sharpe": float("nan"),
    }
    saved = any_warm.set_grid_summary(req.id, summary)
    assert saved.summary == {**summary, "deflated_sharpe": None}  # NaN is stored as null on every engine
    assert any_warm.get_grid_request(req.id).summary == saved.summary
    assert [r.summary for r in any_warm.list_grid_requests(limit=500) if r.id == req.id] == [saved.summary]
