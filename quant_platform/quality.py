"""Data-quality gate: the one import the assets and checks need.

    from quant_platform import quality

    split = quality.split_quotes(raw, trade_date=day, universe=symbols, price_limit="board")
    clean, quarantined = split                      # every input row is in exactly one of them
    outcome = quality.evaluate(split, checks=[quality.universe_coverage(clean, symbols)])
    outcome.passed, outcome.severity, outcome.metadata, outcome.description
    metrics = quality.partition_metrics(clean, "raw_quotes", trade_date=day, quarantined=quarantined)
    gx = quality.validate_frame("raw_quotes", raw, day)   # Great Expectations, imported on first use

Nothing here imports dagster or Great Expectations at import time. See docs/data-quality.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quant_platform.core.quality import *  # noqa: F403
from quant_platform.core.quality import __all__ as _core_all

if TYPE_CHECKING:
    import pandas as pd

    from quant_platform.checks.gx_suites import GxResult
    from quant_platform.core.calendar import DateLike


def validate_frame(kind: str, df: pd.DataFrame, trade_date: DateLike | None, **opts) -> GxResult:
    """Great Expectations validation of `df` (see `quant_platform.checks.gx_suites.validate_frame`).

    The first call imports GX (several seconds) and builds an in-memory context kept for the process.
    """
    from quant_platform.checks.gx_suites import validate_frame as _validate

    return _validate(kind, df, trade_date, **opts)


__all__ = [*_core_all, "validate_frame"]
