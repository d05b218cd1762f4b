"""Cold tier: columnar history in ClickHouse, through clickhouse-connect.

One class for both deployments: a `chdb:///path` DSN runs ClickHouse in-process (embedded default),
an `http(s)://user:password@host:8123` DSN talks to a server. Same SQL either way.

Writes are partition replacements: rows go to a staging table, then every trading day they cover is
swapped in with `ALTER TABLE ... REPLACE PARTITION`, which is atomic per partition. Re-running a day
(or retrying after a crash mid-write) therefore never duplicates or drops rows; a crash leaves at most
an orphaned staging table. Its name says which process wrote it (`stage_name`), so the next write
(or `ensure_schema`) drops it as soon as that process is gone, and never while it lives.

chdb lets one process hold a data path. Open a `ColdStore` late, close it early (it is a context
manager); a path held by another process is retried briefly, then reported as `ColdStoreLocked`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from urllib.parse import urlparse

import pandas as pd

from quant_platform.core.processes import ProcessId, host_key, is_alive
from quant_platform.core.processes import current as current_process
from quant_platform.core.schema import (
    BAR_SCHEMAS,
    COLD_TABLES,
    CRYPTO_TICKS,
    GRID_RESULTS,
    KLINES_DAILY,
    RAW_QUOTES,
    STR,
    SYMBOL_MASTER,
    TRADES,
    TableSchema,
)

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STAGE_MARK = "__stage_"
# <table>__stage_h<host key>_p<pid>_s<pid start ticks, 0 unknown>_<random>: the writing process.
_STAGE_WRITER = re.compile(re.escape(STAGE_MARK) + r"h([0-9a-f]{8})_p(\d+)_s(\d+)_[0-9a-f]+$")
# Staging tables of writers on other hosts (or older names without a writer) are dropped after this
# long: whether a process on another machine lives cannot be told from here.
STALE_STAGE_SECONDS = 3600
SCOPED_PARTITION = "(table_name, trade_date)"
# Small daily tables (klines, QA metrics) are partitioned by year: a day per partition would mean
# thousands of parts, and ClickHouse pays per part on every query. partition expression -> id of a day:
PERIODS = {"toYear(trade_date)": lambda d: d.year, "toYYYYMM(trade_date)": lambda d: d.year * 100 + d.month}
# A read of this few symbols touches a handful of granules: one thread and no PREWHERE pass (which
# reads the filter columns first, then the rest) cost less than planning them (0.5-1 ms CPU of ~5).
POINT_READ_SYMBOLS = 20
POINT_READ_SETTINGS = "max_threads = 1, optimize_move_to_prewhere = 0"
# Arrow out of ClickHouse uncompressed (in-process, compressing only costs CPU; over HTTP the
# transport compresses) and LowCardinality columns as dictionaries instead of a string per row;
# `arrow_to_frame` decodes both. An account's year of trades: 65 -> 37 ms of CPU in the engine.
# Settings go into the SQL, not the client: chdb's client applies per-call settings with SET and a
# restore, three more statements per read.
ARROW_OUT_SETTINGS = (
    "output_format_arrow_compression_method = 'none', output_format_arrow_low_cardinality_as_dictionary = 1"
)
DAYS_PER_INSERT = 50  # ClickHouse refuses inserts touching more than 100 partitions at once
DEFAULT_DATABASE = "quant"
# Tables whose sort key changed after stores were created with the old one: `ensure_schema` moves an
# older store's table to the current key (copy, atomic EXCHANGE TABLES, drop), once.
REKEYED_TABLES = frozenset({TRADES.name})
REKEY_MARK = "__rekey"


class ColdStoreError(RuntimeError):
    """A cold-tier operation failed; the message names the store."""


class ColdStoreLocked(ColdStoreError):
    """The embedded data path is held by another process."""


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a valid identifier: {name!r}")
    return name


def qualified_name(name: str, database: str = DEFAULT_DATABASE) -> str:
    """`database.table`: how the cold store names table `name` in its queries."""
    return f"{_ident(database)}.{_ident(name)}"


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and metadata."""
    parsed = urlparse(dsn)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return dsn


def is_embedded(dsn: str) -> bool:
    return dsn.startswith("chdb:")


def embedded_path(dsn: str) -> str | None:
    """Filesystem path of a chdb DSN ('chdb:///data/x' -> '/data/x'); None for memory or servers."""
    if not is_embedded(dsn):
        return None
    parsed = urlparse(dsn)
    path = parsed.path if not parsed.netloc else None
    return path or None


def stage_name(table: str, writer: ProcessId | None = None) -> str:
    """A fresh staging table name for `table`, naming the writing process (default: this one)."""
    w = writer or current_process()
    return f"{_ident(table)}{STAGE_MARK}h{host_key(w.host)}_p{w.pid}_s{w.start or 0}_{uuid.uuid4().hex[:8]}"


def stage_writer(name: str) -> tuple[str, int, int | None] | None:
    """(host key, pid, start ticks or None) of the process that named staging table `name`; None if
    the name does not say (another naming, or not a staging table)."""
    match = _STAGE_WRITER.search(name)
    if not match:
        return None
    start = int(match.group(3))
    return match.group(1), int(match.group(2)), start or None


def stage_is_orphaned(name: str, older_than_limit: bool) -> bool:
    """Whether staging table `name` can be dropped: its writer is a process of this host that is gone
    (at any age; a live one's never), else (another host, unknown writer) it is older than
    STALE_STAGE_SECONDS."""
    writer = stage_writer(name)
    if writer is None or writer[0] != host_key():
        return older_than_limit
    _, pid, start = writer
    return not is_alive(pid, start)


def _holder_of(path: str) -> str:
    """Best-effort description of the process holding an embedded path (Linux /proc scan)."""
    real = os.path.realpath(path)
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    except OSError:
        return "another process"
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith(real + os.sep):
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    return f"process {pid} ({cmd[:160]})"
        except OSError:
            continue
    return "another process"


def arrow_to_frame(table) -> pd.DataFrame:
    """A query's Arrow table as the tier's pandas types: Date (and a naive `trade_date`) ->
    datetime64[s], naive DateTime -> UTC, dictionaries (LowCardinality) -> their values; strings
    stay Arrow-backed (pandas' str dtype)."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
            f = table.schema.field(i)
        naive = pa.types.is_timestamp(f.type) and f.type.tz is None
        if pa.types.is_date(f.type) or (naive and f.name == "trade_date"):
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp("s")))
        elif naive:
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp(f.type.unit, tz="UTC")))
    return table.to_pandas()


class ColdStore:
    """Columnar store for quotes, bars, klines, QA metrics, quarantine, backtest outputs, grid search
    results, the collector's ticks and the symbol master. Every query of the cold tier is a method here.

    Example:
        >>> with ColdStore("chdb:///tmp/qp-doc") as cold:      # doctest: +SKIP
        ...     cold.ensure_schema()
        ...     cold.read_table("klines_daily", start="2024-10-08", end="2024-10-08")
    """

    def __init__(self, dsn: str, database: str = DEFAULT_DATABASE, lock_timeout: float = 5.0) -> None:
        self.dsn = dsn
        self.database = _ident(database)
        self.lock_timeout = lock_timeout
        self._client = None

    # -- connection -------------------------------------------------------------------------
    def __enter__(self) -> ColdStore:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def client(self):
        if self._client is None:
            self.connect()
        return self._client

    def connect(self) -> None:
        if self._client is not None:
            return
        import clickhouse_connect

        path = embedded_path(self.dsn)
        if path:
            os.makedirs(path, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                self._client = clickhouse_connect.get_client(dsn=self.dsn)
                break
            except Exception as exc:  # noqa: BLE001 - classified below
                text = str(exc)
                held = "EmbeddedServer" in text or "Cannot lock file" in text or "already initialized" in text
                if not (path and held):
                    raise ColdStoreError(f"cold store {redact(self.dsn)}: cannot connect: {exc}") from exc
                if "cannot connect with different path" in text:
                    raise ColdStoreLocked(
                        f"cold store {self.dsn}: this process already has another embedded ClickHouse path "
                        f"open ({text.split('path ')[1].split(',')[0] if 'path ' in text else 'unknown'}); "
                        "close that ColdStore first (one chdb path per process)."
                    ) from exc
                if time.monotonic() >= deadline:
                    raise ColdStoreLocked(
                        f"cold store {self.dsn} is held by {_holder_of(path)}. The embedded ClickHouse "
                        "allows one process per data path: wait for or stop that process (a running "
                        "`quant-platform run`, a Dagster run, or a Python session holding a Client), "
                        "or set QP_CLICKHOUSE_DSN to a ClickHouse server."
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        self._client.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def ping(self) -> dict:
        start = time.perf_counter()
        version = self.client.command("SELECT version()")
        return {
            "store": "clickhouse",
            "dsn": redact(self.dsn),
            "version": str(version),
            "latency_ms": (time.perf_counter() - start) * 1000,
        }

    # -- schema -------------------------------------------------------------------------------
    def table(self, name: str) -> str:
        return qualified_name(name, self.database)

    def create_table_sql(self, schema: TableSchema, name: str | None = None) -> str:
        cols = ",\n  ".join(f"{c.name} {c.ch_type}" for c in schema.columns)
        partition = f"\nPARTITION BY {schema.partition_by}" if schema.partition_by else ""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table(name or schema.name)} (\n  {cols}\n)\n"
            f"ENGINE = {schema.engine}{partition}\nORDER BY ({', '.join(schema.order_by)})"
        )

    def ensure_schema(self, schemas: Iterable[TableSchema] | None = None) -> None:
        """Create missing tables (idempotent) and drop staging tables left by crashed writers."""
        for schema in schemas or COLD_TABLES.values():
            self.client.command(self.create_table_sql(schema))
            if schema.name in REKEYED_TABLES:
                self.rekey(schema)
        self.drop_orphaned_stages()

    def sorting_key(self, name: str) -> str | None:
        """The sort key ClickHouse reports for table `name` ('a, b'), None if it does not exist."""
        rows = self.client.query(
            "SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": self.database, "t": _ident(name)},
        ).result_rows
        return str(rows[0][0]) if rows else None

    def rekey(self, schema: TableSchema) -> bool:
        """Move `schema`'s table to `schema.order_by` if it has another sort key (ClickHouse cannot
        alter a key's columns): copy the rows into a new table, swap the two atomically, drop the old.
        Readers see the old or the new table, never a mix; a crash leaves a `__rekey` copy that the
        next call replaces. Returns whether the table moved."""
        current = self.sorting_key(schema.name)
        if current is None or current == ", ".join(schema.order_by):
            return False
        target = self.table(schema.name)
        copy = self.table(schema.name + REKEY_MARK)
        log.info(
            "cold store %s: moving %s from key (%s) to (%s)",
            redact(self.dsn),
            schema.name,
            current,
            ", ".join(schema.order_by),
        )
        self.client.command(f"DROP TABLE IF EXISTS {copy}")
        self.client.command(self.create_table_sql(schema, schema.name + REKEY_MARK))
        self.client.command(
            f"INSERT INTO {copy} SELECT {', '.join(schema.names)} FROM {target}",
            settings={"max_partitions_per_insert_block": 0},
        )
        self.client.command(f"EXCHANGE TABLES {target} AND {copy}")
        self.client.command(f"DROP TABLE {copy}")
        return True

    def drop_orphaned_stages(self) -> list[str]:
        """Drop the staging tables whose writer crashed (see `stage_is_orphaned`); returns their names."""
        rows = self.client.query(
            "SELECT name, metadata_modification_time < now() - INTERVAL {age:UInt32} SECOND "
            "FROM system.tables WHERE database = {db:String} AND position(name, {mark:String}) > 0",
            parameters={"db": self.database, "mark": STAGE_MARK, "age": STALE_STAGE_SECONDS},
        ).result_rows
        dropped = [name for name, old in rows if stage_is_orphaned(name, bool(old))]
        for name in dropped:
            log.info("cold store %s: dropping staging table %s of a crashed writer", redact(self.dsn), name)
            self.client.command(f"DROP TABLE IF EXISTS {self.table(name)}")
        return dropped

    # -- writes ----------------------------------------------------------------------------
    def replace_partitions(
        self, schema: TableSchema, df: pd.DataFrame, days: Sequence[dt.date], scope: str | None = None
    ) -> int:
        """Make `df` the complete content of trading days `days` in `schema`'s table.

        Days in `days` with no rows in `df` are emptied. Rows outside `days` are an error (they would
        otherwise be silently dropped). Tables partitioned by (table_name, trade_date), such as the
        quarantine, are replaced only within `scope` (a table name). Returns the rows written.
        """
        if schema.partition_by not in ("trade_date", SCOPED_PARTITION, *PERIODS):
            raise ValueError(f"{schema.name} is not partitioned by trading day or month")
        if (schema.partition_by == SCOPED_PARTITION) != (scope is not None):
            raise ValueError(f"{schema.name}: scope is required exactly for {SCOPED_PARTITION} tables")
        days = sorted({pd.Timestamp(d).date() for d in days})
        df = schema.conform(df)
        if scope is not None and len(df) and (df["table_name"] != scope).any():
            raise ValueError(f"{schema.name}: rows outside scope {scope!r}")
        present = set(pd.DatetimeIndex(df["trade_date"]).date) if len(df) else set()
        outside = sorted(present - set(days))
        if outside:
            raise ValueError(f"{schema.name}: rows for {outside[:5]} are outside the days being written")
        target = self.table(schema.name)
        self.drop_orphaned_stages()  # a crashed earlier write's leftovers go before this one starts
        stage_table = stage_name(schema.name)
        stage = self.table(stage_table)
        self.client.command(self.create_table_sql(schema, stage_table))
        try:
            self._insert_by_day_chunks(stage, df, sorted(present))
            if schema.partition_by in PERIODS:
                self._swap_periods(target, stage, days, schema.partition_by)
            else:
                for day in days:
                    verb = "REPLACE" if day in present else "DROP"
                    source = f" FROM {stage}" if day in present else ""
                    part = (
                        f"'{day.isoformat()}'"
                        if scope is None
                        else f"('{_ident(scope)}', '{day.isoformat()}')"
                    )
                    self.client.command(f"ALTER TABLE {target} {verb} PARTITION {part}{source}")
        finally:
            self.client.command(f"DROP TABLE IF EXISTS {stage}")
        return len(df)

    def _swap_periods(
        self,
        target: str,
        stage: str,
        days: list[dt.date],
        expr: str,
        keep: str = "trade_date NOT IN {days:Array(Date)}",
        parameters: dict | None = None,
    ) -> None:
        """Year/month-partitioned tables: complete each touched period in the staging table with the
        target's rows of the period that `keep` selects (default: the period's other days), then swap
        the whole period in (still one atomic step per partition)."""
        periods: dict[int, list[dt.date]] = {}
        for day in days:
            periods.setdefault(PERIODS[expr](day), []).append(day)
        for period, period_days in periods.items():
            self.client.command(
                f"INSERT INTO {stage} SELECT * FROM {target} WHERE {expr} = {{p:UInt32}} AND ({keep})",
                parameters={"p": period, "days": period_days, **(parameters or {})},
            )
            rows = self.client.command(
                f"SELECT count() FROM {stage} WHERE {expr} = {{p:UInt32}}", parameters={"p": period}
            )
            verb, source = ("REPLACE", f" FROM {stage}") if int(rows) else ("DROP", "")
            self.client.command(f"ALTER TABLE {target} {verb} PARTITION {int(period)}{source}")

    def optimize(self, name: str) -> None:
        """Merge a table's parts now (after a bulk load; ClickHouse otherwise merges in the background)."""
        self.client.command(f"OPTIMIZE TABLE {self.table(name)} FINAL")

    def _insert_by_day_chunks(self, table: str, df: pd.DataFrame, days: list[dt.date]) -> None:
        """Insert in blocks of at most DAYS_PER_INSERT partitions (ClickHouse caps partitions per block)."""
        if len(days) <= DAYS_PER_INSERT:
            if len(df):
                self.client.insert_df(table, df)
            return
        day_of_row = pd.DatetimeIndex(df["trade_date"]).date
        for i in range(0, len(days), DAYS_PER_INSERT):
            chunk = set(days[i : i + DAYS_PER_INSERT])
            self.client.insert_df(table, df[[d in chunk for d in day_of_row]])

    def append(self, schema: TableSchema, df: pd.DataFrame) -> int:
        """Plain insert, for tables keyed by a unique run id (backtest outputs)."""
        df = schema.conform(df)
        if len(df):
            self.client.insert_df(self.table(schema.name), df)
        return len(df)

    def append_arrow(self, schema: TableSchema, df: pd.DataFrame) -> int:
        """`append` through Arrow with the text columns dictionary-encoded: for the large outputs of
        backtests (~120,000 equity rows a run, few distinct run ids and symbols) this costs a third of
        the Native path, whose LowCardinality dictionaries are built row by row in Python."""
        import pyarrow as pa

        df = schema.conform(df)
        if not len(df):
            return 0
        text = [c.name for c in schema.columns if c.dtype == STR]
        table = pa.Table.from_pandas(df.astype({c: "category" for c in text}), preserve_index=False)
        self.client.insert_arrow(self.table(schema.name), table)
        return len(df)

    def delete_run(self, run_id: str, tables: Sequence[str] = ("backtest_equity", "backtest_trades")) -> None:
        """Remove a backtest run's rows (a failed attempt's partial output) from run-keyed tables."""
        for name in tables:
            self.client.command(
                f"DELETE FROM {self.table(name)} WHERE run_id = {{run_id:String}}",
                parameters={"run_id": run_id},
            )

    def delete_runs(
        self, run_ids: Sequence[str], tables: Sequence[str] = ("backtest_equity", "backtest_trades")
    ) -> None:
        """`delete_run` for many runs, one statement per table (a batch's chunk written at once)."""
        if not run_ids:
            return
        for name in tables:
            self.client.command(
                f"DELETE FROM {self.table(name)} WHERE run_id IN {{run_ids:Array(String)}}",
                parameters={"run_ids": list(run_ids)},
            )

    def read_run(self, name: str, run_id: str) -> pd.DataFrame:
        """All rows of one backtest run from a run-keyed table (equity, trades)."""
        schema = COLD_TABLES[name]
        df = self.query_df(
            f"SELECT {', '.join(schema.names)} FROM {self.table(name)} WHERE run_id = {{run_id:String}} "
            f"ORDER BY {', '.join(schema.order_by)}",
            {"run_id": run_id},
        )
        return schema.conform(df) if len(df) else schema.empty()

    # -- reads -----------------------------------------------------------------------------
    def query_df(self, sql: str, parameters: dict | None = None) -> pd.DataFrame:
        """Run a parameterised query ({name:Type} placeholders); never format user input into SQL.

        Results travel as Arrow (the cheapest path out of both chdb and a server). Dates come back
        as datetime64[s], DateTime columns as tz-aware UTC (the tier stores UTC instants). The types
        are fixed in Arrow, before pandas sees the columns (half the cost of pandas casts per column,
        0.35 against 0.75 ms for a 60-row read).
        """
        table = self.client.query_arrow(sql, parameters=parameters or {})
        return arrow_to_frame(table)

    def read_table(
        self,
        name: str,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
        symbols: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        last_per_symbol_day: bool = False,
    ) -> pd.DataFrame:
        """Rows of a daily table for trading days in [start, end] and optional symbols, sorted."""
        schema = COLD_TABLES[name]
        cols = list(columns) if columns else schema.names
        for c in cols:
            if c not in schema.names:
                raise ValueError(f"{name} has no column {c!r}")
        where, params = self._bounds_filter(None, start, end, symbols)
        sql = f"SELECT {', '.join(cols)} FROM {self.table(name)}{where}"
        order = [c for c in schema.order_by if c in cols]
        if last_per_symbol_day:
            sql += " ORDER BY symbol, trade_date, ts DESC LIMIT 1 BY symbol, trade_date"
        elif order:
            sql += f" ORDER BY {', '.join(order)}"
        point = symbols is not None and len(symbols) <= POINT_READ_SYMBOLS
        sql += f" SETTINGS {POINT_READ_SETTINGS + ', ' if point else ''}{ARROW_OUT_SETTINGS}"
        df = self.query_df(sql, params)
        if df.empty:
            return schema.empty()[cols]
        return schema.conform(df) if cols == schema.names and not schema.matches(df) else df

    def quarantine_counts(self, table_name: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Quarantined rows of `table_name` per trading day and rule in [start, end]."""
        return self.query_df(
            f"SELECT trade_date, rule, count() AS rows FROM {self.table('quarantine')} "
            "WHERE table_name = {t:String} AND trade_date >= {s:Date} AND trade_date <= {e:Date} "
            "GROUP BY trade_date, rule ORDER BY trade_date, rule",
            {"t": table_name, "s": start, "e": end},
        )

    def count_by_day(self, name: str, days: Sequence[dt.date]) -> dict[dt.date, int]:
        rows = self.client.query(
            f"SELECT trade_date, count() FROM {self.table(name)} WHERE trade_date IN {{days:Array(Date)}} "
            "GROUP BY trade_date",
            parameters={"days": [pd.Timestamp(d).date() for d in days]},
        ).result_rows
        counts = {pd.Timestamp(d).date(): 0 for d in days}
        counts.update({pd.Timestamp(d).date(): int(n) for d, n in rows})
        return counts

    def row_counts(self) -> dict[str, int]:
        rows = self.client.query(
            "SELECT name, total_rows FROM system.tables WHERE database = {db:String} "
            "AND position(name, {mark:String}) = 0",
            parameters={"db": self.database, "mark": STAGE_MARK},
        ).result_rows
        return {name: int(n or 0) for name, n in rows}

    # -- market data queries ---------------------------------------------------------------
    def latest_quotes(self, symbols: Sequence[str], lookback_days: int = 31) -> pd.DataFrame:
        """The newest `raw_quotes` snapshot of each of `symbols` (RAW_QUOTES columns).

        Only the last `lookback_days` before the newest trading day of these symbols are scanned, not
        the whole history; a symbol without a snapshot in that window is absent from the result.
        """
        table = self.table(RAW_QUOTES.name)
        in_symbols = "symbol IN {symbols:Array(String)}"
        df = self.query_df(
            f"SELECT {', '.join(RAW_QUOTES.names)} FROM {table} WHERE {in_symbols} "
            f"AND trade_date >= (SELECT max(trade_date) FROM {table} WHERE {in_symbols}) - {{days:UInt32}} "
            "ORDER BY ts DESC LIMIT 1 BY symbol",
            {"symbols": list(symbols), "days": int(lookback_days)},
        )
        return RAW_QUOTES.conform(df) if len(df) else RAW_QUOTES.empty()

    def kline_days(self, limit: int) -> pd.DataFrame:
        """The newest `limit` trading days that have `klines_daily` rows, newest first (`trade_date`)."""
        return self.query_df(
            f"SELECT DISTINCT trade_date FROM {self.table(KLINES_DAILY.name)} ORDER BY trade_date DESC "
            "LIMIT {n:UInt32}",
            {"n": int(limit)},
        )

    def bar_volume(self, start: dt.date | str, end: dt.date | str, freq: str = "1m") -> pd.DataFrame:
        """Shares traded per symbol and trading day in [start, end], summed over `freq` bars.

        Columns symbol, trade_date, bar_volume; one row per (symbol, day) that has bars, unordered.
        """
        table = self.table(BAR_SCHEMAS[freq].name)
        return self.query_df(
            f"SELECT symbol, trade_date, sum(volume) AS bar_volume FROM {table} "
            "WHERE trade_date >= {start:Date} AND trade_date <= {end:Date} GROUP BY symbol, trade_date",
            {"start": pd.Timestamp(start).date(), "end": pd.Timestamp(end).date()},
        )

    # -- grid search results ---------------------------------------------------------------
    def _create(self, schema: TableSchema) -> None:
        """Create `schema`'s table if it is missing (for callers that did not run `ensure_schema`)."""
        self.client.command(self.create_table_sql(schema))

    def write_grid_results(self, request_id: str, frame: pd.DataFrame) -> int:
        """Make `frame` the rows of grid request `request_id` in `grid_search_results`.

        The request's earlier rows are deleted first, so a retried write never duplicates them.
        Returns the rows written.
        """
        self._create(GRID_RESULTS)
        existing = self.client.command(
            f"SELECT count() FROM {self.table(GRID_RESULTS.name)} WHERE request_id = {{rid:String}}",
            parameters={"rid": request_id},
        )
        if int(existing or 0):
            self.delete_grid_results(request_id)
        return self.append(GRID_RESULTS, frame)

    def delete_grid_results(self, request_id: str) -> None:
        """Remove every row of grid request `request_id` (a failed or cancelled write's output)."""
        self._create(GRID_RESULTS)
        self.client.command(
            f"DELETE FROM {self.table(GRID_RESULTS.name)} WHERE request_id = {{rid:String}}",
            parameters={"rid": request_id},
        )

    def grid_results(
        self, request_id: str, *, top: int | None = None, per_symbol: bool = False
    ) -> pd.DataFrame:
        """A grid request's ranked combinations (symbol '*' rows), best first, GRID_RESULTS columns.

        `top` keeps the best `top` rows; `per_symbol` adds every symbol's row after its
        combination's '*' row.
        """
        self._create(GRID_RESULTS)
        where = "request_id = {rid:String}" + ("" if per_symbol else " AND symbol = '*'")
        params: dict = {"rid": request_id}
        sql = (
            f"SELECT {', '.join(GRID_RESULTS.names)} FROM {self.table(GRID_RESULTS.name)} WHERE {where} "
            "ORDER BY rank, symbol = '*' DESC, symbol"
        )
        if top is not None:
            sql += " LIMIT {top:UInt32}"
            params["top"] = int(top)
        df = self.query_df(sql, params)
        return GRID_RESULTS.conform(df) if len(df) else GRID_RESULTS.empty()

    # -- symbol master -----------------------------------------------------------------------
    def write_symbol_master(
        self,
        source: str,
        day: dt.date | str,
        symbols: Iterable[str],
        *,
        names: dict[str, str] | None = None,
        boards: dict[str, str] | None = None,
    ) -> int:
        """Make `symbols` the list `source` recorded for trading day `day` in `symbol_master`.

        Only that (source, day) is replaced; other sources and days are kept. The year's partition is
        swapped in one atomic step, so writing the same list again changes nothing (idempotent), and
        an empty list removes the record. `names` / `boards`: symbol -> text. Returns the rows written.
        """
        return self.write_symbol_masters(source, {day: symbols}, names=names, boards=boards)

    def write_symbol_masters(
        self,
        source: str,
        lists: dict[dt.date | str, Iterable[str]],
        *,
        names: dict[str, str] | None = None,
        boards: dict[str, str] | None = None,
    ) -> int:
        """`write_symbol_master` for several days at once: one swap per year, not one per day (a
        backfill of a year records 250 lists in one step)."""
        names, boards = names or {}, boards or {}
        by_day = {pd.Timestamp(d).date(): sorted({str(s) for s in symbols}) for d, symbols in lists.items()}
        if not by_day:
            return 0
        rows = [(d, s) for d, listed in sorted(by_day.items()) for s in listed]
        frame = SYMBOL_MASTER.conform(
            pd.DataFrame(
                {
                    "trade_date": pd.Series([pd.Timestamp(d) for d, _ in rows], dtype="datetime64[s]"),
                    "source": str(source),
                    "symbol": pd.Series([s for _, s in rows], dtype=object),
                    "name": pd.Series([str(names.get(s, "")) for _, s in rows], dtype=object),
                    "board": pd.Series([str(boards.get(s, "")) for _, s in rows], dtype=object),
                    "recorded_at": pd.Timestamp.now(tz="UTC").floor("ms"),
                }
            )
        )
        self._create(SYMBOL_MASTER)
        stage_name = f"{SYMBOL_MASTER.name}{STAGE_MARK}{uuid.uuid4().hex[:12]}"
        stage = self.table(stage_name)
        self.client.command(self.create_table_sql(SYMBOL_MASTER, stage_name))
        try:
            self._insert_by_day_chunks(stage, frame, sorted({d for d, _ in rows}))
            self._swap_periods(
                self.table(SYMBOL_MASTER.name),
                stage,
                sorted(by_day),
                SYMBOL_MASTER.partition_by,
                keep="NOT (trade_date IN {days:Array(Date)} AND source = {source:String})",
                parameters={"source": str(source)},
            )
        finally:
            self.client.command(f"DROP TABLE IF EXISTS {stage}")
        return len(frame)

    def symbol_master(self, day: dt.date | str, source: str | None = None) -> list[str]:
        """The symbols known on `day`, sorted: each source's latest list on or before `day` (only
        `source`'s when given), united over the sources; [] when nothing is recorded.

        Per source, so a list imported once stays valid next to a source that records one every day.
        """
        self._create(SYMBOL_MASTER)
        table = self.table(SYMBOL_MASTER.name)
        where = "trade_date <= {day:Date}" + (" AND source = {source:String}" if source is not None else "")
        params: dict = {"day": pd.Timestamp(day).date()}
        if source is not None:
            params["source"] = str(source)
        df = self.query_df(
            f"SELECT DISTINCT symbol FROM {table} WHERE (source, trade_date) IN "
            f"(SELECT source, max(trade_date) FROM {table} WHERE {where} GROUP BY source) ORDER BY symbol",
            params,
        )
        return [str(s) for s in df["symbol"]] if len(df) else []

    # -- collector ticks -------------------------------------------------------------------
    def tick_seqs(
        self,
        symbols: Sequence[str],
        start: dt.datetime | pd.Timestamp,
        end: dt.datetime | pd.Timestamp,
        min_seq: int,
        max_seq: int,
    ) -> pd.DataFrame:
        """(symbol, seq, ts) of the stored `crypto_ticks` of `symbols` with ts in [start, end] and seq in
        [min_seq, max_seq]: the ticks of a batch that are already in the table.

        A duplicate is the same message (same symbol, seq and ts), so the ts bounds let the (symbol,
        ts) prefix of the sort key limit the lookup to the batch's time range.
        """
        return self.query_df(
            f"SELECT symbol, seq, ts FROM {self.table(CRYPTO_TICKS.name)} "
            "WHERE symbol IN {symbols:Array(String)} AND ts >= {t0:DateTime64(3, 'UTC')} "
            "AND ts <= {t1:DateTime64(3, 'UTC')} AND seq >= {lo:UInt64} AND seq <= {hi:UInt64}",
            {
                "symbols": sorted(symbols),
                "t0": pd.Timestamp(start).to_pydatetime(),
                "t1": pd.Timestamp(end).to_pydatetime(),
                "lo": int(min_seq),
                "hi": int(max_seq),
            },
        )

    def max_tick_seqs(self, symbols: Sequence[str] | None = None) -> dict[str, int]:
        """Highest stored `crypto_ticks` seq per symbol (all symbols, or only `symbols`)."""
        sql = f"SELECT symbol, max(seq) AS seq FROM {self.table(CRYPTO_TICKS.name)}"
        params: dict = {}
        if symbols is not None:
            sql += " WHERE symbol IN {symbols:Array(String)}"
            params["symbols"] = list(symbols)
        df = self.query_df(sql + " GROUP BY symbol", params)
        if df.empty:
            return {}
        return {str(s): int(q) for s, q in zip(df["symbol"], df["seq"], strict=True)}

    def newest_tick_seqs(self, symbols: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
        """(seq, event time in epoch ms) of the newest stored `crypto_ticks` row per symbol.

        The newest by time, not the highest seq: after a feed's sequence reset they differ.
        """
        sql = (
            "SELECT symbol, argMax(seq, (ts, seq)) AS seq, toUnixTimestamp64Milli(max(ts)) AS ms "
            f"FROM {self.table(CRYPTO_TICKS.name)}"
        )
        params: dict = {}
        if symbols is not None:
            sql += " WHERE symbol IN {symbols:Array(String)}"
            params["symbols"] = list(symbols)
        df = self.query_df(sql + " GROUP BY symbol", params)
        return {str(s): (int(q), int(ms)) for s, q, ms in zip(df["symbol"], df["seq"], df["ms"], strict=True)}

    def count_ticks(self, final: bool = True) -> int:
        """Rows in `crypto_ticks`; `final` counts after collapsing duplicates (`FINAL`)."""
        suffix = " FINAL" if final else ""
        return int(self.client.command(f"SELECT count() FROM {self.table(CRYPTO_TICKS.name)}{suffix}"))

    # -- trade records (accounts) ----------------------------------------------------------
    # `trades` is a ReplacingMergeTree: reads use FINAL (exact even before a merge), restricted to
    # the partitions (months) and sort-key range (account, then time) the query names. A trade's
    # partition follows from its time, so duplicates can only meet within a partition: FINAL need
    # not merge across partitions, and skips partitions that are one part already (8x faster on a
    # merged table: 870 -> 92 ms for an account's year of 100,000 trades). The key (account, ts,
    # trade_id) is the order `read_trades` returns, so its parts are read in order, not sorted.
    _FINAL_SETTINGS = " SETTINGS do_not_merge_across_partitions_select_final = 1"
    TRADE_STAT_KEYS = {"account": "account", "symbol": "symbol", "strategy": "strategy", "day": "trade_date"}

    def stored_trade_ids(
        self, accounts: Sequence[str], ids: Sequence[str], start: dt.date, end: dt.date
    ) -> set[tuple[str, str]]:
        """(account, trade_id) pairs of `accounts` x `ids` already in `trades` with trade_date in
        [start, end] (one query for a whole batch)."""
        self._create(TRADES)
        rows = self.client.query(
            f"SELECT DISTINCT account, trade_id FROM {self.table(TRADES.name)} "
            "WHERE account IN {a:Array(String)} AND trade_date >= {s:Date} AND trade_date <= {e:Date} "
            "AND trade_id IN {ids:Array(String)}",
            parameters={"a": list(accounts), "s": start, "e": end, "ids": list(ids)},
        ).result_rows
        return {(str(a), str(t)) for a, t in rows}

    def insert_trades(self, df: pd.DataFrame) -> int:
        """Insert conforming TRADES rows (callers drop stored ids first); at most 50 months per block."""
        self._create(TRADES)
        df = TRADES.conform(df)
        if df.empty:
            return 0
        months = pd.DatetimeIndex(df["trade_date"]).year * 100 + pd.DatetimeIndex(df["trade_date"]).month
        distinct = sorted(set(months))
        for i in range(0, len(distinct), DAYS_PER_INSERT):
            chunk = df[months.isin(distinct[i : i + DAYS_PER_INSERT])]
            self.client.insert_df(self.table(TRADES.name), chunk)
        return len(df)

    def read_trades(
        self,
        accounts: Sequence[str] | None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Trades of `accounts` (None: all) with trade_date in [start, end], by account, ts, trade_id."""
        self._create(TRADES)
        where, params = self._bounds_filter(accounts, start, end, symbols)
        df = self.query_df(
            f"SELECT {', '.join(TRADES.names)} FROM {self.table(TRADES.name)} FINAL{where} "
            "ORDER BY account, ts, trade_id" + self._FINAL_SETTINGS + ", " + ARROW_OUT_SETTINGS,
            params,
        )
        return TRADES.conform(df) if len(df) else TRADES.empty()

    def trade_stats(
        self, accounts: Sequence[str] | None, start: dt.date, end: dt.date, by: str = "account"
    ) -> pd.DataFrame:
        """Per `by` (account | symbol | strategy | day): trades, volume (units), turnover (price x
        units), commissions, realised P&L, buys and sells, over trade_date in [start, end]."""
        if by not in self.TRADE_STAT_KEYS:
            raise ValueError(f"by must be one of {list(self.TRADE_STAT_KEYS)}, got {by!r}")
        self._create(TRADES)
        key = self.TRADE_STAT_KEYS[by]
        where, params = self._bounds_filter(accounts, start, end, None)
        return self.query_df(
            f"SELECT {key} AS {by}, count() AS trades, sum(quantity) AS volume, "
            "sum(quantity * price) AS turnover, sum(commission) AS commissions, "
            "sum(realized_pnl) AS realized_pnl, countIf(side = 'buy') AS buys, "
            "countIf(side = 'sell') AS sells "
            f"FROM {self.table(TRADES.name)} FINAL{where} GROUP BY {by} ORDER BY {by}" + self._FINAL_SETTINGS,
            params,
        )

    def trade_totals(self, accounts: Sequence[str]) -> pd.DataFrame:
        """Per account over all its trades: trades, turnover, commissions, realised P&L, first/last ts."""
        self._create(TRADES)
        where, params = self._bounds_filter(accounts, None, None, None)
        return self.query_df(
            "SELECT account, count() AS trades, sum(quantity * price) AS turnover, "
            "sum(commission) AS commissions, sum(realized_pnl) AS realized_pnl, "
            "min(ts) AS first_trade, max(ts) AS last_trade "
            f"FROM {self.table(TRADES.name)} FINAL{where} GROUP BY account ORDER BY account"
            + self._FINAL_SETTINGS,
            params,
        )

    def net_quantities(self, accounts: Sequence[str], symbols: Sequence[str]) -> dict[tuple[str, str], float]:
        """Bought minus sold units per (account, symbol) of `accounts` x `symbols`, over all trades."""
        self._create(TRADES)
        rows = self.client.query(
            "SELECT account, symbol, sum(if(side = 'buy', quantity, -quantity)) "
            f"FROM {self.table(TRADES.name)} FINAL WHERE account IN {{a:Array(String)}} "
            "AND symbol IN {symbols:Array(String)} GROUP BY account, symbol" + self._FINAL_SETTINGS,
            parameters={"a": list(accounts), "symbols": list(symbols)},
        ).result_rows
        return {(str(a), str(sym)): float(q) for a, sym, q in rows}

    @staticmethod
    def _bounds_filter(
        accounts: Sequence[str] | None,
        start: dt.date | str | None,
        end: dt.date | str | None,
        symbols: Sequence[str] | None,
    ) -> tuple[str, dict]:
        """` WHERE ...` (or "") and its parameters for the optional account, day and symbol bounds that
        daily tables and trades share."""
        where, params = [], {}
        if accounts is not None:
            where.append("account IN {accounts:Array(String)}")
            params["accounts"] = list(accounts)
        if start is not None:
            where.append("trade_date >= {start:Date}")
            params["start"] = pd.Timestamp(start).date()
        if end is not None:
            where.append("trade_date <= {end:Date}")
            params["end"] = pd.Timestamp(end).date()
        if symbols is not None:
            where.append("symbol IN {symbols:Array(String)}")
            params["symbols"] = list(symbols)
        return (" WHERE " + " AND ".join(where) if where else ""), params
