"""File-drop market source: CSV or Parquet files put into a folder become quotes or klines.

Folder layout (`QP_DROP_DIR`, default `$QP_HOME/drop`):

    drop/                    incoming: put *.csv / *.parquet here (write to a dot-file or *.part,
                             then rename, or simply let the sensor's settle time pass)
    drop/staged/             accepted, waiting for their ingestion runs; `<id>__<name>` + manifest
    drop/archive/            ingested (every run for the file succeeded); same naming
    drop/rejected/           unreadable or mis-shaped; `<name>` + `<name>.reason.txt`

`<id>` is the first 16 hex digits of the file's SHA-256, so the same content is one file whatever
its name, and a changed file under the same name is a new one. The manifest
(`<id>__<name>.json`) records the file's kind, trading days, rows and hash: the source finds the
files of a day from manifests without opening every file.

Accepted shapes (headers case-insensitive, aliases in `vendor_columns.FILE_COLUMN_ALIASES`):
- quotes: symbol, ts and price at least; other RAW_QUOTES columns optional (open/high/low default
  to the price, prev_close to NaN, volume/amount to 0, bid/ask to NaN);
- klines: symbol, trade_date, open, high, low, close, volume, amount (prev_close optional: the
  previous row's close); or an AKShare `stock_zh_a_hist` export (Chinese headers, volume in lots,
  plus a `symbol`/`代码`/`股票代码` column).
Naive timestamps are exchange-local time; `trade_date` is derived from `ts` when absent. Every day
must be a trading day of the calendar. A file that breaks any rule is rejected as a whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quant_platform.core.calendar import get_calendar
from quant_platform.core.markets import limit_prices, price_limit
from quant_platform.core.rollups import daily_klines
from quant_platform.core.schema import KLINES_DAILY, RAW_QUOTES
from quant_platform.settings import settings
from quant_platform.sources.vendor_columns import (
    close_snapshots,
    is_akshare_hist,
    klines_from_akshare_hist,
    normalise_symbol,
    rename_file_columns,
)

QUOTES, KLINES = "quotes", "klines"
SUFFIXES = (".csv", ".parquet", ".pq")
STAGED, ARCHIVE, REJECTED = "staged", "archive", "rejected"


class DropFileError(ValueError):
    """A dropped file cannot be ingested; the message is the reason written next to it."""


def drop_dir_from_env() -> Path:
    """`QP_DROP_DIR`, default `$QP_HOME/drop`."""
    return settings().drop_dir


def content_id(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class DroppedFile:
    """A parsed drop: the conforming rows and the trading days they cover."""

    kind: str  # QUOTES or KLINES
    frame: pd.DataFrame
    days: tuple[dt.date, ...]


@dataclass(frozen=True)
class Manifest:
    file_id: str
    name: str  # original file name
    kind: str
    days: tuple[str, ...]  # ISO dates
    rows: int
    staged_at: str

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


def _read_any(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype={"symbol": str, "code": str, "代码": str, "股票代码": str})
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a reason to reject
        raise DropFileError(f"cannot read {path.name} as {suffix[1:]}: {type(exc).__name__}: {exc}") from exc
    raise DropFileError(f"unsupported file type {suffix!r} (expected one of {SUFFIXES})")


def _numbers(df: pd.DataFrame, cols: list[str], name: str) -> None:
    for col in cols:
        if col not in df.columns:
            continue
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() & df[col].notna()
        if bad.any():
            rows = [int(i) + 1 for i in np.flatnonzero(bad.to_numpy())[:3]]
            raise DropFileError(
                f"{name}: column {col!r} has non-numeric values at data rows {rows} "
                f"(e.g. {df[col][bad].iloc[0]!r})"
            )
        df[col] = num


def _symbols(series: pd.Series, name: str) -> pd.Series:
    out = []
    for i, value in enumerate(series.tolist()):
        if pd.isna(value):
            raise DropFileError(f"{name}: empty symbol at data row {i + 1}")
        try:
            out.append(normalise_symbol(value) if _looks_a_share(value) else str(value).strip())
        except ValueError as exc:
            raise DropFileError(f"{name}: data row {i + 1}: {exc}") from None
    return pd.Series(out, index=series.index)


def _looks_a_share(value: object) -> bool:
    text = str(value).strip().upper()
    return any(ch.isdigit() for ch in text) and "-" not in text and "/" not in text


def _check_days(days: list[dt.date], calendar: str, name: str) -> tuple[dt.date, ...]:
    cal = get_calendar(calendar)
    bad = [d for d in days if not cal.is_session(d)]
    if bad:
        raise DropFileError(f"{name}: {', '.join(map(str, bad[:5]))} is not a {calendar} trading day")
    return tuple(sorted(set(days)))


def read_drop_file(path: str | Path, calendar: str = "XSHG") -> DroppedFile:
    """Parse and validate a dropped file; raises DropFileError with a readable reason."""
    path = Path(path)
    name = path.name
    raw = _read_any(path)
    if raw.empty:
        raise DropFileError(f"{name}: no rows")
    if is_akshare_hist(raw):
        return _akshare_export(raw, name, calendar)
    df = rename_file_columns(raw.copy())
    if "symbol" not in df.columns:
        raise DropFileError(f"{name}: no symbol column; got {list(raw.columns)}")
    df["symbol"] = _symbols(df["symbol"], name)
    if "ts" in df.columns and "price" in df.columns:
        return _quotes(df, name, calendar)
    needed = ["trade_date", "open", "high", "low", "close", "volume", "amount"]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DropFileError(
            f"{name}: neither quotes (needs symbol, ts, price) nor klines (missing {missing}); "
            f"got columns {list(raw.columns)}"
        )
    return _klines(df, name, calendar)


def _quotes(df: pd.DataFrame, name: str, calendar: str) -> DroppedFile:
    cal = get_calendar(calendar)
    try:
        ts = pd.to_datetime(df["ts"], format="mixed")
    except (ValueError, TypeError) as exc:
        raise DropFileError(f"{name}: column 'ts' has values that are not timestamps ({exc})") from None
    if ts.isna().any():
        raise DropFileError(
            f"{name}: empty ts at data row {int(np.flatnonzero(ts.isna().to_numpy())[0]) + 1}"
        )
    ts = ts.dt.tz_localize(cal.tz) if ts.dt.tz is None else ts
    df["ts"] = ts.dt.tz_convert("UTC").dt.as_unit("ms")
    _numbers(df, ["price", "open", "high", "low", "prev_close", "volume", "amount", "bid", "ask"], name)
    if df["price"].isna().any():
        raise DropFileError(f"{name}: empty price values")
    for col in ("open", "high", "low"):
        df[col] = df[col].fillna(df["price"]) if col in df.columns else df["price"]
    for col, default in (
        ("prev_close", np.nan),
        ("volume", 0),
        ("amount", 0.0),
        ("bid", np.nan),
        ("ask", np.nan),
    ):
        df[col] = df[col].fillna(default) if col in df.columns else default
    local_day = df["ts"].dt.tz_convert(cal.tz).dt.tz_localize(None).dt.normalize()
    if "trade_date" in df.columns:
        given = pd.to_datetime(df["trade_date"], errors="coerce")
        if given.isna().any() or (given.dt.normalize() != local_day).any():
            raise DropFileError(f"{name}: trade_date disagrees with the exchange-local date of ts")
    df["trade_date"] = local_day.astype("datetime64[s]")
    if (df["volume"] % 1 != 0).any():
        raise DropFileError(f"{name}: volume must be whole shares")
    days = _check_days(list(pd.DatetimeIndex(df["trade_date"]).date), calendar, name)
    frame = RAW_QUOTES.conform(df).drop_duplicates(["symbol", "ts"], keep="last")
    return DroppedFile(QUOTES, frame.sort_values(["symbol", "ts"]).reset_index(drop=True), days)


def _klines(df: pd.DataFrame, name: str, calendar: str) -> DroppedFile:
    day = pd.to_datetime(df["trade_date"], errors="coerce", format="mixed")
    if day.isna().any():
        raise DropFileError(f"{name}: trade_date has values that are not dates")
    df["trade_date"] = day.dt.normalize().astype("datetime64[s]")
    _numbers(df, ["open", "high", "low", "close", "prev_close", "volume", "amount"], name)
    if df[["open", "high", "low", "close", "volume", "amount"]].isna().any().any():
        raise DropFileError(f"{name}: empty open/high/low/close/volume/amount values")
    if (df["volume"] % 1 != 0).any():
        raise DropFileError(f"{name}: volume must be whole shares")
    df = df.sort_values(["symbol", "trade_date"], kind="stable")
    if "prev_close" not in df.columns:
        df["prev_close"] = df.groupby("symbol")["close"].shift(1)
    limits = np.array([price_limit(s) for s in df["symbol"]])
    up, down = limit_prices(df["prev_close"].to_numpy(dtype=float), limits)
    df["limit_up"] = np.where(df["prev_close"].notna(), up, np.nan)
    df["limit_down"] = np.where(df["prev_close"].notna(), down, np.nan)
    df["change_rate"] = df["close"] / df["prev_close"] - 1.0
    days = _check_days(list(pd.DatetimeIndex(df["trade_date"]).date), calendar, name)
    frame = KLINES_DAILY.conform(df).drop_duplicates(["symbol", "trade_date"], keep="last")
    return DroppedFile(KLINES, frame.reset_index(drop=True), days)


def _akshare_export(raw: pd.DataFrame, name: str, calendar: str) -> DroppedFile:
    col = next((c for c in ("symbol", "代码", "股票代码", "code") if c in raw.columns), None)
    if col is None:
        raise DropFileError(f"{name}: AKShare kline export without a symbol/代码/股票代码 column")
    frames = []
    for code, rows in raw.groupby(raw[col].astype(str), sort=True):
        try:
            klines, rejected = klines_from_akshare_hist(rows, normalise_symbol(code))
        except ValueError as exc:
            raise DropFileError(f"{name}: {exc}") from None
        if len(rejected):
            raise DropFileError(f"{name}: {code}: {rejected['reason'].iloc[0]}")
        frames.append(klines)
    frame = pd.concat(frames, ignore_index=True)
    days = _check_days(list(pd.DatetimeIndex(frame["trade_date"]).date), calendar, name)
    return DroppedFile(KLINES, frame, days)


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
        the last `min_age_seconds` (maybe still being written) are skipped."""
        if not self.root.exists():
            return []
        now = now if now is not None else _time()
        out = []
        for p in self.root.iterdir():
            if not p.is_file() or p.name.startswith((".", "~")) or p.suffix.lower() not in SUFFIXES:
                continue
            if now - p.stat().st_mtime < min_age_seconds:
                continue
            out.append(p)
        return sorted(out, key=lambda p: (p.stat().st_mtime, p.name))

    def stage(self, path: Path, parsed: DroppedFile, file_id: str) -> Manifest:
        """Move an accepted file into staged/ and write its manifest (file first, manifest last)."""
        self.ensure()
        manifest = Manifest(
            file_id=file_id,
            name=path.name,
            kind=parsed.kind,
            days=tuple(d.isoformat() for d in parsed.days),
            rows=len(parsed.frame),
            staged_at=pd.Timestamp.now(tz="UTC").isoformat(),
        )
        target = self.root / STAGED / manifest.stored_name
        if (self.root / ARCHIVE / manifest.stored_name).exists() or target.exists():
            path.unlink()  # the same content is already in the pipeline
        else:
            os.replace(path, target)
        _write_atomic(self.root / STAGED / f"{manifest.stored_name}.json", manifest.to_json())
        return manifest

    def reject(self, path: Path, reason: str) -> Path:
        """Move a bad file into rejected/ with `<name>.reason.txt` next to it."""
        self.ensure()
        target = self.root / REJECTED / path.name
        if target.exists():
            target = target.with_name(f"{target.stem}.{content_id(path)}{target.suffix}")
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
            except (ValueError, TypeError, KeyError):
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

    `fetch_quotes(day)` is the union of the quote files covering `day` (later files win on the same
    (symbol, ts)); a day with only kline files gets one close snapshot per kline.
    `fetch_daily_bars(day)` is the kline files' rows, or the rollup of the day's quotes.
    """

    name = "files"

    def __init__(self, drop_dir: str | Path | None = None, calendar: str = "XSHG") -> None:
        self.folder = DropFolder(drop_dir)
        self.calendar = calendar

    def _frames(self, day: dt.date, kind: str) -> pd.DataFrame:
        schema = RAW_QUOTES if kind == QUOTES else KLINES_DAILY
        frames = []
        for manifest, path in self.folder.files_for(pd.Timestamp(day).date()):
            if manifest.kind != kind:
                continue
            parsed = read_drop_file(path, self.calendar)
            rows = parsed.frame[pd.DatetimeIndex(parsed.frame["trade_date"]).date == pd.Timestamp(day).date()]
            frames.append(rows)
        if not frames:
            return schema.empty()
        key = ["symbol", "ts"] if kind == QUOTES else ["symbol", "trade_date"]
        df = pd.concat(frames, ignore_index=True).drop_duplicates(key, keep="last")
        return schema.conform(df.sort_values(key, kind="stable"))

    def universe(self, day: dt.date) -> list[str]:
        q = self._frames(day, QUOTES)
        k = self._frames(day, KLINES)
        return sorted(set(q["symbol"]) | set(k["symbol"]))

    def fetch_quotes(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame:
        quotes = self._frames(day, QUOTES)
        if quotes.empty:
            quotes = close_snapshots(self._frames(day, KLINES), self.calendar)
        if symbols is not None:
            quotes = quotes[quotes["symbol"].isin(set(symbols))].reset_index(drop=True)
        return quotes

    def fetch_daily_bars(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame:
        bars = self._frames(day, KLINES)
        if bars.empty:
            quotes = self._frames(day, QUOTES)
            bars = daily_klines(quotes) if len(quotes) else KLINES_DAILY.empty()
        if symbols is not None:
            bars = bars[bars["symbol"].isin(set(symbols))].reset_index(drop=True)
        return bars
