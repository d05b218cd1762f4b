"""Pure layers stay pure: importing them loads no Dagster, no Great Expectations, no matplotlib, no plotly.

Each import runs in a fresh interpreter, since this test process has already imported all three.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("dagster", "great_expectations", "matplotlib", "plotly", "quant_platform.checks")

PURE_MODULES = [
    "quant_platform.core",
    "quant_platform.core.quality",
    "quant_platform.core.plots",
    "quant_platform.core.quality.gx_suites",
    "quant_platform.core.limits",
    "quant_platform.quality",
    "quant_platform.settings",
    "quant_platform.conventions",
    "quant_platform.sources",
    "quant_platform.sources.files",
    "quant_platform.sources.akshare",
    "quant_platform.storage",
    "quant_platform.storage.cold",
    "quant_platform.storage.warm",
    "quant_platform.storage.hot",
    "quant_platform.client",
    # grid search's plain modules; its Dagster wiring is quant_platform.grid.dagster
    "quant_platform.grid",
    "quant_platform.grid.spec",
    "quant_platform.grid.service",
    "quant_platform.grid.evaluate",
    "quant_platform.grid.progress",
    "quant_platform.grid.winner",
    "quant_platform.grid.runs",
    # options' plain modules; its Dagster wiring is quant_platform.options.dagster
    "quant_platform.options",
    "quant_platform.options.bsm",
    "quant_platform.options.chain",
    "quant_platform.options.sources",
    "quant_platform.options.ib",
    "quant_platform.options.rules",
    "quant_platform.options.rollup",
    "quant_platform.options.enrich",
    "quant_platform.options.qa",
    "quant_platform.options.gx",
    # comparison, reports and share tokens (no Dagster wiring at all)
    "quant_platform.research",
    "quant_platform.research.runs",
    "quant_platform.research.compare",
    "quant_platform.research.report",
    "quant_platform.research.cli",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_importing_a_pure_module_loads_nothing_heavy(module):
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # this checkout first
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    assert out.stdout.split() == [], f"importing {module} loaded {out.stdout.strip()}"
