"""Data-quality rules without orchestration: row rules, table rules, QA report metrics and the
Great Expectations suites (`gx_suites`: GX itself is imported on the first validation, it is slow).

`quant_platform.quality` is the public facade and re-exports everything listed here.
"""

from quant_platform.core.plots import plot_completeness, plot_quarantine, plot_trend
from quant_platform.core.quality.gx_suites import validate_frame
from quant_platform.core.quality.kinds import resolve
from quant_platform.core.quality.quarantine import quarantine_frame
from quant_platform.core.quality.report import (
    calendar_gaps,
    completeness_by_symbol,
    kline_calendar_gaps,
    markdown_table,
    partition_metrics,
    qa_trend,
    return_outliers,
    robust_zscore,
    stale_runs,
    summary_markdown,
    trend_markdown,
)
from quant_platform.core.quality.rules import (
    RULES,
    PriceLimit,
    SplitResult,
    split_bars,
    split_frame,
    split_klines,
    split_quotes,
    to_quarantine_table,
)
from quant_platform.core.quality.table_rules import (
    QualityOutcome,
    TableCheck,
    evaluate,
    expected_rows,
    klines_completeness,
    quarantine_check,
    row_count,
    universe_coverage,
)

__all__ = [
    "RULES",
    "PriceLimit",
    "QualityOutcome",
    "SplitResult",
    "TableCheck",
    "calendar_gaps",
    "completeness_by_symbol",
    "evaluate",
    "expected_rows",
    "kline_calendar_gaps",
    "klines_completeness",
    "markdown_table",
    "partition_metrics",
    "plot_completeness",
    "plot_quarantine",
    "plot_trend",
    "qa_trend",
    "quarantine_check",
    "quarantine_frame",
    "resolve",
    "return_outliers",
    "robust_zscore",
    "row_count",
    "split_bars",
    "split_frame",
    "split_klines",
    "split_quotes",
    "stale_runs",
    "summary_markdown",
    "to_quarantine_table",
    "trend_markdown",
    "universe_coverage",
    "validate_frame",
]
