"""`quant-platform options chain` and the options line of `selfcheck`."""

from __future__ import annotations

import datetime as dt

import pytest
from test_assets import materialize
from typer.testing import CliRunner

from quant_platform.cli import app


@pytest.mark.parametrize(
    "args, says",
    [
        (["--underlying", "510050.SH", "--date", "2024-13-40"], "--date"),
        (["--underlying", "510050.SH", "--date", "2024-10-01"], "not a XSHG trading day"),
        (["--underlying", "'; DROP TABLE x", "--date", "2024-10-08"], "is not a symbol"),
        (["--underlying", "510050.SH", "--date", "2024-10-08", "--expiry", "soon"], "--expiry"),
        (["--underlying", "510050.SH", "--date", "1999-01-04"], "--date"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(qp_home, args, says):
    result = CliRunner().invoke(app, ["options", "chain", *args])
    assert result.exit_code == 2, result.output
    assert says in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_chain_prints_the_enriched_chain_and_selfcheck_counts(qp_home, chdb_dsn):
    empty = CliRunner().invoke(app, ["options", "chain", "--underlying", "510050.SH", "--date", "2024-10-08"])
    assert empty.exit_code == 1 and "materialize them first" in empty.output
    assert materialize(chdb_dsn, dt.date(2024, 9, 30), dt.date(2024, 10, 8), checks=[]).success
    result = CliRunner().invoke(
        app, ["options", "chain", "--underlying", "510050.SH", "--date", "2024-09-30"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "510050.SH options on 2024-09-30" in result.output and "C iv" in result.output
    assert "parity breaks" in result.output
    check = CliRunner().invoke(app, ["selfcheck"], terminal_width=200)
    assert "options tables: option_contracts" in check.output
    assert "option_quotes 0" not in check.output
