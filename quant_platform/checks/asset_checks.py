"""Blocking data-quality checks: Great Expectations suites plus the quarantine and completeness rules.

One check per daily table. It re-reads what the asset wrote for the run's trading days, validates it
with the table's GX suite (imported inside the check: the import costs seconds) and judges the
quarantined share and, for klines, completeness against the calendar and the universe. ERROR
severity blocks every downstream asset, in the same run and in automation.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from quant_platform.conventions import COLD_POOL, run_partition_keys
from quant_platform.partitions import calendar_name, daily_partitions
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.market import MarketDataResource
from quant_platform.settings import settings


@dataclass(frozen=True)
class Thresholds:
    """Tolerated shares before a check blocks (QP_QA_MAX_QUARANTINED_SHARE, QP_QA_MAX_MISSING_SHARE)."""

    max_quarantined_share: float = 0.01
    max_missing_share: float = 0.05  # suspensions make a few symbol-days legitimately absent

    @classmethod
    def from_env(cls) -> "Thresholds":
        current = settings()
        return cls(current.qa_max_quarantined_share, current.qa_max_missing_share)


def judge(
    table: str,
    days: list[dt.date],
    cold,
    universe: list[str] | Mapping[dt.date, list[str]] | None,
    thresholds: Thresholds,
):
    """(passed, severity, description, metadata) for `table` over `days`; `universe`: one list for
    every day or a mapping day -> symbols (klines completeness)."""
    from quant_platform import quality
    from quant_platform.core.quality.gx_suites import validate_days

    df = cold.read_table(table, days[0], days[-1])
    counts = cold.quarantine_counts(table, days[0], days[-1])
    quarantined = int(counts["rows"].sum()) if len(counts) else 0
    checks = []
    if table == "klines_daily" and universe:
        checks.append(
            quality.klines_completeness(
                df,
                start=days[0],
                end=days[-1],
                universe=universe,
                calendar=calendar_name(),
                max_missing_share=thresholds.max_missing_share,
            )
        )
    rejected = pd.DataFrame(index=range(quarantined))  # the split happened at write time; counts suffice
    outcome = quality.evaluate(
        (df, rejected),
        checks=checks,
        table_name=table,
        max_quarantined_share=thresholds.max_quarantined_share,
    )
    gx = validate_days(table, df, days, calendar=calendar_name()) if len(df) else None
    gx_ok = gx is None or gx.success
    if not gx_ok:
        passed, severity = False, dg.AssetCheckSeverity.ERROR
    elif outcome.passed:
        passed, severity = True, dg.AssetCheckSeverity.ERROR
    else:
        passed, severity = False, dg.AssetCheckSeverity(outcome.severity)
    by_rule = counts.groupby("rule")["rows"].sum().to_dict() if len(counts) else {}
    description = outcome.description
    if gx is not None and not gx.success:
        description = f"Great Expectations failed: {', '.join(gx.failed)}\n\n{description}"
    metadata = {
        "rows": len(df),
        "quarantined_rows": quarantined,
        "quarantined_by_rule": {k: int(v) for k, v in by_rule.items()},
        "days": f"{days[0]} .. {days[-1]}" if len(days) > 1 else str(days[0]),
        "thresholds": {
            "max_quarantined_share": thresholds.max_quarantined_share,
            "max_missing_share": thresholds.max_missing_share,
        },
        "quarantined_share": round(outcome.quarantined_share, 6),
        **{f"rule/{c.rule}": float(round(c.share, 6)) for c in checks},
    }
    if gx is not None:
        metadata["great_expectations"] = dg.MetadataValue.md(gx.markdown())
        metadata["gx_seconds"] = round(gx.seconds, 3)
    if not empty_ok(df, days):
        passed, severity = False, dg.AssetCheckSeverity.ERROR
        description = f"no rows for trading days {days[0]} .. {days[-1]}\n\n{description}"
    return passed, severity, description, metadata


def run_days(tags: dict[str, str]) -> list[dt.date]:
    """Trading days of the run that materialized the asset (one partition or a range).

    The checks are not partitioned themselves: one verdict covers the whole run, which is what
    automation conditions and the UI's check status read.
    """
    keys = run_partition_keys(tags)
    if keys is not None:
        return [
            dt.date.fromisoformat(k)
            for k in daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(*keys))
        ]
    raise dg.Failure("the quality gate runs with a partitioned materialization (a day or a range)")


def empty_ok(df, days: list[dt.date]) -> bool:
    """A trading day with no rows at all is an outage, not a quiet day."""
    return len(df) > 0 or not days


def quality_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name="quality_gate",
        blocking=True,
        pool=COLD_POOL,
        description=f"GX suite, quarantined share{' and completeness' if table == 'klines_daily' else ''} "
        f"of {table}; ERROR blocks downstream assets.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, clickhouse: ClickHouseResource, market: MarketDataResource
    ) -> dg.AssetCheckResult:
        days = run_days(context.run.tags)
        source = market.source() if table == "klines_daily" else None
        universe = {day: source.universe(day) for day in days} if source is not None else None
        with clickhouse.open() as cold:
            passed, severity, description, metadata = judge(
                table, days, cold, universe, Thresholds.from_env()
            )
        return dg.AssetCheckResult(
            passed=passed, severity=severity, description=description, metadata=metadata
        )

    return _check


QUALITY_CHECKS = [quality_check(t) for t in ("raw_quotes", "bars_1m", "bars_5m", "bars_15m", "klines_daily")]
