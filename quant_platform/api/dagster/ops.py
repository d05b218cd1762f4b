"""The `backtest_request` job: one API-requested backtest run, executed like `backtest_runs` does.

The run's record (queued, written by the API) moves to running, the strategy runs on the klines of
the backtest's universe, frequency and window (`assets.backtests.run_universe`, i.e. `backtest.run`
per symbol, annualised by the bars per trading day as `backtest run --frequency` does),
equity and trades go to the cold tier, and the record ends succeeded with its stats, or failed with
the reason. A run cancelled in the meantime is left cancelled and its results are removed.
"""

import contextlib

import dagster as dg

from quant_platform import __version__
from quant_platform.api.dagster.runs import JOB, OP
from quant_platform.assets.backtests import (
    BacktestRunsConfig,
    _equity_rows,
    _trade_rows,
    bars_table,
    data_version,
    run_universe,
)
from quant_platform.conventions import COLD_POOL, EMBEDDED_TAG
from quant_platform.core.schema import BACKTEST_EQUITY, BACKTEST_TRADES
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.storage.warm import IllegalTransition, Status


class BacktestRequestConfig(dg.Config):
    run_id: str


def _short(exc: BaseException) -> str:
    """The reason stored and shown for a failed run: type and first line, never a traceback."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}"


@dg.op(name=OP, pool=COLD_POOL, description="Execute one API-requested backtest run (config: run_id).")
def run_backtest_request(
    context: dg.OpExecutionContext,
    config: BacktestRequestConfig,
    clickhouse: ClickHouseResource,
    warehouse: WarehouseResource,
) -> dg.Output[dict]:
    run_id = config.run_id
    with warehouse.open() as warm:
        run = warm.get_run(run_id)
        if run.status is not Status.QUEUED:
            context.log.info(f"run {run_id} is {run.status}: nothing to do")
            return dg.Output({"run_id": run_id, "status": str(run.status)})
        bt = warm.get_backtest(run.backtest_id)
        ctx = bt.config["context"]
        start, end, symbols = ctx["window"]["start"], ctx["window"]["end"], ctx["universe"]
        frequency = ctx.get("frequency", "1d")
        table = bars_table(frequency)  # the backtest run CLI's reading: klines_daily or bars_5m/15m
        with clickhouse.open() as cold:
            klines = cold.read_table(table, start, end, symbols=symbols)
        if klines.empty:
            reason = f"no {table} for {', '.join(symbols[:5])} between {start} and {end}"
            warm.fail_run(run_id, reason)
            raise dg.Failure(reason, allow_retries=False)
        warm.start_run(run_id, data_version=data_version(klines), code_version=__version__)
        cfg = BacktestRunsConfig(strategy=bt.strategy, symbols=list(symbols), frequency=frequency).model_copy(
            update={"params": dict(run.params)}
        )
        try:
            out = run_universe(klines, cfg)
            if warm.get_run(run_id).status is Status.CANCELLED:
                context.log.info(f"run {run_id} was cancelled while it ran: results dropped")
                return dg.Output({"run_id": run_id, "status": "cancelled"})
            with clickhouse.open() as cold:
                cold.append(BACKTEST_EQUITY, _equity_rows(run_id, out))
                cold.append(BACKTEST_TRADES, _trade_rows(run_id, out["trades"]))
        except Exception as exc:
            with contextlib.suppress(IllegalTransition):
                warm.fail_run(run_id, _short(exc))
            with clickhouse.open() as cold:
                cold.delete_run(run_id)
            raise dg.Failure(f"backtest run {run_id} failed: {_short(exc)}", allow_retries=False) from None
        try:
            warm.finish_run(
                run_id,
                stats={**out["stats"], "window": [start, end]},
                result_hash=out["result_hash"],
            )
        except IllegalTransition:  # cancelled between the write and now
            with clickhouse.open() as cold:
                cold.delete_run(run_id)
            return dg.Output({"run_id": run_id, "status": "cancelled"})
    return dg.Output({"run_id": run_id, "status": "succeeded", "stats": out["stats"]})


backtest_request_job = dg.JobDefinition(
    graph_def=dg.GraphDefinition(name=JOB, node_defs=[run_backtest_request]),
    name=JOB,
    tags={EMBEDDED_TAG: "true"},
    description="One backtest run requested through the HTTP API (config: run_id), launched by "
    "backtest_request_sensor.",
)
