"""The old file store of the trading program, read and written in its own formats.

Layout under one folder (`QP_FILES_DIR`, default `$QP_HOME/files`):

    positions/<account>.json   {"entry_prices": {sym: p}, "held_days": {sym: n},
                                "max_prices": {sym: p}, "min_prices": {sym: p}}
    trades/<account>.csv       trade_id,account,strategy,symbol,side,quantity,price,commission,
                               realized_pnl,ts   (ts: ISO 8601 UTC with milliseconds, `...Z`)
    klines/<symbol>.csv        trade_date,open,high,low,close,prev_close,volume,amount
                               (daily, unadjusted; prev_close empty when unknown)

Formatting is canonical (sorted JSON keys, indent 2, floats as Python's shortest round-trip repr,
one line per trade or kline) so that an export of what an import read is the same bytes, modulo the order of
trade lines. A positions file without `entry_prices` (older files) imports with the entry at the
minimum price; the export then writes it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from quant_platform.core.markets import limit_prices, price_limit
from quant_platform.core.schema import KLINES_DAILY
from quant_platform.storage.hot import PositionState
from quant_platform.trading.records import INPUT_COLUMNS, OPTIONAL, REQUIRED

_ACCOUNT_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
POSITION_KEYS = ("entry_prices", "held_days", "max_prices", "min_prices")
KLINE_COLUMNS = ("trade_date", "open", "high", "low", "close", "prev_close", "volume", "amount")


def _file_name(account: str) -> str:
    if not _ACCOUNT_FILE.match(account) or account in (".", ".."):
        raise ValueError(f"account {account!r} cannot name a file (letters, digits, . _ - only)")
    return account


def _num(value: float) -> str:
    v = float(value)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _ts(value: pd.Timestamp) -> str:
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def trade_lines(df: pd.DataFrame) -> list[str]:
    """One canonical CSV line per trade (no header, no newline) of a TRADES or input-like frame."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for r in df[list(INPUT_COLUMNS)].itertuples(index=False):
        writer.writerow(
            [
                r.trade_id,
                r.account,
                r.strategy,
                r.symbol,
                r.side,
                _num(r.quantity),
                _num(r.price),
                _num(r.commission),
                _num(r.realized_pnl),
                _ts(r.ts),
            ]
        )
    return out.getvalue().splitlines()


def position_lines(positions: Mapping[str, PositionState]) -> list[str]:
    """Canonical `symbol,held,entry,max,min` lines of an account's positions, sorted (for checksums)."""
    return sorted(
        f"{s},{p.held_days},{_num(p.entry_price)},{_num(p.max_price)},{_num(p.min_price)}"
        for s, p in positions.items()
    )


def kline_lines(df: pd.DataFrame) -> list[str]:
    """One canonical CSV line per kline (no header) of a KLINES_DAILY-like frame of one symbol."""
    out = []
    for r in df[list(KLINE_COLUMNS)].itertuples(index=False):
        prev = "" if pd.isna(r.prev_close) else _num(r.prev_close)
        prices = ",".join(_num(v) for v in (r.open, r.high, r.low, r.close))
        day = pd.Timestamp(r.trade_date).strftime("%Y-%m-%d")
        out.append(f"{day},{prices},{prev},{int(r.volume)},{_num(r.amount)}")
    return out


def checksum(lines: Iterable[str]) -> str:
    """sha256 of the sorted lines: equal for the same records in any order."""
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


class FileStore:
    """Positions (JSON) and trades (CSV) per account, and daily klines (CSV) per symbol, under `root`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def positions_path(self, account: str) -> Path:
        return self.root / "positions" / f"{_file_name(account)}.json"

    def trades_path(self, account: str) -> Path:
        return self.root / "trades" / f"{_file_name(account)}.csv"

    def accounts(self) -> list[str]:
        """Accounts that have a positions or trades file."""
        names = {p.stem for p in (self.root / "positions").glob("*.json")}
        names |= {p.stem for p in (self.root / "trades").glob("*.csv")}
        return sorted(names)

    # -- positions ------------------------------------------------------------------------
    def read_positions(self, account: str) -> dict[str, PositionState]:
        path = self.positions_path(account)
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            held = {str(s): int(n) for s, n in data.get("held_days", {}).items()}
            highs = {str(s): float(p) for s, p in data.get("max_prices", {}).items()}
            lows = {str(s): float(p) for s, p in data.get("min_prices", {}).items()}
            entries = {str(s): float(p) for s, p in data.get("entry_prices", {}).items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: not a positions file ({exc})") from None
        symbols = set(held) | set(highs) | set(lows) | set(entries)
        out = {}
        for s in sorted(symbols):
            low = lows.get(s, entries.get(s, highs.get(s, 0.0)))
            high = highs.get(s, entries.get(s, low))
            out[s] = PositionState(account, s, held.get(s, 0), entries.get(s, low), high, low)
        return out

    def write_positions(self, account: str, positions: Mapping[str, PositionState]) -> None:
        data = {
            "entry_prices": {s: p.entry_price for s, p in positions.items()},
            "held_days": {s: p.held_days for s, p in positions.items()},
            "max_prices": {s: p.max_price for s, p in positions.items()},
            "min_prices": {s: p.min_price for s, p in positions.items()},
        }
        _write_atomic(self.positions_path(account), json.dumps(data, indent=2, sort_keys=True) + "\n")

    # -- trades -----------------------------------------------------------------------------
    def read_trades(self, account: str) -> pd.DataFrame:
        """An account's trades as an input frame for `record_trades` (ts parsed, UTC)."""
        path = self.trades_path(account)
        if not path.exists():
            return pd.DataFrame(columns=list(INPUT_COLUMNS))
        return self.read_trades_file(path)

    @staticmethod
    def read_trades_file(path: str | Path) -> pd.DataFrame:
        """A trades CSV in the file store's format (any accounts) as an input frame."""
        df = pd.read_csv(
            path,
            dtype={"trade_id": str, "account": str, "strategy": str, "symbol": str, "side": str},
            keep_default_na=False,
        )
        missing = [c for c in REQUIRED if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; required {list(REQUIRED)}")
        for col, default in OPTIONAL.items():
            if col not in df.columns:
                df[col] = default
        df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
        return df

    def write_trades(self, account: str, df: pd.DataFrame) -> None:
        """Make `df` (ordered by ts, trade_id) the account's whole trade file."""
        df = df.sort_values(["ts", "trade_id"]) if len(df) else df
        header = ",".join(INPUT_COLUMNS)
        _write_atomic(self.trades_path(account), "\n".join([header, *trade_lines(df)]) + "\n")

    def append_trades(self, df: pd.DataFrame) -> int:
        """Append trades to their accounts' files (dual write); returns the lines written."""
        for account, part in df.groupby("account", sort=True):
            path = self.trades_path(str(account))
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists()
            lines = trade_lines(part.sort_values(["ts", "trade_id"]))
            with path.open("a", encoding="utf-8", newline="") as fh:
                if new:
                    fh.write(",".join(INPUT_COLUMNS) + "\n")
                fh.write("\n".join(lines) + "\n")
        return len(df)

    # -- klines -----------------------------------------------------------------------------
    def klines_path(self, symbol: str) -> Path:
        return self.root / "klines" / f"{_file_name(symbol)}.csv"

    def kline_symbols(self) -> list[str]:
        """Symbols that have a klines file."""
        return sorted(p.stem for p in (self.root / "klines").glob("*.csv"))

    def read_klines(self, symbol: str) -> pd.DataFrame:
        """A symbol's klines as a KLINES_DAILY frame: change rate and price limits derived from
        prev_close (NaN where it is empty), as the platform's own klines carry them."""
        path = self.klines_path(symbol)
        if not path.exists():
            return KLINES_DAILY.empty()
        df = pd.read_csv(
            path, dtype={"trade_date": str}, keep_default_na=False, na_values={"prev_close": [""]}
        )
        missing = [c for c in KLINE_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; required {list(KLINE_COLUMNS)}")
        try:
            df["trade_date"] = pd.to_datetime(df["trade_date"], format="%Y-%m-%d")
            prev = pd.to_numeric(df["prev_close"]).to_numpy(dtype=float)
            close = pd.to_numeric(df["close"]).to_numpy(dtype=float)
        except ValueError as exc:
            raise ValueError(f"{path}: not a klines file ({exc})") from None
        up, down = limit_prices(prev, np.full(len(df), price_limit(symbol)))
        with np.errstate(divide="ignore", invalid="ignore"):
            df["change_rate"] = close / prev - 1.0
        known = np.isfinite(prev)
        df["limit_up"], df["limit_down"] = np.where(known, up, np.nan), np.where(known, down, np.nan)
        df["symbol"] = symbol
        return KLINES_DAILY.conform(df.sort_values("trade_date", kind="stable"))

    def write_klines(self, symbol: str, df: pd.DataFrame) -> None:
        """Make `df` (a KLINES_DAILY-like frame of one symbol) the symbol's whole klines file."""
        df = df.sort_values("trade_date") if len(df) else df
        lines = [",".join(KLINE_COLUMNS), *kline_lines(df)]
        _write_atomic(self.klines_path(symbol), "\n".join(lines) + "\n")
