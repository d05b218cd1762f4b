"""File-drop market source: CSV or Parquet files put into a folder become quotes or klines.

Folder layout (`QP_DROP_DIR`, default `$QP_HOME/drop`):

    drop/                    incoming: put *.csv / *.parquet here (write to a dot-file or *.part,
                             then rename, or simply let the sensor's settle time pass)
    drop/staged/             accepted, waiting for their ingestion runs; `<id>__<name>` + manifest
    drop/archive/            ingested (every run for the file succeeded); same naming
    drop/rejected/           unparseable; `<name>` + `<name>.reason.txt`

`<id>` is the first 16 hex digits of the file's SHA-256, so the same content is one file whatever
its name, and a changed file under the same name is a new one. The manifest
(`<id>__<name>.json`) records the file's kind, the trading days it is ingested under, its rows and
where rows of other days went: the source finds the files of a day from manifests without opening
every file.

Accepted shapes (headers case-insensitive, aliases in `vendor_columns.FILE_COLUMN_ALIASES`):
- quotes: symbol, ts and price at least; other RAW_QUOTES columns optional (absent open/high/low are
  the price, absent prev_close/bid/ask NaN, absent volume/amount 0);
- klines: symbol, trade_date, open, high, low, close, volume, amount (prev_close optional: the
  previous row's close); or an AKShare `stock_zh_a_hist` export (Chinese headers, volume in lots,
  plus a `symbol`/`代码`/`股票代码` column).

The row rules decide, not the file: a file is rejected (`DropFileError`) only when it cannot be parsed
at all (not CSV/Parquet, an unreadable header, required columns missing, no data rows, or - in the
sensor - no row on a trading day that is a partition). Values are parsed one by one: clean numbers
and timestamps are converted (naive timestamps are exchange-local time), anything else stays as the
text in the file, so the row rules of the ingesting asset quarantine the row with the value in the
reason. Rows are never dropped, deduplicated or filled in per row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from quant_platform.core.calendar import get_calendar
from quant_platform.core.markets import limit_prices, price_limit
from quant_platform.core.quality.quarantine import NO_DAY, quarantine_frame
from quant_platform.core.rollups import daily_klines
from quant_platform.core.schema import KLINES_DAILY, QUARANTINE, RAW_QUOTES, STR, TS, TableSchema
from quant_platform.settings import settings
from quant_platform.sources.vendor_columns import (
    VendorPayloadError,
    concat_rejected,
    is_akshare_hist,
    klines_from_akshare_hist,
    normalise_symbol,
    rename_file_columns,
)

log = logging.getLogger(__name__)

QUOTES, KLINES = "quotes", "klines"
SUFFIXES = (".csv", ".parquet", ".pq")
STAGED, ARCHIVE, REJECTED = "staged", "archive", "rejected"
# Rules the source itself assigns, for rows it cannot hand to the row rules (same names as theirs,
# or the AKShare adapter's for a row that cannot be mapped to columns at all).
UNMAPPED = "vendor_payload"
BAD_TYPE = "bad_type"
OTHER_DAY = "trade_date_mismatch"
# Every data row of the file source enters the platform through `raw_quotes` (kline files as close
# snapshots), so what the source quarantines is quarantined for that table.
INGESTED_AS = RAW_QUOTES.name

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", re.ASCII)


class DropFileError(ValueError):
    """A dropped file cannot be parsed at all; the message is the reason written next to it."""


def drop_dir_from_env() -> Path:
    """`QP_DROP_DIR`, default `$QP_HOME/drop`."""
    return settings().drop_dir


def content_id(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def home_day(day: dt.date | None, run_days: Sequence[dt.date]) -> dt.date:
    """The run day a row of `day` is handled under: `day` itself when it is a run day, else the nearest
    run day (the earlier one on a tie); a row without a readable day: the first run day."""
    if not run_days:
        raise ValueError("no run days")
    if day is None or day in run_days:
        return day if day is not None else min(run_days)
    return min(run_days, key=lambda r: (abs((r - day).days), r))


@dataclass(frozen=True)
class DroppedFile:
    """A parsed drop: every data row, raw enough for the row rules, and the day each row claims.

    `frame` has the schema columns (RAW_QUOTES for quotes, KLINES_DAILY for klines), one row per data
    row in file order. Clean numbers and timestamps are converted; any other value is kept as in the
    file (text), so the row rules quarantine the row and show the value. `row_day` is each row's day:
    its trade_date when readable, else the exchange-local date of its ts; NaT when neither is.
    `problem` is "" for rows handed to the row rules, else why the source quarantines the row itself
    (an unreadable trade_date: the row cannot be placed in a partition). `unmapped` holds QUARANTINE
    rows for data the column mapping cannot map at all (a line with more fields than the header, an
    AKShare row its adapter rejects); their trade_date is NO_DAY when unknown.
    """

    kind: str
    frame: pd.DataFrame
    row_day: pd.Series
    problem: pd.Series
    unmapped: pd.DataFrame
    calendar: str = "XSHG"

    @property
    def days(self) -> tuple[dt.date, ...]:
        """Every day the rows name (trading days or not), sorted."""
        known = self.row_day.dropna()
        return tuple(sorted(set(pd.DatetimeIndex(known).date))) if len(known) else ()

    @property
    def sessions(self) -> tuple[dt.date, ...]:
        """The days that are trading days of the calendar."""
        cal = get_calendar(self.calendar)
        return tuple(d for d in self.days if cal.is_session(d))

    def rows_by_day(self) -> dict[str, int]:
        counts = self.row_day.dropna().dt.date.value_counts()
        return {d.isoformat(): int(n) for d, n in sorted(counts.items())}

    def split_for(self, day: dt.date, run_days: Sequence[dt.date]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(rows to ingest under `day` for the row rules, QUARANTINE rows the source quarantines).

        Under `day` come its own rows, plus - through `home_day` - rows of days that are not run days
        (quarantined here as `trade_date_mismatch`: writing them under `day` would misfile them) and,
        when `day` is the first run day, rows without a readable day (the rules judge them) and
        unmapped data.
        """
        day = pd.Timestamp(day).date()
        runs = sorted({pd.Timestamp(d).date() for d in run_days})
        row_day = pd.Series(pd.DatetimeIndex(self.row_day))
        known = row_day.notna().to_numpy()
        homes = {t: pd.Timestamp(home_day(t.date(), runs)) for t in row_day.dropna().unique()}
        home = np.array(row_day.map(homes) == pd.Timestamp(day), dtype=bool)
        if day == runs[0]:
            home |= ~known
        problem = self.problem.to_numpy(dtype=object) != ""
        own = ~known | (row_day == pd.Timestamp(day)).to_numpy()
        to_rules = home & ~problem & own
        other_day = home & ~problem & ~own
        bad = home & problem

        cal = get_calendar(self.calendar)
        quarantined = []
        if other_day.any():
            reasons = [
                f"trade_date {d} differs from partition {day}; "
                + (
                    f"{d} is not a {cal.name} trading day"
                    if not cal.is_session(d)
                    else f"{d} is not a partition of the ingestion job"
                )
                for d in pd.DatetimeIndex(row_day[other_day]).date
            ]
            quarantined.append(self._quarantine(other_day, OTHER_DAY, reasons, day))
        if bad.any():
            quarantined.append(self._quarantine(bad, BAD_TYPE, self.problem[bad].tolist(), day))
        if len(self.unmapped):
            u = self.unmapped
            u_days = pd.DatetimeIndex(u["trade_date"])
            mine = [home_day(None if t == NO_DAY else t.date(), runs) == day for t in u_days]
            if any(mine):
                rows = u[np.array(mine)].copy()
                rows["trade_date"] = pd.Timestamp(day)
                rows["table_name"] = INGESTED_AS
                quarantined.append(QUARANTINE.conform(rows))
        return self.frame[to_rules].reset_index(drop=True), concat_rejected(quarantined)

    def _quarantine(self, mask: np.ndarray, rule: str, reasons: list[str], day: dt.date) -> pd.DataFrame:
        rows = self.frame[mask]
        return quarantine_frame(
            INGESTED_AS,
            rows,
            rule=rule,
            reason=reasons,
            trade_date=pd.Timestamp(day),
            symbol=rows["symbol"].tolist(),
            ts=rows["ts"].tolist() if "ts" in rows else None,
            source="rules",
        )

    def summary(self, run_days: Sequence[dt.date]) -> dict:
        """Where the rows go, for the manifest and the sensor's log."""
        runs = sorted(run_days)
        outside: dict[str, dict] = {}
        for day, n in self.rows_by_day().items():
            d = dt.date.fromisoformat(day)
            if d not in runs:
                outside[day] = {"rows": n, "quarantined_under": home_day(d, runs).isoformat()}
        return {
            "outside_days": outside,
            "undated_rows": int(self.row_day.isna().sum()),
            "unmapped_rows": len(self.unmapped),
        }


@dataclass(frozen=True)
class Manifest:
    file_id: str
    name: str  # original file name
    kind: str
    days: tuple[str, ...]  # ISO dates of the runs that ingest the file
    rows: int
    staged_at: str
    # rows of days that are not run days: {day: {"rows": n, "quarantined_under": run day}}
    outside_days: dict = field(default_factory=dict)
    undated_rows: int = 0  # rows without a readable day: judged by the row rules under days[0]
    unmapped_rows: int = 0  # data the column mapping cannot map: quarantined under days[0]

    @property
    def stored_name(self) -> str:
        return f"{self.file_id}__{self.name}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        raw["days"] = tuple(raw["days"])
        return cls(**raw)


# ------------------------------------------------------------------------------------ parsing


def _read_any(path: Path) -> tuple[pd.DataFrame, list[list[str]]]:
    """The file's rows as read (CSV: all text) and, for CSV, lines with more fields than the header."""
    suffix = path.suffix.lower()
    name = path.name
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path).reset_index(drop=True), []
        except Exception as exc:  # noqa: BLE001 - any parser failure means the file cannot be read
            raise DropFileError(f"cannot read {name} as parquet: {type(exc).__name__}: {exc}") from exc
    if suffix != ".csv":
        raise DropFileError(f"unsupported file type {suffix!r} (expected one of {SUFFIXES})")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Bad bytes become U+FFFD in the values they hit; the rules quarantine those rows.
        text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    header = text.split("\n", 1)[0]
    if not header.strip():
        raise DropFileError(f"cannot read {name} as csv: no header line")
    if "\ufffd" in header or "\x00" in header:
        raise DropFileError(
            f"cannot read {name} as csv: the header line is not UTF-8 text (a binary file or another "
            "encoding?)"
        )
    too_long: list[list[str]] = []
    options = dict(dtype=str, index_col=False, skipinitialspace=False)
    try:
        try:
            frame = pd.read_csv(io.StringIO(text), **options)
        except pd.errors.ParserError:  # lines with more fields than the header: keep them aside
            frame = pd.read_csv(
                io.StringIO(text),
                engine="python",
                on_bad_lines=lambda fields: too_long.append(list(fields)),
                **options,
            )
    except Exception as exc:  # noqa: BLE001 - any parser failure means the file cannot be read
        raise DropFileError(f"cannot read {name} as csv: {type(exc).__name__}: {exc}") from exc
    return frame.reset_index(drop=True), too_long


def read_drop_file(path: str | Path, calendar: str = "XSHG") -> DroppedFile:
    """Parse a dropped file without judging its values; raises DropFileError only when the file cannot
    be parsed at all (see the module docstring). Never raises on a value."""
    path = Path(path)
    name = path.name
    raw, too_long = _read_any(path)
    raw.columns = [str(c) for c in raw.columns]
    if raw.empty and not too_long:
        raise DropFileError(f"{name}: no data rows")
    unmapped = _unmapped_lines(too_long, list(raw.columns))
    if is_akshare_hist(raw):
        return _akshare_export(raw, name, calendar, unmapped)
    df = rename_file_columns(raw.copy())
    df = df.loc[:, ~df.columns.duplicated()]
    if "symbol" not in df.columns:
        raise DropFileError(f"{name}: no symbol column; got {list(raw.columns)}")
    if "ts" in df.columns and "price" in df.columns:
        return _quotes(df, calendar, unmapped)
    needed = ["trade_date", "open", "high", "low", "close", "volume", "amount"]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DropFileError(
            f"{name}: neither quotes (needs symbol, ts, price) nor klines (missing {missing}); "
            f"got columns {list(raw.columns)}"
        )
    return _klines(df, calendar, unmapped)


def _unmapped_lines(lines: list[list[str]], header: list[str]) -> pd.DataFrame:
    if not lines:
        return QUARANTINE.empty()
    return quarantine_frame(
        INGESTED_AS,
        pd.DataFrame({"fields": lines}),
        rule=UNMAPPED,
        reason=[f"a line with {len(f)} fields, the header has {len(header)}: cannot map them" for f in lines],
        source="vendor",
    )


# Value parsers: clean values are converted, anything else is kept as it is in the file.


def _isnull(v: object) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _number_or_raw(v: object) -> object:
    if isinstance(v, bool | np.bool_):
        return v  # True/False are not prices or volumes: left for the rules
    if isinstance(v, str):
        text = v.strip()
        if not text:
            return np.nan
        if _NUMBER.match(text):
            x = float(text)
            return x if math.isfinite(x) else v  # '1e400', a 400-digit price: the rules see the text
        return v
    if isinstance(v, int | np.integer):
        try:
            return float(v)
        except OverflowError:
            return str(v)
    if isinstance(v, float | np.floating):
        return float(v)
    return str(v)


def _numbers(s: pd.Series) -> pd.Series:
    """float64 when every value is a clean number (or empty); else object: floats and raw values."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype(object)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.astype("float64")
    values = s.to_numpy(dtype=object)
    try:
        num = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    except (OverflowError, TypeError, ValueError):
        num = np.full(len(s), np.nan)
    null = s.isna().to_numpy()
    clean = np.isfinite(num) | null
    if s.dtype == object:  # only an object column can hold True/False next to text
        clean &= ~np.array([isinstance(v, bool | np.bool_) for v in values], dtype=bool)
    if clean.all():
        return pd.Series(num, index=s.index)
    out = num.astype(object)
    for i in np.flatnonzero(~clean):
        out[i] = _number_or_raw(values[i])
    return pd.Series(out, index=s.index, dtype=object)


def _whole(s: pd.Series) -> pd.Series:
    """int64 when every value is a finite whole number within int64, else unchanged (the rules judge)."""
    if s.dtype == "float64":
        x = s.to_numpy()
        if np.isfinite(x).all() and (x == np.round(x)).all() and (np.abs(x) < 2**63).all():
            return s.astype("int64")
    return s


def _floats(s: pd.Series) -> np.ndarray:
    """Readable numbers of a `_numbers` column; NaN for anything else."""
    if s.dtype == "float64":
        return s.to_numpy()
    return np.array([v if isinstance(v, float) else np.nan for v in s.tolist()], dtype=float)


def _symbol(v: object) -> object:
    if isinstance(v, str):
        try:
            return normalise_symbol(v)
        except ValueError:
            return v.strip()
    if isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
        try:
            return normalise_symbol(v)
        except ValueError:
            return v
    return _plain(v)  # a float, a bool: not text, the rules say so


def _plain(v: object) -> object:
    """`v` when it is a scalar the row rules can hash and show, else its text (a Parquet list, bytes)."""
    if isinstance(v, str | int | float | bool | np.generic | pd.Timestamp | dt.date):
        return v
    return str(v)


def _symbols(s: pd.Series) -> pd.Series:
    cache: dict = {}
    out = []
    for v in s.tolist():
        if _isnull(v):
            out.append(np.nan)
            continue
        key = (type(v), v)
        try:
            out.append(cache[key])
        except KeyError:
            out.append(cache.setdefault(key, _symbol(v)))
        except TypeError:  # unhashable (a Parquet list): parsed every time
            out.append(_symbol(v))
    return pd.Series(out, index=s.index, dtype=object)


def _parse_instant(v: object, tz) -> pd.Timestamp | None:
    if isinstance(v, str):
        text = v.strip()
        if not any(ch.isdigit() for ch in text):  # 'now', 'today': not instants of a file's row
            return None
        try:
            t = pd.Timestamp(text)
        except Exception:  # noqa: BLE001 - any parse failure: the value stays raw
            return None
    elif isinstance(v, pd.Timestamp | dt.datetime):
        t = pd.Timestamp(v)
    else:
        return None
    if t is pd.NaT:
        return None
    try:
        t = t.tz_localize(tz) if t.tzinfo is None else t
        return t.tz_convert("UTC").as_unit("ms")
    except Exception:  # noqa: BLE001 - nonexistent local time, out of range
        return None


def _timestamps(s: pd.Series, tz) -> tuple[pd.Series, pd.Series]:
    """(the ts column: datetime64[ms, UTC] when every value is readable, else object with raw values
    kept; the readable instants with NaT elsewhere)."""
    n = len(s)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        parsed = s.dt.tz_convert("UTC").dt.as_unit("ms")
        return parsed, parsed
    if s.dtype.kind == "M":
        parsed = (
            s.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC").dt.as_unit("ms")
        )
        if (parsed.isna() == s.isna()).all():
            return parsed, parsed
        values = s.to_numpy(dtype=object)
    elif pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        # epochs are ambiguous (s? ms? which zone?): kept raw for the rules (bad_type)
        return s.astype(object), pd.Series(pd.NaT, index=s.index, dtype=TS)
    else:
        values = s.to_numpy(dtype=object)
    cache: dict = {}
    good: list = []
    column: list = []
    for v in values:
        if _isnull(v):
            good.append(pd.NaT)
            column.append(np.nan)
            continue
        try:
            t = cache[v]
        except (KeyError, TypeError):
            t = _parse_instant(v, tz)
            with contextlib.suppress(TypeError):  # unhashable values are parsed every time
                cache[v] = t
        good.append(pd.NaT if t is None else t)
        column.append(_plain(v) if t is None else t)
    parsed = pd.Series(pd.DatetimeIndex(good, tz="UTC").as_unit("ms"), index=s.index)
    ok = parsed.notna().to_numpy() | s.isna().to_numpy()
    if n and ok.all():
        return parsed, parsed
    return pd.Series(column, index=s.index, dtype=object), parsed


def _parse_date(v: object) -> pd.Timestamp | None:
    if isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
        v = str(v)  # 20241008
    if isinstance(v, str):
        text = v.strip()
        if not any(ch.isdigit() for ch in text):
            return None
        try:
            t = pd.Timestamp(text)
        except Exception:  # noqa: BLE001 - any parse failure: the value is unreadable
            return None
    elif isinstance(v, pd.Timestamp | dt.datetime | dt.date):
        t = pd.Timestamp(v)
    else:
        return None
    if t is pd.NaT:
        return None
    t = t.tz_localize(None) if t.tzinfo is not None else t
    try:
        return t.as_unit("s")
    except Exception:  # noqa: BLE001
        return None


def _dates(s: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(the trade_date column, each row's day (NaT unknown), a reason per unreadable value or "")."""
    n = len(s)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    if s.dtype.kind == "M":
        col = s.astype("datetime64[s]")
        return col, col.dt.normalize(), pd.Series([""] * n, index=s.index, dtype=object)
    values = s.to_numpy(dtype=object)
    parsed: list = []
    problems: list[str] = []
    for v in values:
        if _isnull(v):
            parsed.append(pd.NaT)
            problems.append("")
            continue
        t = _parse_date(v)
        parsed.append(pd.NaT if t is None else t)
        problems.append(f"trade_date={v!r} is not a date" if t is None else "")
    col = pd.Series(pd.DatetimeIndex(parsed).as_unit("s"), index=s.index)
    problem = pd.Series(problems, index=s.index, dtype=object)
    day = col.dt.normalize()
    if (problem != "").any():  # keep the unreadable text visible in the quarantined row
        col = col.astype(object).where(problem == "", s.map(_plain).astype(object))
    return col, day, problem


def _quotes(df: pd.DataFrame, calendar: str, unmapped: pd.DataFrame) -> DroppedFile:
    cal = get_calendar(calendar)
    n = len(df)
    ts, instants = _timestamps(df["ts"], cal.tz)
    local_day = instants.dt.tz_convert(cal.tz).dt.tz_localize(None).dt.normalize().astype("datetime64[s]")
    if "trade_date" in df.columns:
        trade_date, given, problem = _dates(df["trade_date"])
        row_day = given.where(given.notna(), local_day)
    else:
        trade_date, row_day = local_day, local_day
        problem = pd.Series([""] * n, index=df.index, dtype=object)
    price = _numbers(df["price"])
    cols = {"symbol": _symbols(df["symbol"]), "trade_date": trade_date, "ts": ts, "price": price}
    for col in ("open", "high", "low"):
        cols[col] = _numbers(df[col]) if col in df.columns else price
    cols["prev_close"] = _numbers(df["prev_close"]) if "prev_close" in df.columns else _nan(n)
    cols["volume"] = _whole(_numbers(df["volume"])) if "volume" in df.columns else _zeros(n, "int64")
    cols["amount"] = _numbers(df["amount"]) if "amount" in df.columns else _zeros(n, "float64")
    for col in ("bid", "ask"):
        cols[col] = _numbers(df[col]) if col in df.columns else _nan(n)
    frame = pd.DataFrame({c: cols[c].reset_index(drop=True) for c in RAW_QUOTES.names})
    return DroppedFile(
        QUOTES,
        _conform_if_clean(frame, RAW_QUOTES),
        row_day.reset_index(drop=True).astype("datetime64[s]"),
        problem.reset_index(drop=True),
        unmapped,
        calendar,
    )


def _klines(df: pd.DataFrame, calendar: str, unmapped: pd.DataFrame) -> DroppedFile:
    trade_date, day, problem = _dates(df["trade_date"])
    symbol = _symbols(df["symbol"])
    nums = {c: _numbers(df[c]) for c in ("open", "high", "low", "close", "amount")}
    nums["volume"] = _whole(_numbers(df["volume"]))
    close = _floats(nums["close"])
    if "prev_close" in df.columns:
        prev_close = _numbers(df["prev_close"])
    else:  # the previous readable row's close of the symbol in the file (NaN for its first day)
        order = pd.DataFrame({"sym": symbol.astype(str), "day": day, "close": close})
        order = order[day.notna().to_numpy()].sort_values(["sym", "day"], kind="stable")
        prev_close = pd.Series(np.nan, index=df.index)
        prev_close.loc[order.index] = order.groupby("sym")["close"].shift(1)
    prev = _floats(prev_close)
    limits = np.array([price_limit(s) if isinstance(s, str) else np.nan for s in symbol], dtype=float)
    up, down = limit_prices(prev, np.where(np.isnan(limits), np.inf, limits))
    known = np.isfinite(prev) & ~np.isnan(limits)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = close / prev - 1.0
    frame = pd.DataFrame(
        {
            "symbol": symbol.to_numpy(),
            "trade_date": trade_date.to_numpy(),
            **{c: nums[c].to_numpy() for c in ("open", "high", "low", "close")},
            "prev_close": prev_close.to_numpy(),
            "volume": nums["volume"].to_numpy(),
            "amount": nums["amount"].to_numpy(),
            "change_rate": change,
            "limit_up": np.where(known, up, np.nan),
            "limit_down": np.where(known, down, np.nan),
        }
    )
    return DroppedFile(
        KLINES,
        _conform_if_clean(frame, KLINES_DAILY),
        day.reset_index(drop=True).astype("datetime64[s]"),
        problem.reset_index(drop=True),
        unmapped,
        calendar,
    )


def _akshare_export(raw: pd.DataFrame, name: str, calendar: str, unmapped: pd.DataFrame) -> DroppedFile:
    col = next((c for c in ("symbol", "代码", "股票代码", "code") if c in raw.columns), None)
    if col is None:
        raise DropFileError(f"{name}: AKShare kline export without a symbol/代码/股票代码 column")
    frames, rejected = [], [unmapped]
    for code, rows in raw.groupby(raw[col].astype(str), sort=True, dropna=False):
        try:
            klines, bad = klines_from_akshare_hist(rows, normalise_symbol(code), dedupe=False)
        except (ValueError, VendorPayloadError) as exc:  # an unknown code: its rows cannot be mapped
            bad = quarantine_frame(
                INGESTED_AS,
                rows,
                rule=UNMAPPED,
                reason=str(exc),
                trade_date=pd.to_datetime(rows["日期"].astype(str), errors="coerce", format="mixed"),
                symbol=str(code),
                source="vendor",
            )
            klines = KLINES_DAILY.empty()
        frames.append(klines)
        rejected.append(bad)
    frame = pd.concat(frames, ignore_index=True) if frames else KLINES_DAILY.empty()
    day = pd.Series(pd.DatetimeIndex(frame["trade_date"]).normalize(), dtype="datetime64[s]")
    return DroppedFile(
        KLINES,
        KLINES_DAILY.conform(frame),
        day,
        pd.Series([""] * len(frame), dtype=object),
        concat_rejected(rejected),
        calendar,
    )


def _nan(n: int) -> pd.Series:
    return pd.Series(np.full(n, np.nan))


def _zeros(n: int, dtype: str) -> pd.Series:
    return pd.Series(np.zeros(n, dtype=dtype))


def _conform_if_clean(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """The frame with the schema's columns; conformed (exact dtypes) only when every value is already
    clean, so no cast ever turns a bad value into a plausible one (True into 1.0)."""
    frame = frame.loc[:, schema.names].reset_index(drop=True)
    if all(c.dtype == STR or str(frame[c.name].dtype) == c.dtype for c in schema.columns):
        return schema.conform(frame)
    return frame


# ------------------------------------------------------------------------------------ folders


class DropFolder:
    """The drop folder's layout and the moves between its sub-folders (all renames, so atomic on
    one filesystem)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser().resolve() if root else drop_dir_from_env()

    def ensure(self) -> None:
        for sub in ("", STAGED, ARCHIVE, REJECTED):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def incoming(self, min_age_seconds: float = 0.0, now: float | None = None) -> list[Path]:
        """Candidate files at the top level, oldest first; hidden/partial files and files modified in
        the last `min_age_seconds` (maybe still being written) are skipped, and so is a file that
        vanishes while it is looked at."""
        if not self.root.exists():
            return []
        now = now if now is not None else _time()
        out = []
        for p in self.root.iterdir():
            if p.name.startswith((".", "~")) or p.suffix.lower() not in SUFFIXES:
                continue
            try:
                if not p.is_file():
                    continue
                mtime = p.stat().st_mtime
            except OSError:
                continue
            if now - mtime < min_age_seconds:
                continue
            out.append((mtime, p.name, p))
        return [p for _, _, p in sorted(out)]

    def stage(
        self, path: Path, parsed: DroppedFile, file_id: str, days: Sequence[dt.date] | None = None
    ) -> Manifest:
        """Move an accepted file into staged/ and write its manifest (file first, manifest last).

        `days` are the trading days its runs ingest it under (default: every trading day it names).
        If the manifest cannot be written, the file is moved back and the error raised.
        """
        runs = sorted(days if days is not None else parsed.sessions)
        if not runs:
            raise DropFileError(f"{path.name}: no row falls on a trading day")
        manifest = Manifest(
            file_id=file_id,
            name=path.name,
            kind=parsed.kind,
            days=tuple(d.isoformat() for d in runs),
            rows=len(parsed.frame),
            staged_at=pd.Timestamp.now(tz="UTC").isoformat(),
            **parsed.summary(runs),
        )
        self.ensure()
        target = self.root / STAGED / manifest.stored_name
        moved = False
        if (self.root / ARCHIVE / manifest.stored_name).exists() or target.exists():
            path.unlink()  # the same content is already in the pipeline
        else:
            os.replace(path, target)
            moved = True
        try:
            _write_atomic(self.root / STAGED / f"{manifest.stored_name}.json", manifest.to_json())
        except BaseException:
            if moved:
                os.replace(target, path)
            raise
        return manifest

    def reject(self, path: Path, reason: str) -> Path:
        """Move a bad file into rejected/ with `<name>.reason.txt` next to it."""
        self.ensure()
        target = self.root / REJECTED / path.name
        if target.exists():
            try:
                suffix = content_id(path)
            except OSError:
                suffix = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
            target = target.with_name(f"{target.stem}.{suffix}{target.suffix}")
        os.replace(path, target)
        _write_atomic(target.with_name(target.name + ".reason.txt"), reason.rstrip() + "\n")
        return target

    def archive(self, manifest: Manifest) -> None:
        self.ensure()
        src = self.root / STAGED / manifest.stored_name
        if src.exists():
            os.replace(src, self.root / ARCHIVE / manifest.stored_name)
        meta = self.root / STAGED / f"{manifest.stored_name}.json"
        if meta.exists():
            os.replace(meta, self.root / ARCHIVE / meta.name)

    def manifests(self, where: str = STAGED) -> list[Manifest]:
        folder = self.root / where
        if not folder.exists():
            return []
        out = []
        for meta in sorted(folder.glob("*.json")):
            try:
                out.append(Manifest.from_json(meta.read_text()))
            except (ValueError, TypeError, KeyError, OSError):
                continue
        return out

    def files_for(self, day: dt.date) -> list[tuple[Manifest, Path]]:
        """Staged and archived files covering `day`, oldest staged first (later files win on overlap)."""
        iso = day.isoformat()
        found = {}
        for where in (ARCHIVE, STAGED):
            for m in self.manifests(where):
                path = self.root / where / m.stored_name
                if iso in m.days and path.exists():
                    found[m.file_id] = (m, path)
        return sorted(found.values(), key=lambda mp: (mp[0].staged_at, mp[0].file_id))


def _time() -> float:
    import time

    return time.time()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------- source


class FileDropSource:
    """MarketSource over the staged and archived files of the drop folder.

    `fetch_quotes(day)` is the rows of the quote files ingested under `day` (later files win on the
    same symbol and ts), plus one close snapshot per kline row of symbols without quote rows that day;
    values are raw where not clean, for the row rules of `raw_quotes`. Rows the source quarantines
    itself (rows of days that are not run days, unreadable trade_dates, unmapped data) come back from
    `take_rejected()`. `universe(day)` is the symbol master (`sources.symbols`), never the symbols of
    the dropped rows. `fetch_daily_bars(day)` is the kline files' rows, or the rollup of the day's
    quotes that pass the quote rules.
    """

    name = "files"
    universe_from_master = True  # its universe is read from the symbol master, never recorded into it

    def __init__(
        self,
        drop_dir: str | Path | None = None,
        calendar: str = "XSHG",
        symbol_master: Callable[[dt.date], list[str]] | None = None,
    ) -> None:
        self.folder = DropFolder(drop_dir)
        self.calendar = calendar
        self._master = symbol_master
        self._rejected: list[pd.DataFrame] = []

    def _rows(self, day: dt.date, kind: str) -> pd.DataFrame:
        schema = RAW_QUOTES if kind == QUOTES else KLINES_DAILY
        frames = []
        for manifest, path in self.folder.files_for(day):
            if manifest.kind != kind:
                continue
            parsed = read_drop_file(path, self.calendar)
            rows, quarantined = parsed.split_for(day, [dt.date.fromisoformat(d) for d in manifest.days])
            if len(quarantined):
                self._rejected.append(quarantined)
            frames.append(rows)
        if not frames:
            return schema.empty()
        key = ["symbol", "ts"] if kind == QUOTES else ["symbol", "trade_date"]
        keys = [pd.MultiIndex.from_arrays([f[k].astype(str) for k in key]) for f in frames]
        kept = []
        for i, frame in enumerate(frames):  # a later file's row replaces an earlier file's same key
            later = keys[i + 1 :]
            if later:
                replaced = keys[i].isin(later[0].append(later[1:]) if len(later) > 1 else later[0])
                if replaced.any():
                    log.info("%s: %d rows replaced by later files", day, int(replaced.sum()))
                frame = frame[~replaced]
            kept.append(frame)
        return _conform_if_clean(pd.concat(kept, ignore_index=True), schema)

    def _kline_snapshots(self, klines: pd.DataFrame, day: dt.date) -> pd.DataFrame:
        """One close snapshot per kline row (ts = the session close of `day`), values as they are."""
        if klines.empty:
            return RAW_QUOTES.empty()
        close = get_calendar(self.calendar).session(day).close.tz_convert("UTC").as_unit("ms")
        n = len(klines)
        out = pd.DataFrame(
            {
                "symbol": klines["symbol"].to_numpy(),
                "trade_date": klines["trade_date"].to_numpy(),
                "ts": pd.Series([close] * n, dtype=TS),
                "price": klines["close"].to_numpy(),
                **{
                    c: klines[c].to_numpy() for c in ("open", "high", "low", "prev_close", "volume", "amount")
                },
                "bid": np.nan,
                "ask": np.nan,
            }
        )
        return _conform_if_clean(out, RAW_QUOTES)

    def universe(self, day: dt.date) -> list[str]:
        from quant_platform.sources.symbols import cold_symbol_master

        lookup = self._master or cold_symbol_master(settings().require().stores.clickhouse_dsn)
        return lookup(pd.Timestamp(day).date())

    def fetch_quotes(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame:
        day = pd.Timestamp(day).date()
        quotes = self._rows(day, QUOTES)
        klines = self._rows(day, KLINES)
        if len(klines):  # kline rows of symbols that have quote rows that day are finer-grained there
            quoted = set(quotes["symbol"].astype(str))
            extra = klines[~klines["symbol"].astype(str).isin(quoted)]
            if len(extra) < len(klines):
                log.info("%s: %d kline rows superseded by quote files", day, len(klines) - len(extra))
            if len(extra):
                snaps = self._kline_snapshots(extra.reset_index(drop=True), day)
                quotes = (
                    snaps
                    if quotes.empty
                    else _conform_if_clean(pd.concat([quotes, snaps], ignore_index=True), RAW_QUOTES)
                )
        if symbols is not None:
            quotes = quotes[quotes["symbol"].isin(set(symbols))].reset_index(drop=True)
        return quotes

    def take_rejected(self) -> pd.DataFrame:
        """QUARANTINE rows (table raw_quotes) the source quarantined since the last call, then forgets
        them: rows of other days, unreadable trade_dates, data the column mapping cannot map."""
        frames, self._rejected = self._rejected, []
        return concat_rejected(frames)

    def fetch_daily_bars(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame:
        from quant_platform.core.quality.rules import split_quotes

        day = pd.Timestamp(day).date()
        bars = self._rows(day, KLINES)
        if bars.empty:
            quotes = self._rows(day, QUOTES)
            clean = (
                split_quotes(
                    quotes,
                    trade_date=day,
                    calendar=self.calendar,
                    universe=self.universe(day),
                    price_limit="board",
                ).clean
                if len(quotes)
                else quotes
            )
            bars = daily_klines(clean) if len(clean) else KLINES_DAILY.empty()
        if symbols is not None:
            bars = bars[bars["symbol"].isin(set(symbols))].reset_index(drop=True)
        return bars


__all__ = [
    "DropFileError",
    "DropFolder",
    "DroppedFile",
    "FileDropSource",
    "Manifest",
    "content_id",
    "home_day",
    "read_drop_file",
]
