"""Row rules: split one partition into clean rows and quarantined rows.

Every input row ends up in exactly one of the two outputs, so a bad value never takes good rows down
with it and nothing is silently dropped. The split runs in three stages:

1. Frame level (raises, because nothing row-wise can fix it): a missing schema column, a naive
   `datetime64` ts column, a numeric ts column. Extra columns are dropped and listed in
   `SplitResult.warnings`; a tz-aware ts in another zone is converted to UTC (also noted).
2. Per-row rules, evaluated on every row: values are coerced one by one (a string in a numeric
   column quarantines that row only), then every rule in `RULES` order is applied. A row failing
   several rules gets the first one as `rule` and all of their reasons joined with "; " as `reason`.
3. Sequence rules, on the rows that passed stage 2: duplicated keys (of identical copies the first
   in input order is kept; versions that differ are all quarantined) and, for quotes, cumulative
   volume/amount decreasing within a day (the fewest snapshots that make the day's series
   non-decreasing are quarantined). Input order does not matter: rows are sorted by (symbol, ts),
   and only an inconsistency after sorting is quarantined.

Clean rows are returned conformed to the table schema (exact columns and dtypes, sorted by the
schema's key, fresh index). Quarantined rows keep the schema columns with their original values
(before coercion) and original index labels, plus `rule` and `reason`.
"""

from __future__ import annotations

import datetime as dt
import logging
import numbers
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd

from quant_platform.core import markets
from quant_platform.core.calendar import DateLike, TradingCalendar, get_calendar, to_date
from quant_platform.core.quality.kinds import KLINES, QUOTES, bar_freq, freq_minutes, key_columns, resolve
from quant_platform.core.quality.quarantine import _isnull, quarantine_frame
from quant_platform.core.schema import DATE, QUARANTINE, STR, TS, TableSchema

log = logging.getLogger(__name__)

RULES: dict[str, str] = {
    "bad_type": "a value that cannot be read as its column's type (text in a numeric column, a boolean, "
    "bytes, a list, a dict, a Decimal NaN or any other non-number in a numeric column, an unparseable "
    "or naive timestamp, a non-integer volume, a non-text symbol)",
    "missing_value": "a required value is null, NaN or an empty symbol",
    "non_finite": "a numeric value is +inf or -inf (limit_up may be +inf: unlimited)",
    "out_of_range": "a number too large to be real or to store: beyond float64 (e.g. a 400-digit "
    "string), a volume beyond int64, or above the plausible maximum (`BOUNDS`: prices 1e7, volume "
    "1e15 shares, amount 1e18)",
    "non_positive_price": "a price is <= 0 (bid/ask/limit_down: < 0)",
    "negative_volume": "volume or amount < 0",
    "high_lt_low": "high < low",
    "ohlc_inconsistent": "high < max(open, close) or low > min(open, close); quotes use price for close",
    "crossed_book": "quotes: best bid > best ask (both present and > 0); a crossed book is not a "
    "tradable quote",
    "unknown_symbol": "symbol not in the expected universe (only when a universe is given)",
    "trade_date_mismatch": "trade_date differs from the partition's trading day",
    "outside_session": "ts outside the trading intervals of its trade_date (quotes: [start, end], "
    "bars: (start, end] since bars are labelled by their end), or trade_date is not a trading day",
    "bar_misaligned": "bar ts not on the bar-size grid (e.g. 10:03 for 5m bars)",
    "price_limit": "price beyond prev_close * (1 +- limit) + half a tick; klines also against their "
    "own limit_up/limit_down",
    "change_rate_mismatch": "klines change_rate differs from close / prev_close - 1",
    "conflicting_duplicate": "rows share a key (symbol+ts, klines: symbol+trade_date) but differ in "
    "some value: no version can be trusted, every version is quarantined",
    "duplicate": "an identical copy of an earlier row (same key, same values); the first copy in "
    "input order is kept",
    "cumulative_decrease": "quotes: cumulative volume or amount decreases within the day",
}
_ORDER = {name: i for i, name in enumerate(RULES)}

PriceLimit = float | str | Mapping[str, float] | Callable[[str], float | None] | None
"""A limit fraction for every symbol (0.10), 'board' (A-share board rules, `core.markets.price_limit`),
a mapping symbol -> fraction (absent symbols are not checked), a callable, or None (rule off)."""

_EPS = 1e-9
_INT64_MIN = np.iinfo(np.int64).min
_INT64_LIMIT = 2.0**63  # |value| >= this does not fit int64 (float64 rounds int64 max up to it)

BOUNDS: dict[str, float] = {"price": 1e7, "volume": 1e15, "amount": 1e18}
"""Plausible maxima (`out_of_range` above them). A-share reality is orders of magnitude below: the
dearest share trades around 2,000-2,600 CNY and index levels stay below 10^5 points (prices: 1e7);
the busiest single-stock day is about 1e10 shares and the whole market's about 2e11 (volume: 1e15
shares, still exact in float64 and int64); the record market-wide turnover is about 3.5e12 CNY
(amount: 1e18, still below int64's 9.2e18). "price" bounds every price column (price, open, high,
low, close, prev_close, bid, ask, limit_up, limit_down)."""


@dataclass(frozen=True, eq=False)
class SplitResult:
    """Clean and quarantined rows of one partition. Unpacks as `clean, quarantined = split_quotes(df)`."""

    clean: pd.DataFrame
    quarantined: pd.DataFrame
    table_name: str
    trade_date: dt.date | None = None
    rows_in: int = 0
    rule_counts: dict[str, int] = field(default_factory=dict)
    dropped_columns: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[pd.DataFrame]:
        yield self.clean
        yield self.quarantined

    @property
    def quarantined_share(self) -> float:
        return len(self.quarantined) / self.rows_in if self.rows_in else 0.0

    @property
    def metadata(self) -> dict:
        """JSON-friendly summary for Dagster metadata and logs."""
        return {
            "table": self.table_name,
            "trade_date": self.trade_date.isoformat() if self.trade_date else None,
            "rows_in": self.rows_in,
            "rows_clean": len(self.clean),
            "rows_quarantined": len(self.quarantined),
            "quarantined_share": round(self.quarantined_share, 6),
            "quarantined_by_rule": dict(self.rule_counts),
            "exact_duplicates": self.rule_counts.get("duplicate", 0),
            "conflicting_duplicates": self.rule_counts.get("conflicting_duplicate", 0),
            "dropped_columns": list(self.dropped_columns),
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------------------------------
# public API


def split_quotes(
    df: pd.DataFrame,
    *,
    trade_date: DateLike | None = None,
    calendar: str = "XSHG",
    universe: Iterable[str] | None = None,
    price_limit: PriceLimit = 0.10,
    tick: float = 0.01,
) -> SplitResult:
    """Split Level-1 snapshots (RAW_QUOTES) into clean and quarantined rows.

    `trade_date`: the partition's trading day; rows of another day are quarantined
    (`trade_date_mismatch`). When None each row is checked against its own trade_date's session.
    `price_limit`: see `PriceLimit`; use 'board' for the A-share board rules (10% main board, 20%
    ChiNext/STAR, 30% BSE). `tick`: price increment; half a tick absorbs the exchange's rounding of
    limit prices.
    """
    spec = _Spec(
        schema=resolve(QUOTES),
        positive=("price", "open", "high", "low", "prev_close"),
        nonneg_optional=("bid", "ask"),
        close="price",
        limit_columns=("price", "open", "high", "low"),
        cumulative=("volume", "amount"),
        book=("bid", "ask"),
    )
    return _split(df, spec, trade_date, calendar, universe, price_limit=price_limit, tick=tick)


def split_bars(
    df: pd.DataFrame,
    freq: str = "1m",
    *,
    trade_date: DateLike | None = None,
    calendar: str = "XSHG",
    universe: Iterable[str] | None = None,
) -> SplitResult:
    """Split intraday OHLCV bars (BARS_1M/5M/15M by `freq`) into clean and quarantined rows.

    Bars carry no previous close, so the price-limit rule does not apply; `change_rate` may be NaN.
    """
    spec = _Spec(
        schema=resolve("bars", freq),
        positive=("open", "high", "low", "close"),
        optional=("change_rate",),
        close="close",
        bar_minutes=freq_minutes(freq),
    )
    return _split(df, spec, trade_date, calendar, universe)


def split_klines(
    df: pd.DataFrame,
    *,
    trade_date: DateLike | None = None,
    calendar: str = "XSHG",
    universe: Iterable[str] | None = None,
    price_limit: PriceLimit = None,
    tick: float = 0.01,
    change_rate_tol: float = 1e-4,
) -> SplitResult:
    """Split daily klines (KLINES_DAILY) into clean and quarantined rows.

    high/low are always checked against the row's own limit_up/limit_down (when finite and > 0);
    `price_limit` (default None) additionally checks open/high/low/close against prev_close.
    `change_rate_tol`: absolute tolerance of change_rate vs close / prev_close - 1.
    """
    spec = _Spec(
        schema=resolve(KLINES),
        positive=("open", "high", "low", "close", "prev_close"),
        optional=("limit_up", "limit_down"),
        close="close",
        limit_columns=("open", "high", "low", "close"),
        own_limits=True,
        change_rate_tol=change_rate_tol,
    )
    return _split(df, spec, trade_date, calendar, universe, price_limit=price_limit, tick=tick)


def split_frame(kind: str, df: pd.DataFrame, *, freq: str | None = None, **kwargs) -> SplitResult:
    """Dispatch on the table kind ('raw_quotes', 'bars_5m', 'bars' + freq, 'klines_daily', ...)."""
    schema = resolve(kind, freq)
    if schema.name == QUOTES:
        return split_quotes(df, **kwargs)
    if schema.name == KLINES:
        return split_klines(df, **kwargs)
    return split_bars(df, bar_freq(schema), **kwargs)


def to_quarantine_table(
    quarantined: pd.DataFrame | SplitResult,
    table_name: str | None = None,
    *,
    trade_date: DateLike | None = None,
) -> pd.DataFrame:
    """Rows shaped for the QUARANTINE table: trade_date, table_name, symbol, ts, rule, reason and the
    original row as JSON `payload`.

    With a partition day (`trade_date=`, or the SplitResult's own), every row is filed under that day,
    whatever its own trade_date says: the quarantine of a partition is replaced together with the
    partition, so a row dated on another day (`trade_date_mismatch`), or with a null or unreadable
    trade_date, must land in the partition being written; its own value stays in `payload` and
    `reason`. Without a partition day each row is filed under its own readable trade_date. An
    unreadable ts becomes NaT.
    """
    if isinstance(quarantined, SplitResult):
        table_name = table_name or quarantined.table_name
        trade_date = trade_date or quarantined.trade_date
        quarantined = quarantined.quarantined
    if not table_name:
        raise ValueError("table_name is required")
    if quarantined.empty:
        return QUARANTINE.empty()
    q = quarantined
    if trade_date is not None:
        day = pd.Series(pd.Timestamp(to_date(trade_date)), index=q.index)
    else:
        values = q["trade_date"] if "trade_date" in q else [pd.NaT] * len(q)
        day = pd.Series([_parse_date(v) for v in values], index=q.index, dtype="datetime64[s]").dt.normalize()
        if day.isna().any():
            raise ValueError("quarantined rows without a readable trade_date: pass trade_date=")
    return quarantine_frame(
        table_name,
        q[[c for c in q.columns if c not in ("rule", "reason")]],
        rule=q["rule"],
        reason=q["reason"],
        trade_date=day,
        symbol=q.get("symbol"),
        ts=q.get("ts"),
        source="rules",
    )


# --------------------------------------------------------------------------------------------------
# machinery


@dataclass(frozen=True)
class _Spec:
    schema: TableSchema
    positive: tuple[str, ...]  # > 0, required
    close: str  # the column playing "close" in the OHLC consistency rule
    nonneg_optional: tuple[str, ...] = ()  # >= 0, NaN allowed
    optional: tuple[str, ...] = ()  # NaN allowed (limit_up may also be +inf)
    limit_columns: tuple[str, ...] = ()
    cumulative: tuple[str, ...] = ()
    bar_minutes: int | None = None
    book: tuple[str, str] | None = None  # (bid, ask) columns of a quote's best prices
    own_limits: bool = False
    change_rate_tol: float | None = None

    @property
    def nullable(self) -> set[str]:
        return set(self.nonneg_optional) | set(self.optional)


class _Flags:
    """Which rows failed which rules, and why; reasons are only built for failing rows."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.first = np.full(n, len(RULES), dtype=np.int16)  # rule order of the first failure
        self._parts: list[tuple[np.ndarray, int, list[str]]] = []

    def add(self, rule: str, mask: np.ndarray, reason: Callable[[np.ndarray], list[str]]) -> None:
        pos = np.flatnonzero(mask)
        if pos.size == 0:
            return
        order = _ORDER[rule]
        self.first[pos] = np.minimum(self.first[pos], order)
        self._parts.append((pos, order, reason(pos)))

    @property
    def bad(self) -> np.ndarray:
        return self.first < len(RULES)

    def rules_and_reasons(self, pos: np.ndarray) -> tuple[list[str], list[str]]:
        names = list(RULES)
        texts: dict[int, list[tuple[int, str]]] = {}
        for p, order, reasons in self._parts:
            for i, text in zip(p.tolist(), reasons, strict=True):
                texts.setdefault(i, []).append((order, text))
        rules = [names[self.first[i]] for i in pos.tolist()]
        joined = ["; ".join(t for _, t in sorted(texts[i], key=lambda x: x[0])) for i in pos.tolist()]
        return rules, joined


def _split(
    df: pd.DataFrame,
    spec: _Spec,
    trade_date: DateLike | None,
    calendar: str,
    universe: Iterable[str] | None,
    *,
    price_limit: PriceLimit = None,
    tick: float = 0.01,
) -> SplitResult:
    schema = spec.schema
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{schema.name}: expected a pandas DataFrame, got {type(df).__name__}")
    partition = to_date(trade_date) if trade_date is not None else None
    warnings: list[str] = []

    if len(df.columns) == 0 and len(df) == 0:
        warnings.append("empty input without columns: treated as an empty partition")
        return _empty_result(schema, partition, warnings)
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise ValueError(f"{schema.name}: missing columns {missing} (schema drift); got {list(df.columns)}")
    extra = tuple(str(c) for c in df.columns if c not in schema.names)
    if extra:
        msg = f"dropped columns not in the {schema.name} schema: {list(extra)}"
        log.warning("%s: %s", schema.name, msg)
        warnings.append(msg)
    if df.columns.duplicated().any():
        raise ValueError(
            f"{schema.name}: duplicated column names {list(df.columns[df.columns.duplicated()])}"
        )
    raw = df.loc[:, schema.names]
    n = len(raw)
    if n == 0:
        warnings.append("empty partition: no rows")
        _coerce_ts_frame_checks(raw, schema)
        return _empty_result(schema, partition, warnings, dropped=extra)

    flags = _Flags(n)
    work, ts_note, symbols = _coerce(raw, spec, flags)
    if ts_note:
        warnings.append(ts_note)
    cal = get_calendar(calendar)
    _value_rules(work, spec, flags)
    _context_rules(work, spec, flags, symbols, cal, partition, universe)
    if spec.limit_columns or spec.own_limits:
        _limit_rules(work, spec, flags, symbols, price_limit, tick)
    if spec.change_rate_tol is not None:
        _change_rate_rule(work, spec, flags)
    order = _sequence_rules(work, spec, flags, symbols, raw)

    bad = flags.bad
    clean_pos = order[~bad[order]]
    clean = schema.conform(work.iloc[clean_pos])
    bad_pos = np.flatnonzero(bad)
    quarantined = raw.iloc[bad_pos].copy()
    rules, reasons = flags.rules_and_reasons(bad_pos)
    quarantined["rule"] = pd.Series(rules, index=quarantined.index, dtype=STR)
    quarantined["reason"] = pd.Series(reasons, index=quarantined.index, dtype=STR)
    counts = {name: rules.count(name) for name in RULES if name in rules}
    return SplitResult(
        clean=clean,
        quarantined=quarantined,
        table_name=schema.name,
        trade_date=partition,
        rows_in=n,
        rule_counts=counts,
        dropped_columns=extra,
        warnings=tuple(warnings),
    )


def _empty_result(
    schema: TableSchema, partition: dt.date | None, warnings: list[str], dropped: tuple[str, ...] = ()
) -> SplitResult:
    quarantined = schema.empty()
    quarantined["rule"] = pd.Series(dtype=STR)
    quarantined["reason"] = pd.Series(dtype=STR)
    return SplitResult(
        clean=schema.empty(),
        quarantined=quarantined,
        table_name=schema.name,
        trade_date=partition,
        rows_in=0,
        dropped_columns=dropped,
        warnings=tuple(warnings),
    )


# ---- frame checks and per-value coercion ---------------------------------------------------------


def _coerce_ts_frame_checks(raw: pd.DataFrame, schema: TableSchema) -> None:
    """Frame-level ts problems that no per-row quarantine can fix."""
    if "ts" not in raw:
        return
    dtype = raw["ts"].dtype
    if not isinstance(dtype, pd.DatetimeTZDtype) and dtype.kind == "M":
        raise ValueError(
            f"{schema.name}: ts is naive {dtype}; timestamps must be tz-aware UTC (datetime64[ms, UTC]). "
            "Localize at the source (e.g. .dt.tz_localize('Asia/Shanghai').dt.tz_convert('UTC'))."
        )
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        raise ValueError(
            f"{schema.name}: ts has numeric dtype {dtype}; convert epochs to datetime64[ms, UTC]"
        )


@dataclass
class _Symbols:
    codes: np.ndarray  # per row, index into uniques (sorted); -1 when null/unusable
    uniques: np.ndarray

    def at(self, i: int) -> str:
        return self.uniques[self.codes[i]] if self.codes[i] >= 0 else ""


def _coerce(raw: pd.DataFrame, spec: _Spec, flags: _Flags) -> tuple[pd.DataFrame, str | None, _Symbols]:
    schema = spec.schema
    _coerce_ts_frame_checks(raw, schema)
    cols: dict[str, object] = {}
    note = None
    symbols = _Symbols(np.zeros(len(raw), dtype=np.int64), np.array([""], dtype=object))
    for col in schema.columns:
        s = raw[col.name]
        if col.dtype == STR:
            cols[col.name], codes, uniques = _coerce_symbol(s, col.name, flags)
            symbols = _Symbols(codes, uniques)
        elif col.dtype == TS:
            cols[col.name], note = _coerce_ts(s, flags)
        elif col.dtype == DATE:
            cols[col.name] = _coerce_date(s, col.name, flags)
        else:
            cols[col.name] = _coerce_number(s, col.name, col.dtype, col.name not in spec.nullable, flags)
    work = pd.DataFrame(cols)
    return work, note, symbols


def _coerce_symbol(
    s: pd.Series, name: str, flags: _Flags
) -> tuple[pd.Series | np.ndarray, np.ndarray, np.ndarray]:
    """The symbol column plus its codes (sorted, -1 for unusable) and uniques, factorised only once.

    Non-text values (ints, bytes, lists, ...) are set aside before factorising: mixed types do not
    sort and unhashable ones do not factorise, and one such value must not fail the partition."""
    original = s
    not_text = np.zeros(len(s), dtype=bool)
    if s.dtype == object:
        raw = s.to_numpy(dtype=object)
        text = np.fromiter((isinstance(v, str) for v in raw), dtype=bool, count=len(raw))
        if not text.all():
            null = np.fromiter((_isnull(v) for v in raw), dtype=bool, count=len(raw))
            not_text = ~text & ~null
            s = pd.Series(np.where(text, raw, None), dtype=object)
    codes, uniques = pd.factorize(s, sort=True, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    known = codes >= 0
    at = np.maximum(codes, 0)
    is_text = np.array([isinstance(u, str) for u in uniques], dtype=bool)
    if len(uniques) and not is_text.all():  # a column of another type, e.g. int64 codes
        not_text |= known & ~is_text[at]
        uniques = np.where(is_text, uniques, "")
    codes = np.where(not_text, -1, codes)
    null = (codes < 0) & ~not_text
    flags.add("missing_value", null, lambda p: [f"{name} is null"] * len(p))
    blank = np.array([isinstance(u, str) and not u.strip() for u in uniques], dtype=bool)
    if blank.any():
        flags.add("missing_value", (codes >= 0) & blank[at], lambda p: [f"{name} is empty"] * len(p))
    flags.add("bad_type", not_text, lambda p: [f"{name}={_brief(original.iloc[i])} is not text" for i in p])
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object and not null.any():
        column: pd.Series | np.ndarray = s.reset_index(drop=True)  # already text: no copy to objects
    else:
        column = np.where(codes < 0, "", uniques[np.maximum(codes, 0)] if len(uniques) else "")
    return column, codes, uniques


def _parse_each(s: pd.Series, parse: Callable[[object], object]) -> list:
    """parse(v) for every value, once per distinct value (unhashable values, e.g. lists, each time)."""
    cache: dict = {}
    out = []
    for v in s:
        try:
            r = cache[v]
        except KeyError:
            r = cache[v] = parse(v)
        except TypeError:
            r = parse(v)
        out.append(r)
    return out


def _coerce_ts(s: pd.Series, flags: _Flags) -> tuple[pd.Series, str | None]:
    note = None
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        if str(s.dtype.tz) != "UTC":
            note = f"ts converted from {s.dtype.tz} to UTC"
            s = s.dt.tz_convert("UTC")
        out = s.dt.as_unit("ms") if s.dt.unit != "ms" else s
        flags.add("missing_value", out.isna().to_numpy(), lambda p: ["ts is null"] * len(p))
        return out.reset_index(drop=True), note
    # object / text column: parse value by value; naive or unreadable values are quarantined
    values = _parse_each(s, lambda v: pd.NaT if _isnull(v) else _parse_ts(v))
    null = np.array([_isnull(v) for v in s], dtype=bool)
    problem = np.array([isinstance(v, str) for v in values], dtype=bool)
    flags.add("missing_value", null, lambda p: ["ts is null"] * len(p))
    flags.add("bad_type", problem, lambda p: [values[i] for i in p])
    good = [pd.NaT if isinstance(v, str) else v for v in values]
    note = "ts parsed value by value from a non-datetime column"
    return pd.Series(pd.DatetimeIndex(good, tz="UTC").as_unit("ms")), note


def _parse_ts(v: object) -> pd.Timestamp | str:
    """A UTC Timestamp, or the reason the value is not one."""
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError, OverflowError):
        return f"ts={_brief(v)} is not a timestamp"
    if t is pd.NaT:
        return f"ts={_brief(v)} is not a timestamp"
    if t.tzinfo is None:
        return f"ts={_brief(v)} is naive (no time zone); timestamps must be tz-aware UTC"
    return t.tz_convert("UTC")


def _coerce_date(s: pd.Series, name: str, flags: _Flags) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    if s.dtype.kind == "M":
        d = s
        bad_text = np.zeros(len(s), dtype=bool)
    else:
        d = pd.Series(
            _parse_each(s, lambda v: pd.NaT if _isnull(v) else _parse_date(v)), dtype="datetime64[s]"
        )
        bad_text = ~np.array([_isnull(v) for v in s], dtype=bool) & d.isna().to_numpy()
        flags.add("bad_type", bad_text, lambda p: [f"{name}={_brief(s.iloc[i])} is not a date" for i in p])
    d = d.reset_index(drop=True)
    null = d.isna().to_numpy() & ~bad_text
    flags.add("missing_value", null, lambda p: [f"{name} is null"] * len(p))
    not_midnight = (~d.isna() & (d != d.dt.normalize())).to_numpy()
    flags.add("bad_type", not_midnight, lambda p: [f"{name}={d.iloc[i]} has a time of day" for i in p])
    return d.dt.normalize().astype("datetime64[s]")


def _parse_date(v: object) -> pd.Timestamp:
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    if t is pd.NaT:
        return pd.NaT
    return t.tz_localize(None) if t.tzinfo is not None else t


def _coerce_number(s: pd.Series, name: str, dtype: str, required: bool, flags: _Flags) -> np.ndarray:
    """The column as float64 (int64 for int columns); flags unreadable, missing, non-finite and
    out-of-range values. Values that are not numbers or overflow float64 are NaN in the result (ints:
    0, also for values that do not fit int64)."""
    n = len(s)
    overflow = np.zeros(n, dtype=bool)
    if pd.api.types.is_bool_dtype(s.dtype):  # True/False are not prices or volumes
        null = s.isna().to_numpy()
        values = np.full(n, np.nan)
        flags.add(
            "bad_type", ~null, lambda p: [f"{name}={_brief(s.iloc[i])} is a boolean, not a number" for i in p]
        )
    elif pd.api.types.is_numeric_dtype(s.dtype):
        values = s.to_numpy(dtype=float, na_value=np.nan)
        null = np.isnan(values)
    else:
        values, null, overflow, bad = _read_numbers(s, name)
        flags.add("bad_type", bad.mask, lambda p: [bad.reasons[i] for i in p])
        flags.add(
            "out_of_range",
            overflow,
            lambda p: [f"{name}={_brief(s.iloc[i])} is too large for float64" for i in p],
        )
    if required:
        flags.add("missing_value", null, lambda p: [f"{name} is NaN/null"] * len(p))
    finite = np.isfinite(values)
    bound = _bound(name, dtype)
    if dtype.startswith("int"):
        flags.add("non_finite", np.isinf(values), lambda p: [f"{name}={values[i]} is not finite" for i in p])
        too_big = finite & (np.abs(values) >= _INT64_LIMIT)
        flags.add("out_of_range", too_big, lambda p: [f"{name}={values[i]:g} does not fit int64" for i in p])
        finite &= ~too_big
        frac = finite & (values != np.round(values))
        flags.add("bad_type", frac, lambda p: [f"{name}={values[i]:g} is not an integer" for i in p])
    if bound is not None:
        above = finite & (values > bound)
        flags.add(
            "out_of_range",
            above,
            lambda p: [f"{name}={_fmt(values[i])} is above the plausible maximum {bound:g}" for i in p],
        )
    if dtype.startswith("int"):
        if s.dtype.kind == "i" and not s.isna().any():
            return s.to_numpy(dtype=np.int64)
        return np.round(np.where(finite, values, 0.0)).astype(np.int64)
    return values


def _bound(name: str, dtype: str) -> float | None:
    if name in BOUNDS:
        return BOUNDS[name]
    return BOUNDS["price"] if dtype == "float64" and name != "change_rate" else None


@dataclass
class _BadValues:
    mask: np.ndarray
    reasons: dict[int, str]


_INF_TEXT = frozenset({"inf", "infinity", "+inf", "+infinity", "-inf", "-infinity"})


def _read_numbers(s: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, _BadValues]:
    """A non-numeric column read value by value: (values, null, overflow, bad values with reasons).

    Numbers are Python and numpy ints and floats, Fractions, finite Decimals and text that
    `pd.to_numeric` reads ("10.5", "1e3"). Not numbers (`bad_type`): booleans, bytes, lists, dicts,
    Decimal NaN, complex, timestamps, unreadable text and anything else. Null: None, NaN, pd.NA, NaT.
    Overflow: a finite value beyond float64 (a 400-digit string, Decimal('1e400'), 10**400).
    """
    n = len(s)
    values = np.full(n, np.nan)
    null = np.zeros(n, dtype=bool)
    overflow = np.zeros(n, dtype=bool)
    reasons: dict[int, str] = {}
    texts: dict[int, str] = {}
    for i, v in enumerate(s.to_numpy(dtype=object)):
        if isinstance(v, str):
            texts[i] = v
        elif isinstance(v, bool | np.bool_):
            reasons[i] = f"{name}={_brief(v)} is a boolean, not a number"
        elif isinstance(v, numbers.Real):
            try:
                values[i] = float(v)
            except OverflowError:
                overflow[i] = True
            null[i] = np.isnan(values[i]) and not overflow[i]
        elif isinstance(v, Decimal):
            if v.is_nan():
                reasons[i] = f"{name}={v!r} is a Decimal NaN, not a number"
            else:
                x = float(v)
                overflow[i] = bool(np.isinf(x)) and not v.is_infinite()
                values[i] = np.nan if overflow[i] else x
        elif _isnull(v):
            null[i] = True
        else:
            reasons[i] = f"{name}={_brief(v)} is {type(v).__name__}, not a number"
    if texts:
        unique = list(dict.fromkeys(texts.values()))
        parsed = pd.to_numeric(pd.Series(unique, dtype=object), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        number = dict(zip(unique, parsed.tolist(), strict=True))
        for i, text in texts.items():
            x = number[text]
            if np.isnan(x):
                reasons[i] = f"{name}={_brief(text)} is not a number"
            elif np.isinf(x) and text.strip().lower() not in _INF_TEXT:
                overflow[i] = True
            else:
                values[i] = x
    mask = np.zeros(n, dtype=bool)
    mask[list(reasons)] = True
    return values, null, overflow, _BadValues(mask, reasons)


def _brief(v: object, width: int = 32) -> str:
    """repr of a value, shortened: a 400-digit string must not make a 400-character reason."""
    text = repr(_label(v))  # numpy scalars as plain Python values: True, not np.True_
    if len(text) <= width:
        return text
    size = f"{len(v)} characters" if isinstance(v, str | bytes) else type(v).__name__
    return f"{text[:width]}... ({size})"


# ---- per-row rules -------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    return f"{v:.10g}"


def _value_rules(work: pd.DataFrame, spec: _Spec, flags: _Flags) -> None:
    floats = [c.name for c in spec.schema.columns if c.dtype == "float64"]
    for name in floats:
        x = work[name].to_numpy()
        inf = np.isinf(x)
        if name == "limit_up":
            inf &= x < 0
        flags.add("non_finite", inf, lambda p, x=x, name=name: [f"{name}={x[i]} is not finite" for i in p])

    for name in spec.positive:
        x = work[name].to_numpy()
        flags.add(
            "non_positive_price", x <= 0, lambda p, x=x, name=name: [f"{name}={_fmt(x[i])} <= 0" for i in p]
        )
    for name in (*spec.nonneg_optional, *(c for c in ("limit_up", "limit_down") if c in spec.optional)):
        x = work[name].to_numpy()
        flags.add(
            "non_positive_price", x < 0, lambda p, x=x, name=name: [f"{name}={_fmt(x[i])} < 0" for i in p]
        )
    for name in ("volume", "amount"):
        x = work[name].to_numpy()
        flags.add("negative_volume", x < 0, lambda p, x=x, name=name: [f"{name}={_fmt(x[i])} < 0" for i in p])

    high, low = work["high"].to_numpy(), work["low"].to_numpy()
    flags.add(
        "high_lt_low", high < low - _EPS, lambda p: [f"high {_fmt(high[i])} < low {_fmt(low[i])}" for i in p]
    )
    open_, close = work["open"].to_numpy(), work[spec.close].to_numpy()
    c = spec.close
    top = np.fmax(open_, close)
    bottom = np.fmin(open_, close)
    flags.add(
        "ohlc_inconsistent",
        high < top - _EPS,
        lambda p: [f"high {_fmt(high[i])} < max(open {_fmt(open_[i])}, {c} {_fmt(close[i])})" for i in p],
    )
    flags.add(
        "ohlc_inconsistent",
        low > bottom + _EPS,
        lambda p: [f"low {_fmt(low[i])} > min(open {_fmt(open_[i])}, {c} {_fmt(close[i])})" for i in p],
    )
    if spec.book:
        bid, ask = (work[name].to_numpy() for name in spec.book)
        quoted = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)
        flags.add(
            "crossed_book",
            quoted & (bid > ask + _EPS),
            lambda p: [f"crossed book: bid {_fmt(bid[i])} > ask {_fmt(ask[i])}" for i in p],
        )


def _context_rules(
    work: pd.DataFrame,
    spec: _Spec,
    flags: _Flags,
    symbols: _Symbols,
    cal: TradingCalendar,
    partition: dt.date | None,
    universe: Iterable[str] | None,
) -> None:
    if universe is not None:
        allowed = set(universe)
        unknown_u = np.array([u != "" and u not in allowed for u in symbols.uniques], dtype=bool)
        unknown = (symbols.codes >= 0) & unknown_u[np.maximum(symbols.codes, 0)]
        flags.add(
            "unknown_symbol", unknown, lambda p: [f"symbol {symbols.at(i)} not in the universe" for i in p]
        )

    days = work["trade_date"]
    day_ns = days.to_numpy(dtype="datetime64[s]").astype(np.int64)
    valid_day = ~days.isna().to_numpy()
    if partition is not None:
        want = np.datetime64(partition, "s").astype(np.int64)
        mismatch = valid_day & (day_ns != want)
        flags.add(
            "trade_date_mismatch",
            mismatch,
            lambda p: [f"trade_date {days.iloc[i].date()} differs from partition {partition}" for i in p],
        )

    has_ts = "ts" in work
    ts_ms = work["ts"].array.asi8 if has_ts else None
    outside = np.zeros(len(work), dtype=bool)
    why: dict[int, str] = {}
    for d in np.unique(day_ns[valid_day]):
        rows = valid_day & (day_ns == d)
        day = pd.Timestamp(d, unit="s").date()
        if not cal.is_session(day):
            outside |= rows
            why[int(d)] = f"{day} is not a {cal.name} trading day"
            continue
        if not has_ts:
            continue
        intervals = cal.session(day).intervals
        t = ts_ms[rows]
        ok = t == _INT64_MIN  # NaT rows are already quarantined as missing/bad ts
        for start, end in intervals:
            a, b = start.value // 1_000_000, end.value // 1_000_000  # Timestamp.value is in ns
            ok |= ((t > a) if spec.bar_minutes else (t >= a)) & (t <= b)
        outside[np.flatnonzero(rows)[~ok]] = True
        why[int(d)] = _session_text(cal, day, intervals, spec.bar_minutes is not None)

    def session_reason(p: np.ndarray) -> list[str]:
        out = []
        for i in p:
            text = why[int(day_ns[i])]
            if has_ts and text.startswith("outside"):
                local = work["ts"].iloc[i].tz_convert(cal.tz)
                text = f"ts {work['ts'].iloc[i]} ({local:%H:%M:%S} local) {text}"
            out.append(text)
        return out

    flags.add("outside_session", outside, session_reason)

    if spec.bar_minutes and has_ts:
        step = spec.bar_minutes * 60_000
        misaligned = (ts_ms != _INT64_MIN) & (ts_ms % step != 0)
        flags.add(
            "bar_misaligned",
            misaligned,
            lambda p: [
                f"ts {work['ts'].iloc[i]} is not on the {spec.bar_minutes}-minute bar grid" for i in p
            ],
        )


def _session_text(cal: TradingCalendar, day: dt.date, intervals, bars: bool) -> str:
    parts = ", ".join(
        f"{'(' if bars else '['}{a.tz_convert(cal.tz):%H:%M}-{b.tz_convert(cal.tz):%H:%M}]"
        for a, b in intervals
    )
    return f"outside the {cal.name} session of {day}: {parts} local"


def _resolve_limits(symbols: _Symbols, price_limit: PriceLimit) -> np.ndarray:
    """Per-row limit fraction; NaN = do not check."""
    n = len(symbols.codes)
    if price_limit is None:
        return np.full(n, np.nan)
    if isinstance(price_limit, int | float):
        return np.full(n, float(price_limit))
    if isinstance(price_limit, str):
        if price_limit != "board":
            raise ValueError(
                f"price_limit must be a number, 'board', a mapping or a callable; got {price_limit!r}"
            )
        fn: Callable[[str], float | None] = markets.price_limit
    elif isinstance(price_limit, Mapping):
        fn = price_limit.get
    elif callable(price_limit):
        fn = price_limit
    else:
        raise TypeError(f"unsupported price_limit {price_limit!r}")
    per = np.array(
        [np.nan if not u or (v := fn(u)) is None else float(v) for u in symbols.uniques], dtype=float
    )
    per[~np.isfinite(per)] = np.nan  # inf: unlimited
    return np.where(symbols.codes >= 0, per[np.maximum(symbols.codes, 0)], np.nan)


def _limit_rules(
    work: pd.DataFrame, spec: _Spec, flags: _Flags, symbols: _Symbols, price_limit: PriceLimit, tick: float
) -> None:
    prev = work["prev_close"].to_numpy()
    if spec.limit_columns and price_limit is not None:
        lim = _resolve_limits(symbols, price_limit)
        tol = tick / 2 + _EPS
        checkable = np.isfinite(lim) & (prev > 0)
        up = prev * (1 + lim) + tol
        down = prev * (1 - lim) - tol
        for name in spec.limit_columns:
            x = work[name].to_numpy()
            breach = checkable & np.isfinite(x) & (x > 0) & ((x > up) | (x < down))
            flags.add(
                "price_limit",
                breach,
                lambda p, x=x, name=name: [
                    f"{name} {_fmt(x[i])} is {x[i] / prev[i] - 1:+.2%} vs prev_close {_fmt(prev[i])}, "
                    f"beyond the ±{lim[i]:.0%} limit"
                    for i in p
                ],
            )
    if spec.own_limits:
        high, low = work["high"].to_numpy(), work["low"].to_numpy()
        lu, ld = work["limit_up"].to_numpy(), work["limit_down"].to_numpy()
        above = np.isfinite(lu) & (lu > 0) & (high > lu + 1e-6)
        below = np.isfinite(ld) & (ld > 0) & (low < ld - 1e-6)
        flags.add(
            "price_limit", above, lambda p: [f"high {_fmt(high[i])} above limit_up {_fmt(lu[i])}" for i in p]
        )
        flags.add(
            "price_limit", below, lambda p: [f"low {_fmt(low[i])} below limit_down {_fmt(ld[i])}" for i in p]
        )


def _change_rate_rule(work: pd.DataFrame, spec: _Spec, flags: _Flags) -> None:
    cr = work["change_rate"].to_numpy()
    expected = work["close"].to_numpy() / work["prev_close"].to_numpy() - 1
    off = np.isfinite(cr) & np.isfinite(expected) & (np.abs(cr - expected) > spec.change_rate_tol)
    flags.add(
        "change_rate_mismatch",
        off,
        lambda p: [f"change_rate {cr[i]:.6f} != close/prev_close - 1 = {expected[i]:.6f}" for i in p],
    )


# ---- sequence rules ------------------------------------------------------------------------------


def _sequence_rules(
    work: pd.DataFrame, spec: _Spec, flags: _Flags, symbols: _Symbols, raw: pd.DataFrame
) -> np.ndarray:
    """Quarantine duplicates and cumulative decreases among rows still clean; return the positions of
    all rows sorted by the schema key (symbol alphabetically, then time)."""
    keys = key_columns(spec.schema)
    sym_codes = symbols.codes
    time_key = (
        work["ts"].array.asi8
        if keys[1] == "ts"
        else work["trade_date"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    )
    day_key = work["trade_date"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    pos = np.arange(len(work))
    order = np.lexsort((pos, time_key, sym_codes))

    cand = order[~flags.bad[order]]
    if cand.size > 1:
        same = (sym_codes[cand[1:]] == sym_codes[cand[:-1]]) & (time_key[cand[1:]] == time_key[cand[:-1]])
        dup = np.concatenate([[False], same])
        if dup.any():
            _duplicate_rules(work, spec, flags, cand, dup, raw.index)

    for name in spec.cumulative:
        cand = order[~flags.bad[order]]
        if cand.size < 2:
            break
        values = work[name].to_numpy()[cand]
        if values.dtype.kind == "f":
            values = np.round(values, 4)
        group = np.concatenate(
            [
                [True],
                (sym_codes[cand[1:]] != sym_codes[cand[:-1]]) | (day_key[cand[1:]] != day_key[cand[:-1]]),
            ]
        )
        decreasing = ~group[1:] & (values[1:] < values[:-1])
        if not decreasing.any():
            continue
        starts = np.flatnonzero(group)
        ends = np.append(starts[1:], cand.size)
        drop_idx: list[int] = []
        reasons: dict[int, str] = {}
        ts = work["ts"]
        for g in np.unique(np.searchsorted(starts, np.flatnonzero(decreasing) + 1, side="right") - 1):
            a, b = starts[g], ends[g]
            keep = _non_decreasing_keep(values[a:b])
            kept = np.flatnonzero(keep)
            for k in np.flatnonzero(~keep):
                i = cand[a + k]
                v = values[a + k]
                before, after = kept[kept < k], kept[kept > k]
                if before.size and v < values[a + before[-1]]:
                    j, relation = before[-1], "< {} at earlier {}"
                else:
                    j, relation = after[0], "> {} at later {}"
                text = f"cumulative {name} {_fmt(v)} " + relation.format(
                    _fmt(values[a + j]), ts.iloc[cand[a + j]]
                )
                drop_idx.append(i)
                reasons[i] = text
        mask = np.zeros(len(work), dtype=bool)
        mask[drop_idx] = True
        flags.add("cumulative_decrease", mask, lambda p, reasons=reasons: [reasons[i] for i in p])
    return order


def _duplicate_rules(
    work: pd.DataFrame, spec: _Spec, flags: _Flags, cand: np.ndarray, dup: np.ndarray, labels: pd.Index
) -> None:
    """Rows of `cand` (positions sorted by key, then input order) sharing a key: exact copies keep the
    first and quarantine the rest (`duplicate`); when the versions differ in any value, none can be
    trusted and all of them are quarantined (`conflicting_duplicate`)."""
    keys = key_columns(spec.schema)
    key_text = " + ".join(keys)
    compare = {c: work[c].to_numpy() for c in spec.schema.names if c not in keys}
    run_start = np.maximum.accumulate(np.where(~dup, np.arange(cand.size), 0))
    exact: dict[int, str] = {}
    conflicting: dict[int, str] = {}
    for a in np.unique(run_start[dup]).tolist():
        b = a + 1
        while b < cand.size and dup[b]:
            b += 1
        rows = cand[a:b].tolist()
        first = rows[0]
        differ = [c for c, x in compare.items() if any(not _same(x[i], x[first]) for i in rows[1:])]
        if differ:
            shown = ", ".join(repr(_label(labels[i])) for i in rows[:5]) + (", ..." if len(rows) > 5 else "")
            text = (
                f"{len(rows)} versions of one {key_text} (rows {shown}) differ in {', '.join(differ)}; "
                "every version is quarantined"
            )
            conflicting.update(dict.fromkeys(rows, text))
        else:
            text = f"duplicate of row {_label(labels[first])!r} ({key_text}); identical copy"
            exact.update(dict.fromkeys(rows[1:], text))
    for rule, reasons in (("conflicting_duplicate", conflicting), ("duplicate", exact)):
        mask = np.zeros(len(work), dtype=bool)
        mask[list(reasons)] = True
        flags.add(rule, mask, lambda p, reasons=reasons: [reasons[i] for i in p])


def _non_decreasing_keep(values: np.ndarray) -> np.ndarray:
    """Keep-mask of a longest non-decreasing subsequence (the fewest rows to drop). When simply dropping
    every value below the running maximum is just as small, that is preferred: it blames the later,
    out-of-place snapshot rather than an earlier one."""
    n = len(values)
    running = np.maximum.accumulate(values)
    run_keep = values >= np.concatenate([[values[0]], running[:-1]])
    tails: list = []
    tails_idx: list[int] = []
    prev = np.full(n, -1, dtype=np.int64)
    for i, v in enumerate(values.tolist()):
        k = bisect_right(tails, v)
        if k == len(tails):
            tails.append(v)
            tails_idx.append(i)
        else:
            tails[k] = v
            tails_idx[k] = i
        prev[i] = tails_idx[k - 1] if k > 0 else -1
    if run_keep.sum() >= len(tails):
        return run_keep
    keep = np.zeros(n, dtype=bool)
    j = tails_idx[-1]
    while j >= 0:
        keep[j] = True
        j = prev[j]
    return keep


# ---- small helpers -------------------------------------------------------------------------------


def _label(v: object) -> object:
    return v.item() if isinstance(v, np.generic) else v


def _same(a: object, b: object) -> bool:
    if _isnull(a) and _isnull(b):
        return True
    return bool(a == b)
