"""Great Expectations 1.x suites for raw quotes, intraday bars and daily klines.

The suites restate the column contracts of `core.schema` and the main row rules as GX expectations,
so the gate's verdict can be cross-checked by an independent engine and shown in GX's vocabulary.
GX is called directly (dagster-ge is pinned to GX < 1).

Importing GX takes several seconds, so nothing here imports it at module level: the first
`validate_frame` call imports it, builds one ephemeral (in-memory) context with a pandas datasource,
and keeps both for the life of the process. Suites depend on the partition day (its trading
sessions), so they are built per (table, day, calendar, columns) and cached (LRU, 64 entries).
Validation holds a lock: the context is shared and GX is not documented as thread-safe.

Expectations (each carries `meta={"name": ...}`; that name keys the results):

* `columns_present` - every schema column exists (extra columns are allowed);
* `type.COL` - column types: str, Timestamp (tz-aware), datetime64, float64, int64;
* `not_null.COL` - keys (symbol, trade_date, ts) and required prices;
* `unique.KEYS` - compound uniqueness of (symbol, ts), klines (symbol, trade_date);
* `positive_finite.COL` - prices in (0, 1e12]: > 0 and finite (NaN is caught by not_null);
* `nonneg.COL` - volume, amount (and bid/ask) in [0, 1e18];
* `ohlc.A>=B` - high >= low, high >= open/close (quotes: price), low <= open/close;
* `limit.*` - klines: high <= limit_up, low >= limit_down;
* `trade_date.partition` - trade_date equals the partition day;
* `session.N` - ts inside the N-th trading interval of the day (quotes [start, end], bars
  (start, end]); row conditions split the day at each interval's end so the lunch break is
  excluded; `session.trading_day` - no rows at all on a non-trading day.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from quant_platform.core.calendar import DateLike, get_calendar, to_date
from quant_platform.core.quality.kinds import KLINES, QUOTES, key_columns, resolve
from quant_platform.core.schema import DATE, STR, TS, TableSchema

if TYPE_CHECKING:
    import datetime as dt

    from great_expectations.core import ExpectationSuite

MAX_PRICE = 1e12
MAX_AMOUNT = 1e18
_GX_TYPES = {STR: "str", TS: "Timestamp", DATE: "datetime64", "float64": "float64", "int64": "int64"}
_SUITE_CACHE_SIZE = 64

IN_SESSION = "_in_session"  # helper column of multi-day validation: ts inside its day's sessions
_lock = threading.RLock()
_state: dict[str, Any] = {}
_suites: OrderedDict[tuple, ExpectationSuite] = OrderedDict()


@dataclass(frozen=True)
class ExpectationOutcome:
    name: str
    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_between
    success: bool
    column: str | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    examples: tuple[str, ...] = ()
    exception: str | None = None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "expectation": self.expectation,
            "success": self.success,
            "column": self.column,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": self.unexpected_percent,
            "observed_value": None if self.observed_value is None else str(self.observed_value),
            "examples": list(self.examples),
            "exception": self.exception,
        }


@dataclass(frozen=True)
class GxResult:
    """Outcome of one suite run on one frame."""

    success: bool
    table_name: str
    trade_date: dt.date
    rows: int
    results: tuple[ExpectationOutcome, ...]
    seconds: float = 0.0
    suite_name: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if not r.success]

    @property
    def unexpected_counts(self) -> dict[str, int]:
        """Unexpected row counts of every row-level expectation (0 when it passed)."""
        return {r.name: r.unexpected_count for r in self.results if r.unexpected_count is not None}

    def __getitem__(self, name: str) -> ExpectationOutcome:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def metadata(self) -> dict:
        """Compact JSON-friendly dict for Dagster metadata."""
        return {
            "gx_success": self.success,
            "gx_suite": self.suite_name,
            "rows": self.rows,
            "evaluated": len(self.results),
            "failed": self.failed,
            "unexpected": {r.name: r.unexpected_count for r in self.results if not r.success},
            "examples": {r.name: list(r.examples) for r in self.results if not r.success and r.examples},
            "exceptions": {r.name: r.exception for r in self.results if r.exception},
            "seconds": round(self.seconds, 3),
        }

    def markdown(self) -> str:
        lines = [
            f"GX suite `{self.suite_name}`: **{'passed' if self.success else 'failed'}** "
            f"({len(self.results) - len(self.failed)}/{len(self.results)} expectations, {self.rows} rows)",
            "",
            "| expectation | success | unexpected | examples |",
            "|---|---|---:|---|",
        ]
        for r in self.results:
            count = "" if r.unexpected_count is None else str(r.unexpected_count)
            ex = r.exception or ", ".join(r.examples[:3])
            lines.append(
                f"| {r.name} | {'yes' if r.success else '**no**'} | {count} | {ex.replace('|', '/')} |"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# context


def gx_context() -> tuple[Any, Any]:
    """(ephemeral data context, whole-dataframe batch definition), created once per process."""
    with _lock:
        if "context" not in _state:
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            )
            context = gx.get_context(mode="ephemeral", project_config=config)
            source = context.data_sources.add_pandas("quant_platform")
            asset = source.add_dataframe_asset("frame")
            _state["batch_definition"] = asset.add_batch_definition_whole_dataframe("whole")
            _state["context"] = context
        return _state["context"], _state["batch_definition"]


def warm_up() -> float:
    """Import GX and build the context now (e.g. at process start); returns the seconds it took."""
    start = time.perf_counter()
    gx_context()
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------------
# suites


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").isoformat()


def build_suite(
    kind: str,
    trade_date: DateLike,
    *,
    freq: str | None = None,
    calendar: str = "XSHG",
    columns: list[str] | tuple[str, ...] | None = None,
) -> ExpectationSuite:
    """The suite for `kind` on `trade_date` (cached). `columns`: the frame's columns; expectations on
    absent schema columns are left out (`columns_present` reports them) instead of erroring."""
    schema = resolve(kind, freq)
    days = (
        tuple(sorted({to_date(d) for d in trade_date}))
        if isinstance(trade_date, list | tuple)
        else (to_date(trade_date),)
    )
    present = tuple(c for c in schema.names if columns is None or c in columns)
    key = (schema.name, days, calendar, present)
    with _lock:
        suite = _suites.get(key)
        if suite is not None:
            _suites.move_to_end(key)
            return suite
        gx_context()
        suite = _build(schema, days, calendar, set(present))
        _suites[key] = suite
        while len(_suites) > _SUITE_CACHE_SIZE:
            _suites.popitem(last=False)
        return suite


def _build(
    schema: TableSchema, days: tuple[dt.date, ...], calendar: str, present: set[str]
) -> ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column as C

    day = days[-1]
    span = day.isoformat() if len(days) == 1 else f"{days[0].isoformat()}..{day.isoformat()}"
    suite = gx.ExpectationSuite(name=f"{schema.name}.{span}.{calendar}")

    def add(name: str, expectation) -> None:
        expectation.meta = {"name": name}
        suite.add_expectation(expectation)

    def has(*cols: str) -> bool:
        return all(c in present for c in cols)

    add("columns_present", gxe.ExpectTableColumnsToMatchSet(column_set=schema.names, exact_match=False))
    for col in schema.columns:
        if has(col.name):
            add(
                f"type.{col.name}",
                gxe.ExpectColumnValuesToBeOfType(column=col.name, type_=_GX_TYPES[col.dtype]),
            )

    keys = key_columns(schema)
    for col in ("symbol", "trade_date", "ts"):
        if col in schema.names and has(col):
            add(f"not_null.{col}", gxe.ExpectColumnValuesToNotBeNull(column=col))
    if has(*keys):
        add(f"unique.{'+'.join(keys)}", gxe.ExpectCompoundColumnsToBeUnique(column_list=keys))

    if schema.name == QUOTES:
        prices, optional, close = ("price", "open", "high", "low", "prev_close"), ("bid", "ask"), "price"
    elif schema.name == KLINES:
        prices, optional, close = ("open", "high", "low", "close", "prev_close"), (), "close"
    else:
        prices, optional, close = ("open", "high", "low", "close"), (), "close"
    for col in prices:
        if has(col):
            add(f"not_null.{col}", gxe.ExpectColumnValuesToNotBeNull(column=col))
            add(
                f"positive_finite.{col}",
                gxe.ExpectColumnValuesToBeBetween(
                    column=col, min_value=0, strict_min=True, max_value=MAX_PRICE
                ),
            )
    for col in optional:
        if has(col):
            add(
                f"nonneg.{col}",
                gxe.ExpectColumnValuesToBeBetween(column=col, min_value=0, max_value=MAX_PRICE),
            )
    for col in ("volume", "amount"):
        if has(col):
            add(
                f"nonneg.{col}",
                gxe.ExpectColumnValuesToBeBetween(column=col, min_value=0, max_value=MAX_AMOUNT),
            )

    pairs = [("high", "low"), ("high", "open"), ("high", close), ("open", "low"), (close, "low")]
    for a, b in pairs:
        if has(a, b):
            add(
                f"ohlc.{a}>={b}",
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=a, column_B=b, or_equal=True, ignore_row_if="either_value_is_missing"
                ),
            )
    if schema.name == KLINES:
        for a, b, name in (
            ("limit_up", "high", "limit.high<=limit_up"),
            ("low", "limit_down", "limit.low>=limit_down"),
        ):
            if has(a, b):
                add(
                    name,
                    gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                        column_A=a, column_B=b, or_equal=True, ignore_row_if="either_value_is_missing"
                    ),
                )

    if has("trade_date"):
        add(
            "trade_date.partition",
            gxe.ExpectColumnValuesToBeInSet(column="trade_date", value_set=[pd.Timestamp(d) for d in days]),
        )

    cal = get_calendar(calendar)
    if len(days) > 1:  # a range: the caller marks each row's session membership in IN_SESSION
        if schema.name != KLINES and has("ts"):
            add("session.all", gxe.ExpectColumnValuesToBeInSet(column=IN_SESSION, value_set=[True]))
        return suite
    if not cal.is_session(day):
        add("session.trading_day", gxe.ExpectTableRowCountToEqual(value=0))
    elif schema.name != KLINES and has("ts"):
        intervals = cal.session(day).intervals
        bars = schema.name != QUOTES
        # Segment k of the time axis is (end[k-1], end[k]] (open-ended at both extremes); a ts in it
        # must lie in interval k. Together the segments cover every ts, so each row is checked once.
        for k, (start, end) in enumerate(intervals):
            conds = []
            if k > 0:
                conds.append(C("ts") > _iso(intervals[k - 1][1]))
            if k < len(intervals) - 1:
                conds.append(C("ts") <= _iso(end))
            row_condition = None
            if len(conds) == 1:
                row_condition = conds[0]
            elif len(conds) == 2:
                row_condition = conds[0] & conds[1]
            add(
                f"session.{k + 1}",
                gxe.ExpectColumnValuesToBeBetween(
                    column="ts",
                    min_value=start.tz_convert("UTC"),
                    max_value=end.tz_convert("UTC"),
                    strict_min=bars,
                    row_condition=row_condition,
                ),
            )
    return suite


# --------------------------------------------------------------------------------------------------
# validation


def validate_frame(
    kind: str,
    df: pd.DataFrame,
    trade_date: DateLike | None,
    *,
    freq: str | None = None,
    calendar: str = "XSHG",
    max_examples: int = 5,
) -> GxResult:
    """Run the suite of `kind` ('raw_quotes', 'bars_1m'.., 'bars' + freq, 'klines_daily') on `df`.

    `trade_date` None: taken from the frame when it holds exactly one day. Returns a `GxResult` with
    one `ExpectationOutcome` per expectation, in suite order.
    """
    schema = resolve(kind, freq)
    if trade_date is None:
        days = pd.to_datetime(df["trade_date"]).dropna().unique() if "trade_date" in df and len(df) else []
        if len(days) != 1:
            raise ValueError(f"{schema.name}: pass trade_date (frame holds {len(days)} distinct days)")
        trade_date = pd.Timestamp(days[0])
    day = to_date(trade_date)
    suite = build_suite(schema.name, day, calendar=calendar, columns=list(df.columns))
    return _run_suite(schema, df, suite, day, max_examples)


def in_session_mask(df: pd.DataFrame, calendar: str = "XSHG", *, bars: bool = False) -> pd.Series:
    """Whether each row's ts lies in a trading interval of its own trade_date ([start, end] for
    quotes, (start, end] for bars); rows of non-trading days are False."""
    cal = get_calendar(calendar)
    mask = pd.Series(False, index=df.index)
    ts = pd.to_datetime(df["ts"], utc=True)
    for day, idx in df.groupby(pd.to_datetime(df["trade_date"]).dt.date).groups.items():
        if not cal.is_session(day):
            continue
        t = ts.loc[idx]
        inside = pd.Series(False, index=idx)
        for start, end in cal.session(day).intervals:
            inside |= ((t > start) if bars else (t >= start)) & (t <= end)
        mask.loc[idx] = inside
    return mask


def validate_days(
    kind: str,
    df: pd.DataFrame,
    days,
    *,
    freq: str | None = None,
    calendar: str = "XSHG",
    max_examples: int = 5,
) -> GxResult:
    """One validation for several trading days (GX's cost is per expectation, not per row).

    Per-day session expectations become one expectation on a session-membership column computed
    here from the calendar; everything else is the single-day suite.
    """
    days = sorted({to_date(d) for d in days})
    if len(days) == 1:
        return validate_frame(kind, df, days[0], freq=freq, calendar=calendar, max_examples=max_examples)
    schema = resolve(kind, freq)
    frame = df
    if schema.name != KLINES and "ts" in df and "trade_date" in df:
        frame = df.assign(**{IN_SESSION: in_session_mask(df, calendar, bars=schema.name != QUOTES)})
    suite = build_suite(schema.name, days, calendar=calendar, columns=list(df.columns))
    return _run_suite(schema, frame, suite, days[-1], max_examples)


def _run_suite(schema: TableSchema, frame: pd.DataFrame, suite, day, max_examples: int) -> GxResult:
    _, batch_definition = gx_context()
    start = time.perf_counter()
    with _lock:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        run = batch.validate(
            suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": max_examples}
        )
    seconds = time.perf_counter() - start
    by_name = {r.expectation_config.meta.get("name"): r for r in run.results}
    outcomes = tuple(
        _outcome(e.meta["name"], by_name.get(e.meta["name"]), max_examples) for e in suite.expectations
    )
    return GxResult(
        success=all(o.success for o in outcomes),
        table_name=schema.name,
        trade_date=day,
        rows=len(frame),
        results=outcomes,
        seconds=seconds,
        suite_name=suite.name,
    )


def _example(v: Any) -> str:
    """Readable text for an unexpected value: numpy scalars unwrapped, tuples/dicts spelled out."""
    if isinstance(v, dict):
        return ", ".join(f"{k}={_example(x)}" for k, x in v.items())
    if isinstance(v, tuple | list):
        return "(" + ", ".join(_example(x) for x in v) + ")"
    if hasattr(v, "item") and not isinstance(v, pd.Timestamp):
        v = v.item()
    return str(v)


def _outcome(name: str, r, max_examples: int) -> ExpectationOutcome:
    if r is None:
        return ExpectationOutcome(name=name, expectation="", success=False, exception="no result returned")
    cfg = r.expectation_config
    res = r.result or {}
    info = r.exception_info or {}
    exception = None
    if info.get("raised_exception"):
        exception = info.get("exception_message")
    else:  # per-metric exceptions: {metric_id: {raised_exception, exception_message, ...}}
        messages = [
            v.get("exception_message")
            for v in info.values()
            if isinstance(v, dict) and v.get("raised_exception")
        ]
        exception = "; ".join(m for m in messages if m) or None
    examples = tuple(_example(v) for v in (res.get("partial_unexpected_list") or [])[:max_examples])
    column = cfg.kwargs.get("column") or (
        f"{cfg.kwargs['column_A']},{cfg.kwargs['column_B']}" if "column_A" in cfg.kwargs else None
    )
    if column is None and "column_list" in cfg.kwargs:
        column = ",".join(cfg.kwargs["column_list"])
    return ExpectationOutcome(
        name=name,
        expectation=cfg.type,
        success=bool(r.success),
        column=column,
        unexpected_count=res.get("unexpected_count"),
        unexpected_percent=res.get("unexpected_percent"),
        observed_value=res.get("observed_value"),
        examples=examples,
        exception=exception,
    )
