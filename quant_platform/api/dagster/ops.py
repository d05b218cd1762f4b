"""The `backtest_request` job: a batch of API-requested backtest runs, each executed like `backtest_runs`.

For each request of the batch, in order: a record still queued is picked up (event `started`), the
klines (or 5m / 15m bars, by the backtest's frequency) of its universe and window are read (shared
by the requests of the batch that ask for the same data), the record moves to running
(`data_loaded`), the strategy runs (`assets.backtests.run_universe`, `simulated`), equity and trades
go to the cold tier (`written`) and the record ends succeeded with its stats (`finished`), or failed
with the reason. Events go to the hot tier's `runs.{run_id}` channel (`api.progress`). A request
cancelled in the meantime is left cancelled and its results removed. A failing request does not
stop the others; the Dagster run fails at the end if any request failed.
"""

import contextlib
import time
from collections.abc import Iterator
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


class BacktestRequestConfig(dg.Config):
    run_ids: list[str]


def _short(exc: BaseException) -> str:
    """The reason stored and shown for a failed run: type and first line, never a traceback."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}"


class _Batch:
    """What the requests of one Dagster run share: the stores, the log and the klines read so far."""

    def __init__(self, context: dg.OpExecutionContext, warm: WarmStore, clickhouse, hot: HotStore) -> None:
        self.log, self.warm, self.clickhouse, self.hot = context.log, warm, clickhouse, hot
        self._klines: dict[tuple, tuple[pd.DataFrame, str, dict]] = {}
        self._cold: contextlib.ExitStack | None = None
        self._store: Any = None
        self._opened = 0.0

    @contextlib.contextmanager
    def cold(self) -> Iterator[Any]:
        """The cold store, reused while it was opened less than COLD_HOLD_SECONDS ago."""
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
        if self._cold is not None:
            cold, self._cold, self._store = self._cold, None, None
            cold.close()

    def klines(self, table: str, symbols: list[str], start: str, end: str) -> tuple[pd.DataFrame, str, dict]:
        """The bars of a universe and window, their data version and per-symbol frames, read once."""
        key = (table, tuple(symbols), start, end)
        if key not in self._klines:
            if len(self._klines) >= KLINES_CACHE:
                self._klines.pop(next(iter(self._klines)))
            with self.cold() as cold:
                klines = cold.read_table(table, start, end, symbols=symbols)
            version = data_version(klines) if not klines.empty else ""
            frames = ohlcv_frames(klines) if not klines.empty else {}
            self._klines[key] = (klines, version, frames)
        return self._klines[key]

    def ended(self, run_id: str, status: str, stage: str, **extra: Any) -> str:
        progress.publish(self.hot, run_id, stage, status, **extra)
        return status

    def drop_results(self, run_id: str) -> None:
        with self.cold() as cold:
            cold.delete_run(run_id)

    def execute(self, run_id: str) -> str:
        """One request, to its end: returns succeeded, failed, cancelled or skipped."""
        warm = self.warm
        run = warm.get_run(run_id)
        if run.status is not Status.QUEUED:
            self.log.info(f"run {run_id} is {run.status}: nothing to do")
            return "skipped"
        progress.publish(self.hot, run_id, "started")
        bt = warm.get_backtest(run.backtest_id)
        ctx = bt.config["context"]
        start, end, symbols = ctx["window"]["start"], ctx["window"]["end"], list(ctx["universe"])
        frequency = ctx.get("frequency", "1d")
        table = bars_table(frequency)  # klines_daily, or bars_5m / bars_15m for intraday backtests
        klines, version, frames = self.klines(table, symbols, start, end)
        if klines.empty:
            reason = f"no {table} for {', '.join(symbols[:5])} between {start} and {end}"
            with contextlib.suppress(IllegalTransition):
                warm.fail_run(run_id, reason)
            return self.ended(run_id, "failed", "failed", error=reason)
        try:
            warm.start_run(run_id, data_version=version, code_version=__version__)
        except IllegalTransition:  # cancelled (or taken by another batch) since it was read
            return "skipped"
        progress.publish(self.hot, run_id, "data_loaded", rows=len(klines))
        cfg = BacktestRunsConfig(strategy=bt.strategy, symbols=symbols, frequency=frequency).model_copy(
            update={"params": dict(run.params)}
        )
        try:
            out = run_universe(klines, cfg, frames)
            if warm.get_run(run_id).status is Status.CANCELLED:
                self.log.info(f"run {run_id} was cancelled while it ran: results dropped")
                return self.ended(run_id, "cancelled", "cancelled")
            progress.publish(self.hot, run_id, "simulated")
            with self.cold() as cold:
                cold.append(BACKTEST_EQUITY, _equity_rows(run_id, out))
                cold.append(BACKTEST_TRADES, _trade_rows(run_id, out["trades"]))
            progress.publish(self.hot, run_id, "written")
        except Exception as exc:
            with contextlib.suppress(IllegalTransition):
                warm.fail_run(run_id, _short(exc))
            self.drop_results(run_id)
            self.log.error(f"backtest run {run_id} failed: {_short(exc)}")
            return self.ended(run_id, "failed", "failed", error=_short(exc))
        except BaseException:  # the Dagster run is being terminated: leave no half-written results
            with contextlib.suppress(Exception):
                self.drop_results(run_id)
            raise
        try:
            stats = {**out["stats"], "window": [start, end]}
            warm.finish_run(run_id, stats=stats, result_hash=out["result_hash"])
        except IllegalTransition:  # cancelled between the write and now
            self.drop_results(run_id)
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
        finally:
            batch.release()
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
