"""The collector's micro-batch writer to the cold-tier table `crypto_ticks`.

`crypto_ticks` (contract: `core.schema.CRYPTO_TICKS`, re-exported here) holds every accepted tick:
the RAW_QUOTES columns (volume as a float, crypto quantities are fractional), the feed's per-pair
sequence number and the receive instant. `trade_date` is the UTC day (the 24/7 calendar). It is a
separate table from `raw_quotes`, which the daily graph rewrites partition by partition: a re-run of
a day there must not wipe ticks here.

No tick is written twice:
1. the collector accepts each (symbol, seq) once per process (`state.PairState`);
2. before every insert, `ColdSink` drops the batch's (symbol, seq) pairs that the table already
   holds (a restart that replays from an older seq, a retried batch whose first insert did land);
3. the engine is a ReplacingMergeTree ordered by (symbol, ts, seq), so even a duplicate written by
   two concurrent collectors collapses on merge (`FINAL` reads are exact at any time).
"""

from __future__ import annotations

import logging
import time

import pandas as pd

from quant_platform.core.schema import CRYPTO_TICKS, DATE, QUARANTINE, TS
from quant_platform.storage.cold import ColdStore, is_embedded

log = logging.getLogger(__name__)

TICK_COLUMNS = CRYPTO_TICKS.names


# The collector buffers each tick as a tuple in this order (received_s: local receive time).
BUFFER_COLUMNS = [
    "symbol", "seq", "ts_ms", "price", "open", "high", "low", "prev_close", "volume", "amount", "bid", "ask",
    "received_s",
]  # fmt: skip


def ticks_frame(rows: list[tuple]) -> pd.DataFrame:
    """CRYPTO_TICKS frame from row tuples (symbol, seq, ts_ms, price, open, high, low, prev_close,
    volume, amount, bid, ask, received_s) as the collector buffers them."""
    if not rows:
        return CRYPTO_TICKS.empty()
    df = pd.DataFrame.from_records(rows, columns=BUFFER_COLUMNS)
    ts = pd.to_datetime(df["ts_ms"], unit="ms", utc=True).astype(TS)
    df["ts"] = ts
    df["trade_date"] = ts.dt.tz_localize(None).dt.normalize().astype(DATE)
    df["received_at"] = pd.to_datetime((df["received_s"] * 1000).round(), unit="ms", utc=True).astype(TS)
    return CRYPTO_TICKS.conform(df)


def _ms(ts: pd.Series) -> pd.Series:
    """Epoch milliseconds, whatever unit and zone the column came in."""
    return pd.to_datetime(ts, utc=True).dt.as_unit("ms").astype("int64")


class ColdSink:
    """Writes tick batches (and quarantined messages) to the cold tier.

    With an embedded (chdb) DSN the store is opened for each batch and closed right after, so
    Dagster runs can use the same data path between flushes; with a server DSN the connection is
    kept (`hold_open`).
    """

    def __init__(
        self, dsn: str, database: str = "quant", *, hold_open: bool | None = None, lock_timeout: float = 5.0
    ) -> None:
        self.dsn, self.database = dsn, database
        self.hold_open = (not is_embedded(dsn)) if hold_open is None else hold_open
        self.lock_timeout = lock_timeout
        self._store: ColdStore | None = None
        self._schema_ready = False

    def _open(self) -> ColdStore:
        if self._store is None:
            self._store = ColdStore(self.dsn, self.database, lock_timeout=self.lock_timeout)
            self._store.connect()
        if not self._schema_ready:
            self._store.ensure_schema([CRYPTO_TICKS, QUARANTINE])
            self._schema_ready = True
        return self._store

    def _release(self, force: bool = False) -> None:
        if self._store is not None and (force or not self.hold_open):
            self._store.close()
            self._store = None

    def write(self, ticks: pd.DataFrame, quarantine: pd.DataFrame | None = None) -> int:
        """Insert the ticks not yet in the table (and the quarantine rows); returns ticks inserted."""
        started = time.perf_counter()
        try:
            store = self._open()
            fresh = self._unseen(store, CRYPTO_TICKS.conform(ticks)) if len(ticks) else ticks
            written = store.append(CRYPTO_TICKS, fresh) if len(fresh) else 0
            if quarantine is not None and len(quarantine):
                store.append(QUARANTINE, quarantine)
        except Exception:
            self._release(force=True)
            raise
        self._release()
        log.debug("wrote %d ticks in %.1f ms", written, (time.perf_counter() - started) * 1000)
        return written

    def _unseen(self, store: ColdStore, df: pd.DataFrame) -> pd.DataFrame:
        """The ticks of `df` not stored yet. A tick is (symbol, seq, ts), the table's key: after a
        feed's sequence reset the same seq comes again, at a later time, and is a new tick."""
        df = df.drop_duplicates(["symbol", "seq", "ts"], keep="first")
        existing = store.tick_seqs(
            df["symbol"].unique(), df["ts"].min(), df["ts"].max(), df["seq"].min(), df["seq"].max()
        )
        if existing.empty:
            return df
        seen = pd.MultiIndex.from_arrays(
            [existing["symbol"].astype(str), existing["seq"].astype("int64"), _ms(existing["ts"])]
        )
        mine = pd.MultiIndex.from_arrays([df["symbol"].astype(str), df["seq"].astype("int64"), _ms(df["ts"])])
        return df[~mine.isin(seen)]

    def high_water(self, symbols: list[str] | None = None) -> dict[str, int]:
        """Seq of the newest stored tick per symbol (where a restarted collector resumes)."""
        return {s: seq for s, (seq, _) in self.resume_points(symbols).items()}

    def resume_points(self, symbols: list[str] | None = None) -> dict[str, tuple[int, int]]:
        """(seq, event time in ms) of the newest stored tick per symbol: a restarted collector resumes
        there, and tells a sequence reset of the feed from a duplicate by the event time."""
        try:
            return self._open().newest_tick_seqs(symbols)
        finally:
            self._release()

    def count(self, final: bool = True) -> int:
        """Rows in the table (`FINAL`: after collapsing duplicates)."""
        try:
            return self._open().count_ticks(final=final)
        finally:
            self._release()

    def close(self) -> None:
        self._release(force=True)
