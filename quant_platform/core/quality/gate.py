"""Row-level quality gate between a source (or a rollup) and the cold tier.

Every frame an asset writes goes through the matching `split_*` first: clean rows are written, rows
breaking a row rule go to the `quarantine` table with the rule and a readable reason, so nothing
good is lost and nothing bad reaches a backtest. The blocking asset checks then judge the share that
was quarantined. Writing the result is the assets' part (`quant_platform.assets.gate`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from quant_platform.core.quality.rules import split_bars, split_klines, split_quotes, to_quarantine_table
from quant_platform.core.schema import QUARANTINE, TableSchema


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
            "exact_duplicates": self.by_rule.get("duplicate", 0),
            "conflicting_duplicates": self.by_rule.get("conflicting_duplicate", 0),
        }


def split_day(kind: str, frame: pd.DataFrame, day: dt.date, calendar: str, **opts):
    """The row split of one trading day's frame of `kind` (raw_quotes, bars_1m.., klines_daily)."""
    if kind == "raw_quotes":
        return split_quotes(frame, trade_date=day, calendar=calendar, price_limit="board", **opts)
    if kind.startswith("bars_"):
        return split_bars(frame, kind.removeprefix("bars_"), trade_date=day, calendar=calendar, **opts)
    return split_klines(frame, trade_date=day, calendar=calendar, **opts)


Universe = Iterable[str] | Mapping[dt.date, Iterable[str]] | Callable[[dt.date], Iterable[str]]
"""One list of symbols for every day, a mapping day -> symbols, or a callable day -> symbols."""


def universe_of(universe: Universe | None, day: dt.date) -> list[str] | None:
    """The expected symbols of `day` (None: no universe, the unknown_symbol rule is off)."""
    if universe is None:
        return None
    if isinstance(universe, Mapping):
        return list(universe.get(day, ()))
    if callable(universe):
        return list(universe(day))
    return list(universe)


def gate(
    kind: str,
    frames: dict[dt.date, pd.DataFrame],
    schema: TableSchema,
    calendar: str,
    *,
    universe: Universe | None = None,
    **opts,
) -> GateResult:
    """Split each day's frame against that day's universe; concatenate clean rows (conformed) and
    quarantine rows, each filed under the day whose frame it came from (whatever its own trade_date)."""
    clean, quarantined, by_rule, warnings, rows_in = [], [], {}, [], 0
    if isinstance(universe, Iterable) and not isinstance(universe, Mapping):
        universe = list(universe)  # a one-shot iterator serves every day
    for day, frame in frames.items():
        if frame.empty:
            continue
        result = split_day(kind, frame, day, calendar, universe=universe_of(universe, day), **opts)
        rows_in += result.rows_in
        clean.append(result.clean)
        if len(result.quarantined):
            quarantined.append(to_quarantine_table(result, kind, trade_date=day))
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


def rejected_rows(rows: pd.DataFrame | None, table_name: str, days: list[dt.date]) -> pd.DataFrame:
    """The QUARANTINE rows of `table_name` on `days` among `rows` (e.g. what a vendor adapter rejected)."""
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
