"""Row-level quality gate between a source (or a rollup) and the cold tier.

Every frame an asset writes goes through the matching `quality.split_*` first: clean rows are
written, rows breaking a row rule go to the `quarantine` table with the rule and a readable reason,
so nothing good is lost and nothing bad reaches a backtest. The blocking asset checks then judge
the share that was quarantined.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from quant_platform.core.schema import QUARANTINE, TableSchema
from quant_platform.storage.cold import ColdStore


@dataclass
class GateResult:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    rows_in: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add_quarantine(self, rows: pd.DataFrame) -> None:
        """Rows rejected before the split (e.g. by a vendor adapter) join the quarantine."""
        self.quarantine = pd.concat([self.quarantine, QUARANTINE.conform(rows)], ignore_index=True)
        self.rows_in += len(rows)
        for rule, n in rows["rule"].value_counts().items():
            self.by_rule[rule] = self.by_rule.get(rule, 0) + int(n)

    @property
    def metadata(self) -> dict:
        share = len(self.quarantine) / self.rows_in if self.rows_in else 0.0
        return {
            "quarantined_rows": len(self.quarantine),
            "quarantined_share": round(share, 6),
            "quarantined_by_rule": self.by_rule,
        }


def split_day(kind: str, frame: pd.DataFrame, day: dt.date, calendar: str, **opts):
    """The row split of one trading day's frame of `kind` (raw_quotes, bars_1m.., klines_daily)."""
    from quant_platform import quality

    if kind == "raw_quotes":
        return quality.split_quotes(frame, trade_date=day, calendar=calendar, price_limit="board", **opts)
    if kind.startswith("bars_"):
        return quality.split_bars(
            frame, kind.removeprefix("bars_"), trade_date=day, calendar=calendar, **opts
        )
    return quality.split_klines(frame, trade_date=day, calendar=calendar, **opts)


def gate(
    kind: str, frames: dict[dt.date, pd.DataFrame], schema: TableSchema, calendar: str, **opts
) -> GateResult:
    """Split each day's frame; concatenate clean rows (conformed) and quarantine rows."""
    from quant_platform import quality

    clean, quarantined, by_rule, warnings, rows_in = [], [], {}, [], 0
    for day, frame in frames.items():
        if frame.empty:
            continue
        result = split_day(kind, frame, day, calendar, **opts)
        rows_in += result.rows_in
        clean.append(result.clean)
        if len(result.quarantined):
            quarantined.append(quality.to_quarantine_table(result, kind, trade_date=day))
        for rule, n in result.rule_counts.items():
            by_rule[rule] = by_rule.get(rule, 0) + int(n)
        warnings.extend(f"{day}: {w}" for w in result.warnings)
    return GateResult(
        clean=schema.conform(pd.concat(clean, ignore_index=True)) if clean else schema.empty(),
        quarantine=pd.concat(quarantined, ignore_index=True) if quarantined else QUARANTINE.empty(),
        rows_in=rows_in,
        by_rule=by_rule,
        warnings=warnings,
    )


def write(cold: ColdStore, schema: TableSchema, result: GateResult, days: list[dt.date]) -> None:
    """Replace the days' clean rows and the days' quarantine of this table, both atomically per day."""
    cold.replace_partitions(schema, result.clean, days)
    cold.replace_partitions(QUARANTINE, result.quarantine, days, scope=schema.name)


def vendor_rejected(source, table_name: str, days: list[dt.date]) -> pd.DataFrame:
    """QUARANTINE rows a source rejected while mapping its vendor's payloads (sources that can)."""
    take = getattr(source, "take_rejected", None)
    if not callable(take):
        return QUARANTINE.empty()
    rows = take()
    if rows is None or rows.empty:
        return QUARANTINE.empty()
    rows = QUARANTINE.conform(rows)
    wanted = rows["table_name"].eq(table_name) & pd.DatetimeIndex(rows["trade_date"]).isin(
        pd.DatetimeIndex(days)
    )
    return rows[wanted].reset_index(drop=True)


def by_day(df: pd.DataFrame, days: list[dt.date]) -> dict[dt.date, pd.DataFrame]:
    if df.empty:
        return {d: df for d in days}
    day_of_row = pd.DatetimeIndex(df["trade_date"]).date
    return {d: df[day_of_row == d] for d in days}
