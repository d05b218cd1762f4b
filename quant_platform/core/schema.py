"""Column contracts shared by sources, rollups, stores and checks.

Every table the platform writes has one `TableSchema` here, so the ClickHouse DDL, the pandas dtypes
that sources must produce and the data-quality rules cannot drift apart. Timestamps are stored as UTC
instants (`DateTime64(3, 'UTC')`); `trade_date` is the exchange-local trading day and is the
partition key of every daily table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

UTC = "UTC"


@dataclass(frozen=True)
class Column:
    name: str
    ch_type: str  # ClickHouse type
    dtype: str  # pandas dtype a conforming DataFrame carries
    doc: str = ""


@dataclass(frozen=True)
class TableSchema:
    """A table's columns, sort key and partition column (always `trade_date` for daily data)."""

    name: str
    columns: tuple[Column, ...]
    order_by: tuple[str, ...]
    partition_by: str | None = "trade_date"
    doc: str = ""
    engine: str = "MergeTree"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in self.columns}

    def conform(self, df: pd.DataFrame) -> pd.DataFrame:
        """Return `df` with exactly this schema's columns, in order, cast to their dtypes.

        Raises ValueError naming the missing columns, so schema drift fails loudly instead of
        writing NaNs.
        """
        missing = [n for n in self.names if n not in df.columns]
        if missing:
            raise ValueError(f"{self.name}: missing columns {missing}; got {list(df.columns)}")
        out = df.loc[:, self.names]
        casts = {c.name: c.dtype for c in self.columns if not _has_dtype(out[c.name], c.dtype)}
        if casts:
            out = out.astype(casts)
        return out.reset_index(drop=True)

    def matches(self, df: pd.DataFrame) -> bool:
        """Whether `df` has exactly this schema's columns, in order, with their dtypes: a frame a read
        produced that `conform` would only copy."""
        if list(df.columns) != self.names:
            return False
        return all(_dtype_is(have, c.dtype) for have, c in zip(df.dtypes, self.columns, strict=True))

    def empty(self) -> pd.DataFrame:
        return pd.DataFrame({c.name: pd.Series(dtype=c.dtype) for c in self.columns})


def _has_dtype(series: pd.Series, dtype: str) -> bool:
    return _dtype_is(series.dtype, dtype)


def _dtype_is(have, dtype: str) -> bool:
    if dtype == STR:  # any string flavour (object, "str", "string") is fine for text columns
        return pd.api.types.is_string_dtype(have) or str(have) == "object"
    return str(have) == dtype


TS = "datetime64[ms, UTC]"
DATE = "datetime64[s]"
STR = "str"

_SYMBOL = Column("symbol", "LowCardinality(String)", STR, "Exchange-suffixed code, e.g. 600000.SH")
_TRADE_DATE = Column("trade_date", "Date", DATE, "Exchange-local trading day (partition key)")

RAW_QUOTES = TableSchema(
    name="raw_quotes",
    doc="Level-1 snapshots: the state of one symbol at instant ts; volume and amount are cumulative.",
    columns=(
        _SYMBOL,
        _TRADE_DATE,
        Column("ts", "DateTime64(3, 'UTC')", TS, "Snapshot instant (UTC)"),
        Column("price", "Float64", "float64", "Last traded price"),
        Column("open", "Float64", "float64", "Day open so far"),
        Column("high", "Float64", "float64", "Day high so far"),
        Column("low", "Float64", "float64", "Day low so far"),
        Column("prev_close", "Float64", "float64", "Previous session close"),
        Column("volume", "Int64", "int64", "Cumulative shares traded today"),
        Column("amount", "Float64", "float64", "Cumulative turnover today (quote currency)"),
        Column("bid", "Float64", "float64", "Best bid"),
        Column("ask", "Float64", "float64", "Best ask"),
    ),
    order_by=("symbol", "ts"),
)


def _bar_schema(name: str, freq: str) -> TableSchema:
    return TableSchema(
        name=name,
        doc=f"{freq} OHLCV bars, right-closed and labelled by bar end: bar ts covers (ts - {freq}, ts].",
        columns=(
            _SYMBOL,
            _TRADE_DATE,
            Column("ts", "DateTime64(3, 'UTC')", TS, "Bar end (UTC)"),
            Column("open", "Float64", "float64"),
            Column("high", "Float64", "float64"),
            Column("low", "Float64", "float64"),
            Column("close", "Float64", "float64"),
            Column("volume", "Int64", "int64", "Shares traded inside the bar"),
            Column("amount", "Float64", "float64", "Turnover inside the bar"),
            Column(
                "change_rate",
                "Float64",
                "float64",
                "close / previous bar close - 1 (first bar: vs prev_close)",
            ),
        ),
        order_by=("symbol", "ts"),
    )


BARS_1M = _bar_schema("bars_1m", "1m")
BARS_5M = _bar_schema("bars_5m", "5m")
BARS_15M = _bar_schema("bars_15m", "15m")
BAR_SCHEMAS = {"1m": BARS_1M, "5m": BARS_5M, "15m": BARS_15M}

KLINES_DAILY = TableSchema(
    name="klines_daily",
    doc="Daily OHLCV per symbol and trading day, unadjusted.",
    columns=(
        _SYMBOL,
        _TRADE_DATE,
        Column("open", "Float64", "float64"),
        Column("high", "Float64", "float64"),
        Column("low", "Float64", "float64"),
        Column("close", "Float64", "float64"),
        Column("prev_close", "Float64", "float64"),
        Column("volume", "Int64", "int64"),
        Column("amount", "Float64", "float64"),
        Column("change_rate", "Float64", "float64", "close / prev_close - 1"),
        Column("limit_up", "Float64", "float64", "Upper price limit of the day (inf when unlimited)"),
        Column("limit_down", "Float64", "float64", "Lower price limit of the day (0 when unlimited)"),
    ),
    order_by=("symbol", "trade_date"),
    partition_by="toYear(trade_date)",  # ~5,000 rows a day: few large parts keep symbol queries fast
)

QA_METRICS = TableSchema(
    name="qa_metrics",
    doc="One row per (trading day, table, metric): the numbers behind the QA report.",
    columns=(
        _TRADE_DATE,
        Column("table_name", "LowCardinality(String)", STR),
        Column("metric", "LowCardinality(String)", STR),
        Column("value", "Float64", "float64"),
    ),
    order_by=("table_name", "metric", "trade_date"),
    partition_by="toYear(trade_date)",
)

QUARANTINE = TableSchema(
    name="quarantine",
    doc="Rows rejected by a row rule, kept with the rule and a readable reason; never silently dropped.",
    columns=(
        _TRADE_DATE,
        Column("table_name", "LowCardinality(String)", STR),
        Column("symbol", "String", STR),
        Column("ts", "Nullable(DateTime64(3, 'UTC'))", TS),
        Column("rule", "LowCardinality(String)", STR),
        Column("reason", "String", STR),
        Column("payload", "String", STR, "The offending row as JSON"),
    ),
    order_by=("table_name", "trade_date", "rule"),
    partition_by="(table_name, trade_date)",  # each table's quarantine of a day is replaced on its own
)

_RUN_ID = Column("run_id", "String", STR, "Backtest run id (the warm tier's run record)")

BACKTEST_EQUITY = TableSchema(
    name="backtest_equity",
    doc="Equity curve of a backtest run per symbol; symbol '*' is the run's whole portfolio.",
    columns=(
        _RUN_ID,
        _SYMBOL,
        Column("ts", "DateTime64(3, 'UTC')", TS),
        Column("equity", "Float64", "float64"),
        Column("drawdown", "Float64", "float64", "equity / running peak - 1"),
    ),
    order_by=("run_id", "symbol", "ts"),
    partition_by=None,
)

BACKTEST_TRADES = TableSchema(
    name="backtest_trades",
    doc="Round-trip trades of a backtest run; is_open marks a position marked to the last close.",
    columns=(
        _RUN_ID,
        _SYMBOL,
        Column("entry_time", "DateTime64(3, 'UTC')", TS),
        Column("exit_time", "DateTime64(3, 'UTC')", TS),
        Column("entry_price", "Float64", "float64"),
        Column("exit_price", "Float64", "float64"),
        Column("size", "Float64", "float64", "Units; negative for a short"),
        Column("pnl", "Float64", "float64", "After all fees"),
        Column("commission", "Float64", "float64", "Entry and exit fees incl. stamp duty"),
        Column("is_open", "Bool", "bool"),
    ),
    order_by=("run_id", "symbol", "entry_time"),
    partition_by=None,
)

# Per-symbol statistics of `backtest.run` / `backtest.grid` that are stored for every combination of
# a grid search (`grid.evaluate` re-exports them as `METRICS`); the engine's `STAT_NAMES` starts with
# them, in this order, which its kernels index by position.
GRID_METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "num_trades",
    "win_rate",
    "exposure",
    "final_equity",
    "buy_and_hold_return",
    "profit_factor",
    "commissions",
    "stamp_duty",
    "open_trades",
)

GRID_RESULTS = TableSchema(
    name="grid_search_results",
    doc="Every evaluated combination of a grid search, ranked by its objective. symbol '*' is the mean "
    "over symbols, the row the ranking uses; per-symbol rows carry their combination's rank.",
    columns=(
        Column("request_id", "String", STR, "Grid request id (warm tier grid_requests)"),
        Column("rank", "UInt32", "uint32", "1 = best combination by the objective"),
        Column("combo_id", "UInt32", "uint32", "Index of the combination in the cartesian product"),
        Column("symbol", "LowCardinality(String)", STR, "'*' = mean over symbols"),
        Column("params", "String", STR, "The combination's full parameter set as JSON"),
        Column("objective", "Float64", "float64", "Value of the request's objective"),
        *(Column(m, "Float64", "float64") for m in GRID_METRICS),
        Column("created_at", "DateTime64(3, 'UTC')", TS),
    ),
    order_by=("request_id", "rank", "symbol"),
    partition_by=None,
)

# The streaming collector's table. Separate from `raw_quotes`, which the daily graph rewrites
# partition by partition: a re-run of a day there must not wipe ticks here. Volume is a float
# (crypto quantities are fractional); the ReplacingMergeTree collapses a tick written twice.
CRYPTO_TICKS = TableSchema(
    name="crypto_ticks",
    doc="Streaming ticks (one row per feed message); volume/amount cumulative over the feed's day.",
    columns=(
        Column("symbol", "LowCardinality(String)", STR, "Pair as the feed names it, e.g. BTC-USDT"),
        Column("trade_date", "Date", DATE, "UTC day of ts (24/7 calendar)"),
        Column("ts", "DateTime64(3, 'UTC')", TS, "Exchange event time"),
        Column("seq", "UInt64", "int64", "Per-pair sequence number of the feed"),
        Column("price", "Float64", "float64"),
        Column("open", "Float64", "float64"),
        Column("high", "Float64", "float64"),
        Column("low", "Float64", "float64"),
        Column("prev_close", "Float64", "float64"),
        Column("volume", "Float64", "float64"),
        Column("amount", "Float64", "float64"),
        Column("bid", "Float64", "float64"),
        Column("ask", "Float64", "float64"),
        Column("received_at", "DateTime64(3, 'UTC')", TS, "When the collector received the message"),
    ),
    order_by=("symbol", "ts", "seq"),
    engine="ReplacingMergeTree",
)

# The symbol master: which symbols a source listed on a trading day. The row rules check every
# symbol against it (`unknown_symbol`), so the universe never comes from the rows being checked.
SYMBOL_MASTER = TableSchema(
    name="symbol_master",
    doc="Listed symbols per trading day and source: the universe the row rules check symbols against.",
    columns=(
        _TRADE_DATE,
        Column("source", "LowCardinality(String)", STR, "Who listed it: a market source's name or 'import'"),
        _SYMBOL,
        Column("name", "String", STR, "Security name; '' when the source does not say"),
        Column("board", "LowCardinality(String)", STR, "Board or market segment; '' when unknown"),
        Column("recorded_at", "DateTime64(3, 'UTC')", TS, "When this day's list was written"),
    ),
    order_by=("source", "trade_date", "symbol"),
    partition_by="toYear(trade_date)",  # a few thousand rows a day, like klines
)


# Options (`quant_platform/options/`): the day's chain, intraday snapshots at fixed slots, one row per
# contract and day, and IV/greeks with open interest filled in the next session (T+1).
_UNDERLYING = Column("underlying", "LowCardinality(String)", STR, "The option's underlying, e.g. 510050.SH")
_OPTION = Column("symbol", "LowCardinality(String)", STR, "Option code, e.g. 510050C2410M02500.SH")
_OPTION_TERMS = (
    Column("kind", "LowCardinality(String)", STR, "call or put"),
    Column("strike", "Float64", "float64"),
    Column("expiry", "Date", DATE, "Last trading day (exchange-local)"),
)

OPTION_CONTRACTS = TableSchema(
    name="option_contracts",
    doc="The listed option chain of each underlying on a trading day.",
    columns=(
        _TRADE_DATE,
        _OPTION,
        _UNDERLYING,
        *_OPTION_TERMS,
        Column("multiplier", "Float64", "float64", "Units of the underlying per contract"),
        Column("exchange", "LowCardinality(String)", STR),
        Column("currency", "LowCardinality(String)", STR),
        Column("con_id", "Int64", "int64", "The vendor's contract id (IB conId; 0 when the source has none)"),
        Column(
            "prev_open_interest",
            "Float64",
            "float64",
            "Open interest at the previous session's close, published this day (NaN: none published)",
        ),
    ),
    order_by=("underlying", "symbol"),
)

OPTION_QUOTES = TableSchema(
    name="option_quotes",
    doc="Option snapshots at fixed intraday slots; a failed snapshot is kept with its error, prices NaN.",
    columns=(
        _OPTION,
        _TRADE_DATE,
        Column("ts", "DateTime64(3, 'UTC')", TS, "The slot's instant (UTC)"),
        Column("slot", "LowCardinality(String)", STR, "Slot, exchange-local HH:MM"),
        _UNDERLYING,
        Column("underlying_price", "Float64", "float64", "The underlying's last price at the slot"),
        Column("bid", "Float64", "float64"),
        Column("ask", "Float64", "float64"),
        Column("last", "Float64", "float64"),
        Column("volume", "Float64", "float64", "Contracts traded today so far (cumulative)"),
        Column("delayed", "Bool", "bool", "The source answered with delayed data, older than the slot"),
        Column("snapshot_error", "String", STR, "Why the snapshot failed; empty when it did not"),
    ),
    order_by=("symbol", "ts"),
)

OPTION_DAILY = TableSchema(
    name="option_daily",
    doc="One row per option and trading day: the close slot, or the last good slot (rollup_fallback).",
    columns=(
        _OPTION,
        _TRADE_DATE,
        _UNDERLYING,
        *_OPTION_TERMS,
        Column("slot", "LowCardinality(String)", STR, "The slot the row was taken from"),
        Column("ts", "DateTime64(3, 'UTC')", TS),
        Column("underlying_price", "Float64", "float64"),
        Column("bid", "Float64", "float64"),
        Column("ask", "Float64", "float64"),
        Column("mid", "Float64", "float64", "(bid + ask) / 2"),
        Column("last", "Float64", "float64"),
        Column("volume", "Float64", "float64", "Contracts traded today, as of the slot"),
        Column("delayed", "Bool", "bool"),
        Column("rollup_fallback", "Bool", "bool", "The close slot was missing, failed or delayed"),
    ),
    order_by=("underlying", "symbol"),
)

OPTION_GREEKS = TableSchema(
    name="option_greeks",
    doc="Implied vol and BSM greeks from the daily mid and the underlying's price; open_interest is "
    "the day's closing open interest, filled in when the next session publishes it (T+1).",
    columns=(
        _OPTION,
        _TRADE_DATE,
        _UNDERLYING,
        *_OPTION_TERMS,
        Column("t_years", "Float64", "float64", "Time to expiry in years (ACT/365) from the row's slot"),
        Column("underlying_price", "Float64", "float64"),
        Column("mid", "Float64", "float64"),
        Column("rate", "Float64", "float64", "Continuously compounded risk-free rate"),
        Column("dividend", "Float64", "float64", "Continuous dividend yield of the underlying"),
        Column("iv", "Float64", "float64", "Implied volatility (annual)"),
        Column("delta", "Float64", "float64"),
        Column("gamma", "Float64", "float64"),
        Column("vega", "Float64", "float64", "Per 1.00 of volatility"),
        Column("theta", "Float64", "float64", "Per year of calendar time"),
        Column("rho", "Float64", "float64", "Per 1.00 of rate"),
        Column("parity_break", "Bool", "bool", "The call/put pair's mids break put-call parity"),
        Column("rollup_fallback", "Bool", "bool"),
        Column("open_interest", "Float64", "float64", "Closing open interest; NaN until the next session"),
    ),
    order_by=("underlying", "symbol"),
)

OPTION_QA = TableSchema(
    name="option_qa_metrics",
    doc="One row per (trading day, underlying, metric): the numbers behind options_qa.",
    columns=(
        _TRADE_DATE,
        _UNDERLYING,
        Column("metric", "LowCardinality(String)", STR),
        Column("value", "Float64", "float64"),
    ),
    order_by=("underlying", "metric", "trade_date"),
    partition_by="toYear(trade_date)",
)
OPTION_SCHEMAS = (OPTION_CONTRACTS, OPTION_QUOTES, OPTION_DAILY, OPTION_GREEKS, OPTION_QA)

# Live and paper trade records (fills) of the accounts in the warm tier. Partitioned by month (a year
# of an account is 12 parts), sorted so that one account's trades of a period are one range read.
# A trade is identified by (account, trade_id): `Client.record_trades` drops the ids already stored
# before inserting, and the ReplacingMergeTree collapses a duplicate two concurrent writers raced in.
TRADES = TableSchema(
    name="trades",
    doc="Trade records (fills) of live and paper accounts; one row per (account, trade_id).",
    columns=(
        Column("account", "LowCardinality(String)", STR, "Account name (warm tier)"),
        _SYMBOL,
        Column("ts", "DateTime64(3, 'UTC')", TS, "Execution time"),
        Column("trade_id", "String", STR, "Broker or strategy trade id, unique per account"),
        Column("trade_date", "Date", DATE, "Exchange-local day of ts (partition month)"),
        Column("strategy", "LowCardinality(String)", STR, "Strategy that traded ('' if none)"),
        Column("side", "LowCardinality(String)", STR, "buy | sell"),
        Column("quantity", "Float64", "float64", "Units, > 0"),
        Column("price", "Float64", "float64", "Execution price, > 0"),
        Column("commission", "Float64", "float64", "Fees incl. taxes, >= 0"),
        Column("realized_pnl", "Float64", "float64", "Realised P&L the trade booked (broker-reported)"),
        Column("recorded_at", "DateTime64(3, 'UTC')", TS, "When the platform stored it"),
    ),
    # Reads are an account's trades by time: this key gives them in order, so neither FINAL nor the
    # ORDER BY sorts (an account's year: 170 -> 55 ms). Stores keyed (account, symbol, ts, trade_id)
    # are moved to it on open (`ColdStore.ensure_schema`, REKEYED_TABLES).
    order_by=("account", "ts", "trade_id"),
    partition_by="toYYYYMM(trade_date)",
    engine="ReplacingMergeTree",
)

# Every table of the cold tier, by name: `ColdStore.ensure_schema` creates them all, reads look them up here.
COLD_TABLES: dict[str, TableSchema] = {
    s.name: s
    for s in (
        RAW_QUOTES,
        BARS_1M,
        BARS_5M,
        BARS_15M,
        KLINES_DAILY,
        QA_METRICS,
        QUARANTINE,
        BACKTEST_EQUITY,
        BACKTEST_TRADES,
        GRID_RESULTS,
        CRYPTO_TICKS,
        SYMBOL_MASTER,
        *OPTION_SCHEMAS,
        TRADES,
    )
}
