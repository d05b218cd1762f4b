"""Fixtures of the comparison and report tests: runs recorded through `quant-platform backtest run` on a
copy of the grid tests' materialized klines (tests/grid/conftest.py), and the system Chromium.

Chromium (`/usr/bin/chromium`, installed by .ci/services.sh) is a service like the databases: missing,
it skips the browser tests, unless QP_TEST_REQUIRE_SERVICES=1 (CI), where it fails them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quant_platform.cli import app
from quant_platform.sources.synthetic import synthetic_symbols
from tests.conftest import unreachable
from tests.grid.conftest import END, N_SYMBOLS, START, chdb_path, klines_template  # noqa: F401 - shared fixtures

SYMBOLS = synthetic_symbols(N_SYMBOLS)
LATER_START = "2024-04-01"
CHROMIUM = Path("/usr/bin/chromium")


def record(*args: str) -> str:
    """`quant-platform backtest run ARGS...` through the real entry point; the new run's id."""
    result = CliRunner().invoke(app, ["backtest", "run", *args])
    assert result.exit_code == 0, result.output
    return result.output.split("run id: ")[1].split()[0]


@pytest.fixture
def recorded_runs(chdb_path) -> list[str]:  # noqa: F811
    """Two runs over different windows: sma_cross on two symbols from START, xs_momentum on four
    from LATER_START (so alignment has something to do)."""
    sma = record("--strategy", "sma_cross", "-p", "fast=3", "-p", "slow=10", "--symbols",
                 ",".join(SYMBOLS[:2]), "--start", START, "--end", END)  # fmt: skip
    xs = record("--strategy", "xs_momentum", "-p", "lookback=5", "-p", "top_n=2", "-p", "rebalance=5",
                "--symbols", ",".join(SYMBOLS), "--start", LATER_START, "--end", END)  # fmt: skip
    return [sma, xs]


@pytest.fixture
def chromium() -> str:
    """The system Chromium's path, for Playwright's `executable_path` (it cannot download browsers here)."""
    found = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    if not found:
        unreachable("chromium", FileNotFoundError(f"{CHROMIUM} (apt-get install chromium)"))
    return str(found)
