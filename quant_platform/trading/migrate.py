"""Migration between the old file store (`files.FileStore`) and the tiers, and back.

- `import_files`: every account with a file gets a warm-tier account (created with zero capital if
  missing), its CSV trades are recorded (idempotent, so an import can be repeated or resumed) and
  its JSON positions become exactly its hot-tier positions;
- `import_klines`: every symbol's CSV klines go to the cold tier's `klines_daily`, the days the tier
  already has for the symbol skipped (repeatable);
- `verify`: per account and table (trades, positions), and per symbol for klines, rows and a
  checksum of canonical lines on both sides; any difference is a failed row;
- `export_files`: the tiers back to the same formats (a trade file per account with trades, a
  positions file per account); `export_klines` the klines of the file store's symbols (its
  universe), with every day the cold tier has for them.

Import -> export reproduces the files byte for byte, modulo the order of trade lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from quant_platform.core.schema import KLINES_DAILY
from quant_platform.storage.warm import NotFound
from quant_platform.trading.files import FileStore, checksum, kline_lines, position_lines, trade_lines
from quant_platform.trading.service import TradingService


@dataclass(frozen=True)
class Check:
    table: str
    account: str
    file_rows: int
    store_rows: int
    file_checksum: str
    store_checksum: str

    @property
    def ok(self) -> bool:
        return self.file_rows == self.store_rows and self.file_checksum == self.store_checksum


def _ensure_account(trading: TradingService, account: str) -> None:
    try:
        trading.warm.get_account(account)
    except NotFound:
        trading.warm.create_account(account, meta={"imported_from": "files"}, exist_ok=True)


def import_files(files: FileStore, trading: TradingService, accounts: Sequence[str] | None = None) -> dict:
    """Import the file store; returns {account: {"trades": new, "duplicates": n, "positions": n}}."""
    done = {}
    for account in accounts or files.accounts():
        _ensure_account(trading, account)
        df = files.read_trades(account)
        result = trading.record_trades(df, update_positions=False, allow_inactive=True) if len(df) else None
        positions = files.read_positions(account)
        hot = trading.hot
        for symbol in set(hot.get_positions(account)) - set(positions):
            hot.close_position(account, symbol)
        for symbol, p in positions.items():
            hot.open_position(account, symbol, p.entry_price, held_days=p.held_days)
        hot.update_position_prices(account, {s: p.max_price for s, p in positions.items()})
        hot.update_position_prices(account, {s: p.min_price for s, p in positions.items()})
        done[account] = {
            "trades": result.recorded if result else 0,
            "duplicates": result.duplicates if result else 0,
            "positions": len(positions),
        }
    return done


def export_files(files: FileStore, trading: TradingService, accounts: Sequence[str] | None = None) -> dict:
    """Write the tiers' trades and positions to the file store; returns {account: (trades, positions)}."""
    names = list(accounts or [a.name for a in trading.warm.list_accounts()])
    done = {}
    for account in names:
        trades = trading.cold.read_trades([account])
        if len(trades):
            files.write_trades(account, trades)
        positions = trading.hot.get_positions(account)
        files.write_positions(account, positions)
        done[account] = (len(trades), len(positions))
    return done


def verify(files: FileStore, trading: TradingService, accounts: Sequence[str] | None = None) -> list[Check]:
    """Rows and checksums of trades and positions per account, file store vs tiers (klines: see
    `verify_klines`)."""
    names = sorted(set(accounts or files.accounts()))
    checks = []
    for account in names:
        f_lines = trade_lines(files.read_trades(account)) if files.trades_path(account).exists() else []
        s_lines = trade_lines(trading.cold.read_trades([account]))
        checks.append(
            Check("trades", account, len(f_lines), len(s_lines), checksum(f_lines), checksum(s_lines))
        )
        f_pos = position_lines(files.read_positions(account))
        s_pos = position_lines(trading.hot.get_positions(account))
        checks.append(Check("positions", account, len(f_pos), len(s_pos), checksum(f_pos), checksum(s_pos)))
    return checks


def import_klines(files: FileStore, cold, symbols: Sequence[str] | None = None) -> dict:
    """Import the file store's klines; returns {symbol: {"klines": new, "duplicates": n}}."""
    done = {}
    for symbol in symbols or files.kline_symbols():
        df = files.read_klines(symbol)
        if df.empty:
            done[symbol] = {"klines": 0, "duplicates": 0}
            continue
        days = pd.DatetimeIndex(df["trade_date"])
        stored = cold.read_table(
            KLINES_DAILY.name, days.min().date(), days.max().date(), [symbol], ["symbol", "trade_date"]
        )
        new = df[~days.isin(pd.DatetimeIndex(stored["trade_date"]))]
        cold.append(KLINES_DAILY, new)
        done[symbol] = {"klines": len(new), "duplicates": len(df) - len(new)}
    return done


def verify_klines(files: FileStore, cold, symbols: Sequence[str] | None = None) -> list[Check]:
    """Rows and checksums of each file-store symbol's klines, file vs cold tier (every stored day)."""
    checks = []
    for symbol in sorted(set(symbols or files.kline_symbols())):
        f_lines = kline_lines(files.read_klines(symbol))
        s_lines = kline_lines(cold.read_table(KLINES_DAILY.name, symbols=[symbol]))
        checks.append(
            Check("klines", symbol, len(f_lines), len(s_lines), checksum(f_lines), checksum(s_lines))
        )
    return checks


def export_klines(files: FileStore, cold, symbols: Sequence[str] | None = None) -> dict:
    """Write the cold tier's klines of the file store's symbols back to it; returns {symbol: rows}."""
    done = {}
    for symbol in symbols or files.kline_symbols():
        df = cold.read_table(KLINES_DAILY.name, symbols=[symbol])
        files.write_klines(symbol, df)
        done[symbol] = len(df)
    return done
