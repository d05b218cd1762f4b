"""`TradingService`: trade records in the cold tier and positions in the hot tier, in one call.

`record_trades(df)` is idempotent on (account, trade_id): the batch's ids that the account already
has are dropped before the insert (a replayed batch inserts nothing and moves no position), and
the `trades` ReplacingMergeTree collapses what two concurrent writers might still race in. Then the
new trades move the hot-tier positions of their (account, symbol):

- a buy with no open position opens one at its price (held days 0, max = min = price);
- every later trade price raises the max / lowers the min since entry (atomic updates);
- when the units held are no longer positive, the position is closed. Positions are long-only, as
  on A-share accounts. The units held live in the hot position (`PositionState.quantity`), so a
  batch reads no history; only when the hot tier cannot say (an outage, a position imported
  without a quantity, a sell without a position) does the account's cold-tier history decide.

Held days advance with `roll_day` (idempotent per day; the `position_day_roll` job runs it after
the close). With `files` (`QP_DUAL_WRITE=files`), every
trade and position write also goes to the old file store, so going back is a configuration change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quant_platform.core.calendar import DateLike, get_calendar, to_date
from quant_platform.core.limits import (
    MAX_ACCOUNTS,
    MAX_TRADE_RANGE_DAYS,
    check_calendar_range,
    check_count,
)
from quant_platform.storage.hot import PositionState
from quant_platform.storage.warm import AccountNotActive, NotFound
from quant_platform.trading.files import FileStore
from quant_platform.trading.records import normalize_trades

STAT_KEYS = ("account", "symbol", "strategy", "day")
_EPS = 1e-9


@dataclass(frozen=True)
class RecordResult:
    """What `record_trades` did: rows received, new trades stored, replays skipped, positions moved."""

    received: int
    recorded: int
    duplicates: int
    positions_opened: int
    positions_closed: int


def account_list(accounts: str | Sequence[str]) -> list[str]:
    names = [accounts] if isinstance(accounts, str) else list(dict.fromkeys(accounts))
    if not names:
        raise ValueError("no accounts given")
    check_count("accounts", len(names), MAX_ACCOUNTS)
    for a in names:
        if not isinstance(a, str) or not a or a != a.strip() or len(a) > 128:
            raise ValueError(f"invalid account name {a!r}")
    return names


class TradingService:
    """Trade records and positions over the three tiers; `Client` exposes it."""

    def __init__(self, cold, warm, hot, *, calendar: str, files: FileStore | None = None) -> None:
        self.cold, self.warm, self.hot = cold, warm, hot
        self.calendar = calendar
        self.files = files

    # -- writes -----------------------------------------------------------------------------
    def record_trades(
        self, df: pd.DataFrame, *, update_positions: bool = True, allow_inactive: bool = False
    ) -> RecordResult:
        """Store the trades of `df` not stored yet and move their positions (see the module doc)."""
        rows = normalize_trades(df, self.calendar)
        received = len(df)
        known = {a.name: a for a in self.warm.list_accounts()}
        for account in rows["account"].unique():
            acc = known.get(account)
            if acc is None:
                raise NotFound(f"account {account!r} does not exist (create it first: `accounts create`)")
            if acc.status != "active" and not allow_inactive:
                raise AccountNotActive(f"account {account!r} is {acc.status}: it takes no new trades")
        new = rows
        if len(rows):
            days = pd.DatetimeIndex(rows["trade_date"])
            stored = self.cold.stored_trade_ids(
                sorted(rows["account"].unique()),
                rows["trade_id"].unique().tolist(),
                days.min().date(),
                days.max().date(),
            )
            if stored:
                keys = pd.MultiIndex.from_arrays([rows["account"], rows["trade_id"]])
                new = rows[~keys.isin(list(stored))].reset_index(drop=True)
        self.cold.insert_trades(new)
        if self.files is not None and len(new):
            self.files.append_trades(new)
        opened = closed = 0
        if update_positions and len(new):
            for account, part in new.groupby("account", sort=True):
                o, c = self._move_positions(str(account), part)
                opened, closed = opened + o, closed + c
        return RecordResult(received, len(new), len(rows) - len(new), opened, closed)

    def _held_before(
        self, account: str, signed: dict[str, np.ndarray], current: dict[str, PositionState]
    ) -> dict[str, float]:
        """Units of each symbol held before the new trades: the hot position's quantity, or flat
        for a symbol without a position whose first new trade is a buy. The (already inserted)
        cold history decides the rest: a hot-tier outage, a position whose quantity is unknown
        (imported from files), or a sell without a position (the hot tier lost it)."""
        trusted = getattr(self.hot, "available", True)  # ResilientHotStore: False during an outage
        held: dict[str, float] = {}
        unknown: list[str] = []
        for symbol, qty in signed.items():
            pos = current.get(symbol)
            if trusted and pos is not None and pos.quantity is not None:
                held[symbol] = pos.quantity
            elif trusted and pos is None and qty[0] > 0:
                held[symbol] = 0.0
            else:
                unknown.append(symbol)
        if unknown:
            net_after = self.cold.net_quantities([account], unknown)
            for symbol in unknown:
                held[symbol] = net_after.get((account, symbol), 0.0) - float(signed[symbol].sum())
        return held

    def _move_positions(self, account: str, trades: pd.DataFrame) -> tuple[int, int]:
        """Walk each symbol's new trades in time order from the units held before them: a buy from
        flat (re)opens the position at its price, every price moves the max / min since entry, and
        the position is closed when the walk ends flat; the units held after it are kept in the
        position for the next batch."""
        trades = trades.sort_values(["ts", "trade_id"])
        parts = dict(tuple(trades.groupby("symbol", sort=True)))
        signed = {
            str(sym): part["quantity"].where(part["side"] == "buy", -part["quantity"]).to_numpy(dtype=float)
            for sym, part in parts.items()
        }
        current = self.hot.get_positions(account)
        before = self._held_before(account, signed, current)
        opens: dict[str, float] = {}
        highs: dict[str, float] = {}
        lows: dict[str, float] = {}
        after: dict[str, float] = {}
        flat: list[str] = []
        for symbol, part in parts.items():
            symbol = str(symbol)
            held = before[symbol]
            is_open = symbol in current
            hi = lo = None
            for price, qty in zip(part["price"].to_numpy(), signed[symbol], strict=True):
                if held <= _EPS and qty > 0:  # a buy from flat: a new entry
                    opens[symbol], hi, lo, is_open = float(price), float(price), float(price), True
                elif is_open or held > _EPS:
                    if not is_open:  # the hot tier lost it: track from here
                        opens[symbol], is_open = float(price), True
                    hi = float(price) if hi is None else max(hi, float(price))
                    lo = float(price) if lo is None else min(lo, float(price))
                held += float(qty)
            if held <= _EPS:
                flat.append(symbol)
                continue
            after[symbol] = held
            if hi is not None:
                highs[symbol], lows[symbol] = hi, lo
        for symbol, price in opens.items():
            if symbol not in flat:
                self.hot.open_position(account, symbol, price)
        self.hot.update_position_prices(account, highs)
        self.hot.update_position_prices(account, lows)
        self.hot.set_position_quantities(account, after)
        closed = sum(1 for symbol in flat if self.hot.close_position(account, symbol))
        self._dual_write_positions(account)
        return sum(1 for s in opens if s not in flat), closed

    def roll_day(self, accounts: Sequence[str] | None = None, day: DateLike | None = None) -> dict[str, int]:
        """Add a held day to every open position of the accounts (default: the active ones).

        Idempotent per day: `day` (default: today on the exchange's clock) is remembered per
        account, and a roll for that day or an earlier one does nothing, so a retried job or a
        repeated command never counts a day twice.
        """
        names = account_list(accounts) if accounts else [a.name for a in self.warm.list_accounts("active")]
        if day is None:
            day = pd.Timestamp.now(tz=str(get_calendar(self.calendar).tz)).date()
        key = to_date(day).isoformat()
        rolled = {a: self.hot.roll_day(a, key) for a in names}
        for a in names:
            self._dual_write_positions(a)
        return rolled

    def _dual_write_positions(self, account: str) -> None:
        if self.files is not None:
            self.files.write_positions(account, self.hot.get_positions(account))

    # -- reads ----------------------------------------------------------------------------------
    def trades(
        self, account: str, start: DateLike, end: DateLike, symbols: Sequence[str] | None = None
    ) -> pd.DataFrame:
        (name,) = account_list(account)
        s, e = check_calendar_range(start, end, MAX_TRADE_RANGE_DAYS)
        return self.cold.read_trades([name], s, e, symbols)

    def trade_stats(
        self, accounts: str | Sequence[str], start: DateLike, end: DateLike, by: str = "account"
    ) -> pd.DataFrame:
        if by not in STAT_KEYS:
            raise ValueError(f"by must be one of {list(STAT_KEYS)}, got {by!r}")
        s, e = check_calendar_range(start, end, MAX_TRADE_RANGE_DAYS)
        return self.cold.trade_stats(account_list(accounts), s, e, by)

    def account_summary(self, accounts: str | Sequence[str] | None = None) -> pd.DataFrame:
        """One row per account: warm-tier capital and status, all-time trade totals, open positions."""
        names = account_list(accounts) if accounts else [a.name for a in self.warm.list_accounts()]
        records = [self.warm.get_account(n) for n in names]
        totals = self.cold.trade_totals(names).set_index("account") if names else pd.DataFrame()
        rows = []
        for acc in records:
            t = totals.loc[acc.name] if acc.name in totals.index else None
            rows.append(
                {
                    "account": acc.name,
                    "broker": acc.broker,
                    "status": acc.status,
                    "initial_capital": acc.initial_cash,
                    "current_capital": acc.current_capital,
                    "allocated_capital": acc.allocated_capital,
                    "free_capital": acc.free_capital,
                    "trades": int(t["trades"]) if t is not None else 0,
                    "turnover": float(t["turnover"]) if t is not None else 0.0,
                    "commissions": float(t["commissions"]) if t is not None else 0.0,
                    "realized_pnl": float(t["realized_pnl"]) if t is not None else 0.0,
                    "first_trade": t["first_trade"] if t is not None else pd.NaT,
                    "last_trade": t["last_trade"] if t is not None else pd.NaT,
                    "open_positions": len(self.hot.get_positions(acc.name)),
                }
            )
        return pd.DataFrame(rows)
