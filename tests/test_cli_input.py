"""Hostile input on every CLI command: one line and exit code 2 (or 1 for a missing thing), never a
traceback. Runs the real commands on an empty embedded QP_HOME."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from quant_platform.cli import app

CASES = [
    (["run", "--start", "x", "--end", "y"], 2, "not a date"),
    (["run", "--start", "2024-08-02", "--end", "2024-08-01"], 2, "before start"),
    (["run", "--start", "1900-01-01", "--end", "2999-12-31"], 2, "first XSHG trading-day partition"),
    (["run", "--start", "2024-08-01", "--end", "2024-08-02", "--symbols", "0"], 2, "--symbols"),
    (["run", "--start", "2024-08-01", "--end", "2024-08-02", "--chunk", "-1"], 2, "--chunk"),
    (["qa", "--start", "2024-13-01", "--end", "2024-08-01"], 2, "not a date"),
    (["qa", "--start", "2024-08-01", "--end", "2999-01-01"], 2, "after the last"),
    (["backtest", "list", "--limit", "100000000"], 2, "--limit"),
    (["backtest", "list", "--limit", "0"], 2, "--limit"),
    (["backtest", "export", "nope", "--what", "bogus"], 2, "--what"),
    (["backtest", "export", "nope"], 1, "no equity"),
    (
        [
            "grid",
            "submit",
            "--strategy",
            "nope",
            "-p",
            "a=1",
            "--start",
            "2024-01-02",
            "--end",
            "2024-02-01",
            "--universe",
            "all",
        ],
        2,
        "unknown strategy",
    ),  # fmt: skip
    (
        [
            "grid",
            "submit",
            "--strategy",
            "sma_cross",
            "-p",
            "fast=1:1000000:1",
            "-p",
            "slow=2",
            "--start",
            "2024-01-02",
            "--end",
            "2024-02-01",
            "--universe",
            "all",
        ],
        2,
        "at most",
    ),  # fmt: skip
    (
        [
            "grid",
            "submit",
            "--strategy",
            "sma_cross",
            "-p",
            "fast=5",
            "-p",
            "slow=20",
            "--start",
            "1900-01-02",
            "--end",
            "2999-02-01",
            "--universe",
            "all",
        ],
        2,
        "window",
    ),  # fmt: skip
    (
        [
            "grid",
            "submit",
            "--strategy",
            "sma_cross",
            "-p",
            "fast=5",
            "-p",
            "slow=20",
            "--start",
            "2024-01-02",
            "--end",
            "2024-02-01",
            "--symbols",
            ",".join(f"{i:06d}.SZ" for i in range(10_001)),
        ],
        2,
        "at most",
    ),  # fmt: skip
    (
        [
            "grid",
            "submit",
            "--strategy",
            "sma_cross",
            "-p",
            "fast=5",
            "-p",
            "slow=20",
            "--start",
            "2024-01-02",
            "--end",
            "2024-02-01",
            "--symbols",
            "'; DROP TABLE x;--",
        ],
        2,
        "invalid symbol",
    ),  # fmt: skip
    (["grid", "status", "../../etc"], 1, "does not exist"),
    (["grid", "cancel", "nope"], 1, "does not exist"),
    (["grid", "list", "--limit", "-5"], 2, "--limit"),
    (["collect", "--url", "ws://127.0.0.1:9"], 2, "required"),
]


@pytest.mark.parametrize(("args", "code", "says"), CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_bad_cli_input_is_one_line_and_an_exit_code(qp_home, args, code, says):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no uncaught exception
    assert says in " ".join(result.output.split()) and "Traceback" not in result.output
