"""Read platform data from Python: klines, bars, latest quotes, backtest runs; record trades.

    >>> from quant_platform.client import Client
    >>> with Client() as qp:                              # stores from QP_DEPLOYMENT / QP_* variables
    ...     k = qp.klines(["600000.SH"], "2024-09-02", "2024-10-31")
    ...     q = qp.latest_quotes(["600000.SH", "000001.SZ"])   # hot tier first, cold fallback
    ...     runs = qp.backtest_runs(strategy="sma_cross", limit=5)
    ...     qp.record_trades(fills)                     # idempotent on (account, trade_id)
    ...     stats = qp.trade_stats(["acc1", "acc2"], "2024-01-01", "2024-12-31", by="symbol")

Works the same in both deployments. Symbols and dates are validated (a bad one raises ValueError)
and every query is parameterised. In the embedded deployment an open Client holds the ClickHouse
data path (one process at a time), so use it as a context manager or call `close()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import pandas as pd

from quant_platform.core.calendar import to_date
from quant_platform.core.schema import BAR_SCHEMAS, COLD_TABLES, KLINES_DAILY, RAW_QUOTES
from quant_platform.settings import StoreSettings
from quant_platform.storage.cold import ColdStore

_SYMBOL = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._\-/]{0,31}$")
_SYMBOLS = re.compile(r"(?:[0-9A-Za-z][0-9A-Za-z._\-/]{0,31}\n)*[0-9A-Za-z][0-9A-Za-z._\-/]{0,31}")
MAX_SYMBOLS = 10_000


def validate_symbols(symbols: str | Iterable[str]) -> list[str]:
    """A de-duplicated list of well-formed symbols ('600000.SH', 'BTC-USDT'); ValueError otherwise."""
    if isinstance(symbols, str):
        symbols = [symbols]
    try:
        out = list(dict.fromkeys(symbols))  # de-duplicated in order, in linear time
    except TypeError:
        raise ValueError(f"symbols must be strings, got {symbols!r:.80}") from None
    if not _all_symbols(out):
        for s in out:
            if not isinstance(s, str) or not _SYMBOL.match(s):
                raise ValueError(
                    f"invalid symbol {s!r}: expected letters/digits with . _ - / (e.g. 600000.SH)"
                )
    if not out:
        raise ValueError("no symbols given")
    if len(out) > MAX_SYMBOLS:
        raise ValueError(f"at most {MAX_SYMBOLS} symbols per call, got {len(out)}")
    return out


def _all_symbols(symbols: list) -> bool:
    """True if every item is a well-formed symbol: one regex over the joined list, not one per symbol."""
    try:
        return _SYMBOLS.fullmatch("\n".join(symbols)) is not None
    except TypeError:  # a non-string item: the caller names it
        return False


def validate_range(start, end):
    s, e = to_date(start), to_date(end)
    if e < s:
        raise ValueError(f"end {e} is before start {s}")
    return s, e


def _fields(schema, fields: Sequence[str] | None, keys: Sequence[str]) -> list[str]:
    if fields is None:
        return schema.names
    unknown = [f for f in fields if f not in schema.names]
    if unknown:
        raise ValueError(f"{schema.name} has no field(s) {unknown}; fields: {schema.names}")
    return list(keys) + [f for f in fields if f not in keys]


class Client:
    """Access to the platform's stores (cold: ClickHouse, warm: SQL, hot: cache): reads everywhere,
    writes of trade records and positions (`record_trades`)."""

    def __init__(
        self,
        clickhouse_dsn: str | None = None,
        warehouse_url: str | None = None,
        redis_url: str | None = None,
    ) -> None:
        env = StoreSettings.from_env()
        self.clickhouse_dsn = clickhouse_dsn or env.clickhouse_dsn
        self.warehouse_url = warehouse_url or env.warehouse_url
        self.redis_url = redis_url or env.redis_url
        self._cold: ColdStore | None = None
        self._warm = None
        self._hot = None
        self._trading = None

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the stores (and with them the embedded ClickHouse data path)."""
        for store in (self._cold, self._warm, self._hot):
            if store is not None:
                store.close()
        self._cold = self._warm = self._hot = self._trading = None

    @property
    def cold(self) -> ColdStore:
        if self._cold is None:
            self._cold = ColdStore(self.clickhouse_dsn)
            self._cold.connect()
            self._cold.ensure_schema()
        return self._cold

    @property
    def warm(self):
        if self._warm is None:
            from quant_platform.storage.warm import WarmStore

            self._warm = WarmStore(self.warehouse_url)
            self._warm.migrate()
        return self._warm

    @property
    def hot(self):
        if self._hot is None:
            from quant_platform.settings import settings
            from quant_platform.storage.hot import ResilientHotStore, TTLPolicy, hot_store_from_url

            self._hot = ResilientHotStore(
                hot_store_from_url(self.redis_url, ttl=TTLPolicy(settings().calendar)),
                self._cold_latest_quotes,
            )
        return self._hot

    # -- market data --------------------------------------------------------------------------
    def klines(self, symbols, start, end, fields: Sequence[str] | None = None) -> pd.DataFrame:
        """Daily klines of `symbols` for trading days in [start, end], sorted by symbol and day."""
        symbols = validate_symbols(symbols)
        s, e = validate_range(start, end)
        cols = _fields(KLINES_DAILY, fields, ("symbol", "trade_date"))
        return self.cold.read_table("klines_daily", s, e, symbols=symbols, columns=cols)

    def bars(
        self, symbols, start, end, freq: str = "1m", fields: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Intraday bars ('1m', '5m', '15m') of `symbols` for trading days in [start, end]."""
        if freq not in BAR_SCHEMAS:
            raise ValueError(f"freq must be one of {list(BAR_SCHEMAS)}, got {freq!r}")
        symbols = validate_symbols(symbols)
        s, e = validate_range(start, end)
        schema = BAR_SCHEMAS[freq]
        cols = _fields(schema, fields, ("symbol", "trade_date", "ts"))
        return self.cold.read_table(schema.name, s, e, symbols=symbols, columns=cols)

    def latest_quotes(self, symbols) -> pd.DataFrame:
        """The newest snapshot per symbol: from the hot tier, or the cold tier for what it lacks."""
        symbols = validate_symbols(symbols)
        hot = self.hot.get_latest_quotes(symbols)
        if len(hot) == len(symbols) and hot["symbol"].tolist() == symbols:
            return hot  # all cached (the hot stores answer in request order)
        cached = set(hot["symbol"]) if len(hot) else set()
        missing = [s for s in symbols if s not in cached]
        cold = self._cold_latest_quotes(missing)
        frames = [f for f in (hot, cold) if len(f)]
        if not frames:
            return RAW_QUOTES.empty()
        out = pd.concat(frames, ignore_index=True)
        order = {s: i for i, s in enumerate(symbols)}
        return out.sort_values("symbol", key=lambda c: c.map(order)).reset_index(drop=True)

    def _cold_latest_quotes(self, symbols: list[str]) -> pd.DataFrame:
        return self.cold.latest_quotes(symbols)  # scans the last month of data only

    # -- research -----------------------------------------------------------------------------
    def backtest_runs(self, strategy: str | None = None, status: str | None = None, limit: int = 100):
        """Recorded backtest runs, newest first: one row per run with its stats flattened."""
        if not 1 <= int(limit) <= 10_000:
            raise ValueError("limit must be between 1 and 10000")
        runs = self.warm.list_runs(strategy=strategy, status=status, limit=int(limit))
        rows = []
        for r in runs:
            row = {
                "run_id": r.id,
                "strategy": r.strategy,
                "status": str(r.status),
                "params": r.params,
                "data_version": r.data_version,
                "result_hash": r.result_hash,
                "error": r.error,
                "created_at": r.created_at,
                "finished_at": r.finished_at,
            }
            row.update({k: v for k, v in (r.stats or {}).items() if not isinstance(v, list | dict)})
            rows.append(row)
        return pd.DataFrame(rows)

    def equity(self, run_id: str) -> pd.DataFrame:
        """Equity and drawdown of a run per symbol ('*' = the whole portfolio)."""
        return self.cold.read_run("backtest_equity", str(run_id))

    def backtest_trades(self, run_id: str) -> pd.DataFrame:
        """Round-trip trades of a backtest run."""
        return self.cold.read_run("backtest_trades", str(run_id))

    # -- accounts and trade records ----------------------------------------------------------
    @property
    def trading(self):
        """The `TradingService` over this client's stores (dual-writes files with QP_DUAL_WRITE=files)."""
        if self._trading is None:
            from quant_platform.settings import settings
            from quant_platform.trading.files import FileStore
            from quant_platform.trading.service import TradingService

            current = settings()
            files = FileStore(current.files_dir) if current.dual_write == "files" else None
            self._trading = TradingService(
                self.cold, self.warm, self.hot, calendar=current.calendar, files=files
            )
        return self._trading

    def record_trades(self, df: pd.DataFrame):
        """Store trade records (columns in `trading.records`) and move their hot-tier positions.

        Idempotent on (account, trade_id): a replayed batch stores nothing twice. Returns a
        `RecordResult` (received, recorded, duplicates, positions opened / closed).
        """
        return self.trading.record_trades(df)

    def trades(self, account: str, start, end, symbols=None) -> pd.DataFrame:
        """An account's trades with trade_date in [start, end] (optionally of `symbols`), by time."""
        return self.trading.trades(
            account, start, end, None if symbols is None else validate_symbols(symbols)
        )

    def trade_stats(self, accounts, start, end, by: str = "account") -> pd.DataFrame:
        """Trades, volume, turnover, commissions and realised P&L per account | symbol | strategy | day."""
        return self.trading.trade_stats(accounts, start, end, by)

    def account_summary(self, accounts=None) -> pd.DataFrame:
        """Per account: capital, allocations, status, all-time trade totals and open positions."""
        return self.trading.account_summary(accounts)

    def positions(self, account: str) -> dict:
        """The account's open positions in the hot tier: symbol -> PositionState."""
        return self.hot.get_positions(account)

    def tables(self) -> dict[str, int]:
        """Rows per cold-tier table."""
        counts = self.cold.row_counts()
        return {name: counts.get(name, 0) for name in COLD_TABLES}
