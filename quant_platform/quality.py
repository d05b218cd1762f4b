"""Data-quality gate: the one import the assets and checks need (all of `quant_platform.core.quality`).

    from quant_platform import quality

    split = quality.split_quotes(raw, trade_date=day, universe=symbols, price_limit="board")
    clean, quarantined = split                      # every input row is in exactly one of them
    outcome = quality.evaluate(split, checks=[quality.universe_coverage(clean, symbols)])
    outcome.passed, outcome.severity, outcome.metadata, outcome.description
    metrics = quality.partition_metrics(clean, "raw_quotes", trade_date=day, quarantined=quarantined)
    gx = quality.validate_frame("raw_quotes", raw, day)   # Great Expectations, imported on first use

Nothing here imports dagster or Great Expectations at import time. See docs/data-quality.md.
"""

from quant_platform.core.quality import *  # noqa: F403
from quant_platform.core.quality import __all__  # noqa: F401
