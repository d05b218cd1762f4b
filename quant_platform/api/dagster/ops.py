"""The `backtest_request` job: a batch of API-requested backtest runs, each executed like `backtest_runs`.

For each request of the batch, in order: a record still queued is picked up (event `started`), the
klines (or 5m / 15m bars, by the backtest's frequency) of its universe and window are read (shared
by the requests of the batch that ask for the same data), the record moves to running
(`data_loaded`), the strategy runs (`assets.backtests.run_universe`, `simulated`; the per-symbol
`Bars` are validated once per batch too), equity and trades go to the cold tier in one insert per
table with those of up to `WRITE_CHUNK` requests, written by a thread while the next chunk's
backtests run (`written`), and only then does each record end
succeeded with its stats (`finished`), or failed with the reason. Events go to the hot tier's
`runs.{run_id}` channel (`api.progress`). A request cancelled in the meantime is left cancelled and
its results removed. A failing request does not stop the others; the Dagster run fails at the end if
any request failed.
"""

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from quant_platform import __version__
from quant_platform.api import progress
from quant_platform.api.dagster.runs import JOB, OP
from quant_platform.assets.backtests import (
    BacktestRunsConfig,
    _equity_rows,
    _trade_rows,
    bars_table,
    data_version,
    ohlcv_frames,
    prepared_bars,
    run_universe,
)
from quant_platform.conventions import COLD_POOL, EMBEDDED_TAG
from quant_platform.core.schema import BACKTEST_EQUITY, BACKTEST_TRADES
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.hot import HotCacheResource
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.storage.hot import HotStore
from quant_platform.storage.warm import IllegalTransition, Status, WarmStore

KLINES_CACHE = 4  # distinct (universe, window) frames a batch keeps in memory
# A batch keeps the cold store open across requests for at most this long, then closes it: opening
# (connect + schema check) costs more than a request's write, while closing now and then lets others
# (the API's artifact reads) take the embedded store's one-process lock.
COLD_HOLD_SECONDS = 10.0
# Simulated requests whose equity and trades go to the cold tier in one insert per table: a
# request's own two inserts cost more than its backtest. Each ends succeeded once its chunk is written.
WRITE_CHUNK = 10


class BacktestRequestConfig(dg.Config):
    run_ids: list[str]


def _short(exc: BaseException) -> str:
    """The reason stored and shown for a failed run: type and first line, never a traceback."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}"


@dataclass
class _Simulated:
    """A request whose backtest ran and whose results wait for their chunk's cold-tier write."""

    run_id: str
    out: dict[str, Any]
    window: tuple[str, str]


@dataclass
class _Data:
    """One universe and window's bars as a batch shares them: rows, data version, frames, `Bars`."""

    klines: pd.DataFrame
    version: str
    frames: dict[str, pd.DataFrame]
    prepared: dict[str, Any] | None = None


class _Batch:
    """What the requests of one Dagster run share: the stores, the log, the klines read so far and
    the simulated requests not yet written."""

    def __init__(self, context: dg.OpExecutionContext, warm: WarmStore, clickhouse, hot: HotStore) -> None:
        self.log, self.warm, self.clickhouse, self.hot = context.log, warm, clickhouse, hot
        self._klines: dict[tuple, _Data] = {}
        self._backtests: dict[int, Any] = {}
        self._cold: contextlib.ExitStack | None = None
        self._store: Any = None
        self._opened = 0.0
        self._lock = threading.RLock()  # the cold store: one user at a time (this thread or the writer)
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: tuple[list[_Simulated], Future] | None = None
        self.pending: list[_Simulated] = []

    @contextlib.contextmanager
    def cold(self) -> Iterator[Any]:
        """The cold store, reused while it was opened less than COLD_HOLD_SECONDS ago."""
        with self._lock:
            if self._cold is None or time.monotonic() - self._opened > COLD_HOLD_SECONDS:
                self.release()
                self._cold = contextlib.ExitStack()
                self._store = self._cold.enter_context(self.clickhouse.open())
                self._opened = time.monotonic()
            try:
                yield self._store
            except BaseException:
                self.release()  # a failed read or write: the next request opens a fresh store
                raise

    def release(self) -> None:
        with self._lock:
            if self._cold is not None:
                cold, self._cold, self._store = self._cold, None, None
                cold.close()

    def close(self) -> None:
        """End of the batch: a chunk still being written when the batch was interrupted is waited
        for and its rows removed (its records stay running; the sensor fails them once the Dagster
        run has ended), then the cold store is closed."""
        if self._inflight is not None:
            chunk, future = self._inflight
            self._inflight = None
            with contextlib.suppress(Exception):
                future.result()
            with contextlib.suppress(Exception):
                self.drop_results([s.run_id for s in chunk])
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        self.release()

    def klines(self, table: str, symbols: list[str], start: str, end: str) -> _Data:
        """The bars of a universe and window, their data version and per-symbol frames, read once."""
        key = (table, tuple(symbols), start, end)
        if key not in self._klines:
            if len(self._klines) >= KLINES_CACHE:
                self._klines.pop(next(iter(self._klines)))
            with self.cold() as cold:
                klines = cold.read_table(table, start, end, symbols=symbols)
            version = data_version(klines) if not klines.empty else ""
            frames = ohlcv_frames(klines) if not klines.empty else {}
            self._klines[key] = _Data(klines, version, frames)
        return self._klines[key]

    def backtest(self, backtest_id: int) -> Any:
        """A backtest definition, read once per batch (a user's runs share it; it never changes)."""
        if backtest_id not in self._backtests:
            self._backtests[backtest_id] = self.warm.get_backtest(backtest_id)
        return self._backtests[backtest_id]

    def ended(self, run_id: str, status: str, stage: str, **extra: Any) -> str:
        progress.publish(self.hot, run_id, stage, status, **extra)
        return status

    def drop_results(self, run_ids: list[str]) -> None:
        with self.cold() as cold:
            cold.delete_runs(run_ids)

    def fail(self, run_id: str, exc: BaseException) -> str:
        with contextlib.suppress(IllegalTransition):
            self.warm.fail_run(run_id, _short(exc))
        self.log.error(f"backtest run {run_id} failed: {_short(exc)}")
        return self.ended(run_id, "failed", "failed", error=_short(exc))

    def execute(self, run_id: str) -> str:
        """One request up to its simulation: returns failed, cancelled or skipped, or simulated (its
        results then wait in `pending` for `flush`)."""
        warm = self.warm
        run = warm.get_run(run_id)
        if run.status is not Status.QUEUED:
            self.log.info(f"run {run_id} is {run.status}: nothing to do")
            return "skipped"
        progress.publish(self.hot, run_id, "started")
        bt = self.backtest(run.backtest_id)
        ctx = bt.config["context"]
        start, end, symbols = ctx["window"]["start"], ctx["window"]["end"], list(ctx["universe"])
        frequency = ctx.get("frequency", "1d")
        table = bars_table(frequency)  # klines_daily, or bars_5m / bars_15m for intraday backtests
        data = self.klines(table, symbols, start, end)
        if data.klines.empty:
            reason = f"no {table} for {', '.join(symbols[:5])} between {start} and {end}"
            with contextlib.suppress(IllegalTransition):
                warm.fail_run(run_id, reason)
            return self.ended(run_id, "failed", "failed", error=reason)
        try:
            warm.start_run(run_id, data_version=data.version, code_version=__version__)
        except IllegalTransition:  # cancelled (or taken by another batch) since it was read
            return "skipped"
        progress.publish(self.hot, run_id, "data_loaded", rows=len(data.klines))
        cfg = BacktestRunsConfig(strategy=bt.strategy, symbols=symbols, frequency=frequency).model_copy(
            update={"params": dict(run.params)}
        )
        try:
            out = run_universe(data.klines, cfg, data.frames, self.prepared(data, bt.strategy))
        except Exception as exc:
            return self.fail(run_id, exc)
        if warm.get_run(run_id).status is Status.CANCELLED:
            self.log.info(f"run {run_id} was cancelled while it ran: results dropped")
            return self.ended(run_id, "cancelled", "cancelled")
        progress.publish(self.hot, run_id, "simulated")
        self.pending.append(_Simulated(run_id, out, (start, end)))
        return "simulated"

    @staticmethod
    def prepared(data: _Data, strategy: str) -> dict[str, Any] | None:
        """The validated `Bars` of a single-asset strategy's symbols, built on first use (a bad
        frame fails the request that needs it, as `backtest.run` would); None for portfolio ones."""
        from quant_platform import backtest

        if backtest.get_strategy(strategy).universe != "single":
            return None
        if data.prepared is None:
            data.prepared = prepared_bars(data.frames)
        return data.prepared

    def flush(self) -> dict[str, str]:
        """Hand the pending requests' equity and trades to the writer thread (one insert per table)
        and return the outcomes of the chunk it wrote before. The insert runs in native code without
        the GIL, so the next chunk's backtests run meanwhile; a chunk's requests end succeeded only
        once its write is done (`collect`)."""
        outcomes = self.collect()
        chunk, self.pending = self.pending, []
        if chunk:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cold-writer")
            self._inflight = (chunk, self._writer.submit(self._write, chunk))
        return outcomes

    def collect(self) -> dict[str, str]:
        """Wait for the chunk being written and end its requests succeeded. If its write failed, its
        rows are removed and each request is written alone, so only a request whose own write fails
        ends failed."""
        if self._inflight is None:
            return {}
        chunk, future = self._inflight
        try:
            future.result()
        except Exception as exc:
            self._inflight = None
            self.log.warning(f"writing {len(chunk)} backtest runs at once failed ({_short(exc)}): one by one")
            self.drop_results([s.run_id for s in chunk])
            return {s.run_id: self._write_alone(s) for s in chunk}
        self._inflight = None
        return {s.run_id: self._finish(s) for s in chunk}

    def _write(self, chunk: list[_Simulated]) -> None:
        equity = [_equity_rows(s.run_id, s.out) for s in chunk]
        trades = [_trade_rows(s.run_id, s.out["trades"]) for s in chunk if len(s.out["trades"])]
        with self.cold() as cold:
            cold.append_arrow(BACKTEST_EQUITY, pd.concat(equity, ignore_index=True))
            if trades:
                cold.append_arrow(BACKTEST_TRADES, pd.concat(trades, ignore_index=True))

    def _write_alone(self, simulated: _Simulated) -> str:
        try:
            self._write([simulated])
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.drop_results([simulated.run_id])
            return self.fail(simulated.run_id, exc)
        return self._finish(simulated)

    def _finish(self, simulated: _Simulated) -> str:
        run_id, out = simulated.run_id, simulated.out
        progress.publish(self.hot, run_id, "written")
        try:
            stats = {**out["stats"], "window": list(simulated.window)}
            self.warm.finish_run(run_id, stats=stats, result_hash=out["result_hash"])
        except IllegalTransition:  # cancelled between the simulation and now
            self.drop_results([run_id])
            return self.ended(run_id, "cancelled", "cancelled")
        return self.ended(run_id, "succeeded", "finished")


@dg.op(
    name=OP,
    pool=COLD_POOL,
    description="Execute a batch of API-requested backtest runs (config: run_ids), each to its own end.",
)
def run_backtest_request(
    context: dg.OpExecutionContext,
    config: BacktestRequestConfig,
    clickhouse: ClickHouseResource,
    warehouse: WarehouseResource,
    hot: HotCacheResource,
) -> dg.Output[dict]:
    outcomes: dict[str, str] = {}
    with warehouse.open() as warm:
        batch = _Batch(context, warm, clickhouse, hot.store())
        try:
            for run_id in config.run_ids:
                outcomes[run_id] = batch.execute(run_id)
                if len(batch.pending) >= WRITE_CHUNK:
                    outcomes.update(batch.flush())
            outcomes.update(batch.flush())
            outcomes.update(batch.collect())
        finally:
            batch.close()
    failed = [r for r, status in outcomes.items() if status == "failed"]
    if failed:
        raise dg.Failure(
            f"{len(failed)} of {len(outcomes)} backtest runs failed: {', '.join(failed[:10])}",
            metadata={"outcomes": outcomes},
            allow_retries=False,
        )
    return dg.Output(outcomes, metadata={"runs": len(outcomes)})


backtest_request_job = dg.JobDefinition(
    graph_def=dg.GraphDefinition(name=JOB, node_defs=[run_backtest_request]),
    name=JOB,
    tags={EMBEDDED_TAG: "true"},
    description="Backtest runs requested through the HTTP API (config: run_ids, a batch), launched by "
    "backtest_request_sensor.",
)
