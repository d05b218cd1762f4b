"""Table rules and the gate's verdict.

Row rules judge one row at a time; table rules judge a partition (or a range of them) as a whole:
is every expected symbol there for every session, are there as many rows as the universe implies,
how much of the input was quarantined. `evaluate` folds the row split and any table checks into one
`QualityOutcome`:

* ERROR (blocks downstream): the quarantined share or a table check's failing share is above its
  threshold;
* WARN: nothing above a threshold, but something is non-zero (some rows quarantined, a symbol-day
  missing within tolerance);
* passed: nothing at all.

Shares are compared with `>`: a threshold of 0.01 tolerates exactly 1 %, and a threshold of 0 makes
any failure an ERROR.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from quant_platform.core.calendar import DateLike, get_calendar, to_date
from quant_platform.core.quality.kinds import bar_freq, freq_minutes, resolve
from quant_platform.core.quality.rules import SplitResult

Severity = Literal["ERROR", "WARN"]
Status = Literal["PASSED", "WARN", "ERROR"]

DEFAULT_MAX_QUARANTINED_SHARE = 0.01
DEFAULT_MAX_MISSING_SHARE = 0.01
DEFAULT_MAX_ROW_SHORTFALL = 0.05

Universe = Iterable[str] | Mapping[dt.date, Iterable[str]] | Callable[[dt.date], Iterable[str]]
"""The expected symbols: one list for every day, a mapping day -> symbols, or a callable(day)."""


@dataclass(frozen=True)
class TableCheck:
    """One table-level rule: `failed` of `total` units (symbol-days, symbols, rows) are missing/bad."""

    rule: str
    failed: int
    total: int
    threshold: float  # tolerated share of failed / total
    detail: str = ""
    examples: tuple[str, ...] = ()

    @property
    def share(self) -> float:
        if self.total:
            return self.failed / self.total
        return 0.0 if self.failed == 0 else 1.0

    @property
    def status(self) -> Status:
        if self.share > self.threshold:
            return "ERROR"
        return "WARN" if self.failed else "PASSED"

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "status": self.status,
            "failed": self.failed,
            "total": self.total,
            "share": round(self.share, 6),
            "threshold": self.threshold,
            "detail": self.detail,
            "examples": list(self.examples),
        }


@dataclass(frozen=True)
class QualityOutcome:
    """The gate's verdict on one partition, ready for a Dagster asset check.

    `passed` is False for WARN and ERROR; `severity` is what a failed check should carry ("WARN"
    when passed, as Dagster ignores it then). `status` spells the three states out.
    """

    passed: bool
    severity: Severity
    status: Status
    table_name: str | None
    quarantined_share: float
    thresholds: dict[str, float]
    rule_counts: dict[str, int]
    checks: tuple[TableCheck, ...] = ()
    description: str = ""
    rows_in: int = 0
    rows_quarantined: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.status == "ERROR"

    @property
    def metadata(self) -> dict:
        """Flat JSON-friendly values for `AssetCheckResult(metadata=...)`."""
        md: dict = {
            "status": self.status,
            "rows_in": self.rows_in,
            "rows_quarantined": self.rows_quarantined,
            "quarantined_share": round(self.quarantined_share, 6),
            "thresholds": dict(self.thresholds),
            "rule_counts": dict(self.rule_counts),
            "checks": [c.as_dict() for c in self.checks],
        }
        md.update(self.extra)
        return md


# --------------------------------------------------------------------------------------------------
# table checks


def _universe_for(universe: Universe, day: dt.date) -> list[str]:
    if isinstance(universe, Mapping):
        return list(universe.get(day, ()))
    if callable(universe):
        return list(universe(day))
    return list(universe)


def _dates(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, errors="coerce").dt.date


def klines_completeness(
    klines: pd.DataFrame,
    *,
    start: DateLike,
    end: DateLike,
    universe: Universe,
    calendar: str = "XSHG",
    max_missing_share: float = DEFAULT_MAX_MISSING_SHARE,
) -> TableCheck:
    """Every expected symbol has a kline on every session of [start, end].

    Counts missing (symbol, session) pairs against all expected pairs; rows on non-sessions are
    reported in `detail` (the row rule `outside_session` quarantines them).
    """
    cal = get_calendar(calendar)
    sessions = cal.sessions(start, end)
    present: set[tuple[str, dt.date]] = set()
    if len(klines):
        present = set(zip(klines["symbol"].astype(str), _dates(klines["trade_date"]), strict=True))
    missing: list[tuple[dt.date, str]] = []
    total = 0
    for day in sessions:
        expected = _universe_for(universe, day)
        total += len(expected)
        missing.extend((day, s) for s in expected if (s, day) not in present)
    session_set = set(sessions)
    off_days = sorted({d for _, d in present if d not in session_set and to_date(start) <= d <= to_date(end)})
    detail = f"{len(missing)} of {total} symbol-sessions missing over {len(sessions)} sessions {start}..{end}"
    if off_days:
        detail += f"; rows on non-trading days {[d.isoformat() for d in off_days[:5]]}"
    return TableCheck(
        rule="klines_completeness",
        failed=len(missing),
        total=total,
        threshold=max_missing_share,
        detail=detail,
        examples=tuple(f"{s}@{d}" for d, s in missing[:10]),
    )


def universe_coverage(
    df: pd.DataFrame,
    universe: Iterable[str],
    *,
    max_missing_share: float = DEFAULT_MAX_MISSING_SHARE,
    rule: str = "universe_coverage",
) -> TableCheck:
    """Every symbol of the expected universe has at least one row in the partition."""
    expected = sorted(set(universe))
    present = set(df["symbol"].astype(str).unique()) if len(df) else set()
    missing = [s for s in expected if s not in present]
    return TableCheck(
        rule=rule,
        failed=len(missing),
        total=len(expected),
        threshold=max_missing_share,
        detail=f"{len(missing)} of {len(expected)} expected symbols have no rows",
        examples=tuple(missing[:10]),
    )


def expected_rows(
    kind: str,
    trade_date: DateLike,
    n_symbols: int,
    *,
    freq: str | None = None,
    calendar: str = "XSHG",
    snapshot_seconds: float | None = None,
) -> int:
    """Rows a complete partition holds: bars per session x symbols, one kline per symbol, or for quotes
    trading seconds / `snapshot_seconds` x symbols. 0 on a non-trading day."""
    schema = resolve(kind, freq)
    cal = get_calendar(calendar)
    if not cal.is_session(trade_date):
        return 0
    if schema.name == "klines_daily":
        return n_symbols
    seconds = sum((b - a).total_seconds() for a, b in cal.session(trade_date).intervals)
    bar = bar_freq(schema)
    if bar is not None:
        return int(seconds // (freq_minutes(bar) * 60)) * n_symbols
    if not snapshot_seconds:
        raise ValueError("expected_rows for quotes needs snapshot_seconds")
    return int(seconds // snapshot_seconds) * n_symbols


def row_count(
    df: pd.DataFrame | int,
    expected: int,
    *,
    max_shortfall_share: float = DEFAULT_MAX_ROW_SHORTFALL,
    rule: str = "row_count",
) -> TableCheck:
    """Fewer rows than expected (shortfall share = missing rows / expected). Surplus rows are not a
    failure here (duplicates are a row rule) but are mentioned in `detail`."""
    n = df if isinstance(df, int) else len(df)
    shortfall = max(expected - n, 0)
    detail = f"{n} rows, {expected} expected"
    if n > expected:
        detail += f" ({n - expected} more than expected)"
    return TableCheck(
        rule=rule, failed=shortfall, total=expected, threshold=max_shortfall_share, detail=detail
    )


def quarantine_check(
    rows_in: int, rows_quarantined: int, *, max_share: float = DEFAULT_MAX_QUARANTINED_SHARE
) -> TableCheck:
    return TableCheck(
        rule="quarantined_share",
        failed=rows_quarantined,
        total=rows_in,
        threshold=max_share,
        detail=f"{rows_quarantined} of {rows_in} rows quarantined",
    )


# --------------------------------------------------------------------------------------------------
# verdict


def evaluate(
    result: SplitResult | tuple[pd.DataFrame, pd.DataFrame] | None = None,
    *,
    checks: Iterable[TableCheck] = (),
    max_quarantined_share: float = DEFAULT_MAX_QUARANTINED_SHARE,
    table_name: str | None = None,
) -> QualityOutcome:
    """Fold a row split (`SplitResult` or `(clean, quarantined)`) and table checks into a verdict.

    The quarantined share is quarantined / (clean + quarantined). With `result=None` only the
    table checks count.
    """
    rule_counts: dict[str, int] = {}
    rows_in = rows_q = 0
    extra: dict = {}
    if isinstance(result, SplitResult):
        rows_in, rows_q = result.rows_in, len(result.quarantined)
        rule_counts.update(result.rule_counts)
        table_name = table_name or result.table_name
        if result.warnings:
            extra["warnings"] = list(result.warnings)
        if result.trade_date:
            extra["trade_date"] = result.trade_date.isoformat()
    elif result is not None:
        clean, quarantined = result
        rows_q = len(quarantined)
        rows_in = len(clean) + rows_q
        if rows_q and "rule" in quarantined:
            rule_counts.update({str(k): int(v) for k, v in quarantined["rule"].value_counts().items()})

    all_checks: list[TableCheck] = []
    if result is not None:
        all_checks.append(quarantine_check(rows_in, rows_q, max_share=max_quarantined_share))
    all_checks.extend(checks)
    for c in all_checks:
        if c.rule != "quarantined_share":
            rule_counts[c.rule] = c.failed

    statuses = {c.status for c in all_checks}
    status: Status = "ERROR" if "ERROR" in statuses else "WARN" if "WARN" in statuses else "PASSED"
    share = rows_q / rows_in if rows_in else 0.0
    outcome = QualityOutcome(
        passed=status == "PASSED",
        severity="ERROR" if status == "ERROR" else "WARN",
        status=status,
        table_name=table_name,
        quarantined_share=share,
        thresholds={c.rule: c.threshold for c in all_checks},
        rule_counts=rule_counts,
        checks=tuple(all_checks),
        rows_in=rows_in,
        rows_quarantined=rows_q,
        extra=extra,
    )
    return _with_description(outcome)


def _with_description(o: QualityOutcome) -> QualityOutcome:
    from dataclasses import replace

    title = f"**{o.status}**" + (f" `{o.table_name}`" if o.table_name else "")
    lines = [
        f"{title}: {o.rows_quarantined} of {o.rows_in} rows quarantined ({o.quarantined_share:.2%}).",
        "",
        "| check | status | failed | total | share | threshold |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for c in o.checks:
        lines.append(
            f"| {c.rule} | {c.status} | {c.failed} | {c.total} | {c.share:.2%} | {c.threshold:.2%} |"
        )
    row_rules = {k: v for k, v in o.rule_counts.items() if k not in o.thresholds}
    if row_rules:
        lines += ["", "Quarantined by rule: " + ", ".join(f"`{k}` {v}" for k, v in row_rules.items())]
    examples = [f"{c.rule}: {', '.join(c.examples[:5])}" for c in o.checks if c.examples and c.failed]
    if examples:
        lines += ["", "Examples: " + "; ".join(examples)]
    return replace(o, description="\n".join(lines))
