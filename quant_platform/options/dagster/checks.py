"""Blocking `quality_gate` checks of the option tables: their GX suite (`options.gx`, GX imported
inside the check) and the quarantined share, judged like the market-data checks."""

import dagster as dg
import pandas as pd

from quant_platform.checks.asset_checks import Thresholds, empty_ok, run_days
from quant_platform.conventions import COLD_POOL
from quant_platform.options import chain
from quant_platform.partitions import calendar_name
from quant_platform.resources.clickhouse import ClickHouseResource

CHECKED = ("option_contracts", "option_quotes", "option_daily", "option_greeks")


def judge(table: str, days, cold, thresholds: Thresholds):
    """(passed, severity, description, metadata) of `table` over `days`."""
    from quant_platform import quality
    from quant_platform.options import gx

    df = cold.read_table(table, days[0], days[-1])
    counts = cold.quarantine_counts(table, days[0], days[-1])
    quarantined = int(counts["rows"].sum()) if len(counts) else 0
    outcome = quality.evaluate(
        (df, pd.DataFrame(index=range(quarantined))),
        table_name=table,
        max_quarantined_share=thresholds.max_quarantined_share,
    )
    slots = sorted({s for d in days for s, _ in chain.slot_times(d, calendar=calendar_name())})
    result = gx.validate(table, df, days[-1], slots) if len(df) else None
    passed, severity, description = (
        outcome.passed,
        dg.AssetCheckSeverity(outcome.severity),
        outcome.description,
    )
    if result is not None and not result.success:
        passed, severity = False, dg.AssetCheckSeverity.ERROR
        description = f"Great Expectations failed: {', '.join(result.failed)}\n\n{description}"
    if not empty_ok(df, days):
        passed, severity = False, dg.AssetCheckSeverity.ERROR
        description = f"no rows for trading days {days[0]} .. {days[-1]}\n\n{description}"
    by_rule = counts.groupby("rule")["rows"].sum().to_dict() if len(counts) else {}
    metadata = {
        "rows": len(df),
        "quarantined_rows": quarantined,
        "quarantined_share": round(outcome.quarantined_share, 6),
        "quarantined_by_rule": {k: int(v) for k, v in by_rule.items()},
        "days": f"{days[0]} .. {days[-1]}" if len(days) > 1 else str(days[0]),
        "max_quarantined_share": thresholds.max_quarantined_share,
    }
    if result is not None:
        metadata["great_expectations"] = dg.MetadataValue.md(result.markdown())
        metadata["gx_seconds"] = round(result.seconds, 3)
    return passed, severity, description, metadata


def options_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name="quality_gate",
        blocking=True,
        pool=COLD_POOL,
        description=f"GX suite and quarantined share of {table}; ERROR blocks downstream assets.",
    )
    def _check(context: dg.AssetCheckExecutionContext, clickhouse: ClickHouseResource) -> dg.AssetCheckResult:
        days = run_days(context.run.tags)
        with clickhouse.open() as cold:
            passed, severity, description, metadata = judge(table, days, cold, Thresholds.from_env())
        return dg.AssetCheckResult(
            passed=passed, severity=severity, description=description, metadata=metadata
        )

    return _check


OPTIONS_CHECKS = [options_check(t) for t in CHECKED]
