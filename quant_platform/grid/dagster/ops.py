"""The ops of a grid run: one grid request evaluated in batches, ranked, stored, and its winner activated.

They make up the graph of the `grid_search_results` asset (`grid.dagster.assets`):

    grid_load_klines --work, data, batches (DynamicOut)--> grid_evaluate_batch[b00000 .. bNNNNN]
                     --> (collect) grid_write_results

* `grid_load_klines` reads the request from the warm tier and the klines of its window from the cold
  tier, once: the embedded cold store allows one process per data path, so no batch touches it. It
  converts the klines for the engine (`data`, pickled to the batches by the IO manager; 5 years x
  100 symbols is about 8 MB), plans the batches and emits one dynamic output per batch.
* `grid_evaluate_batch` gets the data as a plain input, so a batch runs in any process: the
  in-process executor locally, the multiprocess executor or Celery workers in prod. Before it
  evaluates, it stops if the request was cancelled, if the time budget is spent, or if the objective
  has not improved for `early_stop` finished batches. Then it reports progress (warm tier
  `update_grid_progress`, hot tier events on `runs.{request_id}`). A failing batch is retried
  (`BATCH_RETRY`).
* `grid_write_results` ranks every combination, replaces the request's rows in the cold table
  `grid_search_results`, decides whether the winner becomes the strategy's active parameter version
  (`grid.winner.decide`: by default only when every planned combination was evaluated and the best
  objective is finite and positive; otherwise it is kept inactive with the reason), and finishes
  the request.

When a step fails for good, a failure hook fails the request with the step's error. A cancelled
request produces no materialization.
"""

import dataclasses
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pandas as pd

from quant_platform.assets.common import STORE_RETRY, preview, store_step
from quant_platform.conventions import COLD_POOL
from quant_platform.core.plots import markdown_image
from quant_platform.core.schema import GRID_RESULTS
from quant_platform.grid import evaluate as ev
from quant_platform.grid import progress
from quant_platform.grid.runs import request_id_from
from quant_platform.grid.spec import GridSpec, GridSpecError
from quant_platform.grid.summary import grid_summary
from quant_platform.grid.validation import holdout_markdown, holdout_report, overfitting_report
from quant_platform.grid.walkforward import walk_forward_markdown, walk_forward_report
from quant_platform.grid.winner import DEFLATED_SHARPE_GATE, activate_winner, decide, save_inactive
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.hot import HotCacheResource
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.storage.warm import GridRequest, IllegalTransition, NotFound, Status, WarmStoreError

KLINE_COLUMNS = ["symbol", "trade_date", "open", "high", "low", "close", "volume", "limit_up", "limit_down"]
BAR_COLUMNS = ["symbol", "trade_date", "ts", "open", "high", "low", "close", "volume"]
# A batch is pure computation on data it was given: a failure is a lost worker or a bug, not a busy
# store, so the retries come quickly.
BATCH_RETRY = dg.RetryPolicy(
    max_retries=2, delay=0.5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


class GridSearchConfig(dg.Config):
    """Which grid request this run evaluates (set by `grid_request_sensor`)."""

    request_id: str


@dataclass(frozen=True)
class Work:
    """What every step of a grid run needs besides the data."""

    request_id: str
    body: dict[str, Any]
    batches: int
    valid: int
    planned: int
    skipped: int
    symbols: list[str]
    missing_symbols: list[str]
    deadline: float | None  # epoch seconds; batches starting later are skipped
    stopped: str | None = None  # set when nothing is evaluated (e.g. cancelled before the start)

    @property
    def spec(self) -> GridSpec:
        return GridSpec.from_body(self.body)


@dataclass
class BatchResult:
    index: int
    rows: pd.DataFrame  # per-symbol statistics (grid rows with combo_id)
    agg: pd.DataFrame  # per combination (ev.aggregate)
    combinations: int
    best_params: dict[str, Any] | None = None
    best_objective: float | None = None
    stopped: str | None = None  # cancelled | time_budget | early_stop | request <status>
    seconds: float = 0.0
    worker: dict[str, Any] = field(default_factory=dict)


def _worker() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _publish(hot: HotCacheResource, request_id: str, event: dict[str, Any]) -> None:
    """Hot-tier progress event on `runs.{request_id}`; the hot tier being down never fails a run."""
    hot.store().publish_run_event(request_id, event)


def request_id_of_run(run: dg.DagsterRun | None) -> str | None:
    """The grid request a run evaluates: its tag, else its run config."""
    if run is None:
        return None
    return request_id_from(run.tags, run.run_config)


@dg.failure_hook(required_resource_keys={"warehouse", "hot"})
def fail_grid_request_hook(context: dg.HookContext) -> None:
    """A step failed for good (retries exhausted or not retryable): fail the request with the reason."""
    request_id = request_id_of_run(context.instance.get_run_by_id(context.run_id))
    if not request_id:
        return
    exc = context.op_exception
    reason = exc.description if isinstance(exc, dg.Failure) and exc.description else f"{exc!r}"
    message = f"step {context.step_key} failed: {reason}"
    with context.resources.warehouse.open() as warm:
        try:
            request = warm.get_grid_request(request_id)
            if not request.status.terminal:
                warm.fail_grid_request(request_id, message)
        except WarmStoreError as err:  # the store is down too: the sensor reconciles later
            context.log.warning(f"could not fail grid request {request_id}: {err}")
            return
    _publish(context.resources.hot, request_id, {"type": "finished", "status": "failed", "error": message})


# ----------------------------------------------------------------------------------------------- ops


def _final(message: str) -> dg.Failure:
    return dg.Failure(description=message, allow_retries=False)


@dg.op(
    ins={"klines_daily": dg.In(dg.Nothing)},
    out={"work": dg.Out(), "data": dg.Out(), "holdout_data": dg.Out(), "batches": dg.DynamicOut()},
    retry_policy=STORE_RETRY,
    pool=COLD_POOL,
    tags={"kind": "clickhouse"},
)
@store_step
def grid_load_klines(
    context: dg.OpExecutionContext,
    config: GridSearchConfig,
    clickhouse: ClickHouseResource,
    warehouse: WarehouseResource,
    hot: HotCacheResource,
):
    """Read the request and its klines (the only step besides the write that opens the cold store),
    convert them for the engine once, plan the batches."""
    rid = config.request_id
    with warehouse.open() as warm:
        try:
            request = warm.get_grid_request(rid)
        except NotFound:
            raise _final(f"grid request {rid!r} does not exist") from None
    if request.status is Status.CANCELLED:
        context.log.info(f"grid request {rid} was cancelled before it started")
        _publish(hot, rid, {"type": "finished", "status": "cancelled", "progress": request.progress})
        yield dg.Output(_empty_work(request, "cancelled"), "work")
        yield dg.Output({}, "data")
        yield dg.Output({}, "holdout_data")
        return
    if request.status is not Status.RUNNING:
        raise _final(
            f"grid request {rid} is {request.status}; only running requests are evaluated "
            "(grid_request_sensor claims queued requests and launches their runs)"
        )
    try:
        spec = GridSpec.from_body(request.body)
    except GridSpecError as exc:
        raise _final(f"invalid grid request: {exc}") from None
    table, columns = _source(spec)
    with clickhouse.open() as cold:
        klines = cold.read_table(
            table,
            spec.start,
            spec.end,
            symbols=list(spec.symbols) if spec.symbols is not None else None,
            columns=columns,
        )
    counts = klines.groupby("symbol").size() if len(klines) else pd.Series(dtype=int)
    usable = sorted(counts[counts >= 2].index)
    klines = klines[klines["symbol"].isin(usable)].reset_index(drop=True)
    which = "every symbol" if spec.symbols is None else f"{len(spec.symbols)} symbol(s)"
    if not usable:
        raise _final(
            f"no {table} for {which} between {spec.start} and {spec.end} (a symbol needs at "
            "least 2 bars): materialize the market data first (quant-platform run)"
        )
    missing = sorted(set(spec.symbols or ()) - set(usable))
    if missing:
        context.log.warning(
            f"no usable {table} for {len(missing)} symbol(s), searched without them: {missing[:10]}"
        )
    spec = _frequency_settings(spec, klines)
    try:
        data = ev.universe(klines)
    except ValueError as exc:  # e.g. NaN prices: bad data, not a transient error
        raise _final(f"{table} between {spec.start} and {spec.end} are unusable: {exc}") from None
    full: dict = {}
    if spec.holdout is not None:  # in-sample + holdout, read now: batches never see the holdout
        with clickhouse.open() as cold:
            both = cold.read_table(table, spec.start, spec.holdout[1], symbols=usable, columns=columns)
        try:
            full = ev.universe(both)
        except ValueError as exc:
            raise _final(f"{table} up to the holdout's end are unusable: {exc}") from None
    plan = ev.plan_batches(spec, symbols=len(usable))
    deadline = time.time() + spec.time_budget if spec.time_budget is not None else None
    work = Work(
        request_id=rid,
        body=spec.body(),
        batches=len(plan.batches),
        valid=plan.valid,
        planned=plan.planned,
        skipped=plan.skipped,
        symbols=usable,
        missing_symbols=missing,
        deadline=deadline,
    )
    _publish(
        hot,
        rid,
        {
            "type": "started",
            "progress": 0.0,
            "batches": work.batches,
            "combinations": plan.planned,
            "symbols": len(usable),
            "bars": len(klines),
        },
    )
    context.log.info(
        f"grid request {rid}: {plan.planned} of {plan.valid} valid combinations x {len(usable)} symbols "
        f"({len(klines)} klines) in {work.batches} batches"
    )
    yield dg.Output(work, "work", metadata={"combinations": plan.planned, "symbols": len(usable)})
    yield dg.Output(data, "data", metadata={"symbols": len(data), "klines": len(klines)})
    yield dg.Output(full, "holdout_data", metadata={"symbols": len(full)})
    for batch in plan.batches:
        yield dg.DynamicOutput(batch, mapping_key=batch.key, output_name="batches")


def _source(spec: GridSpec) -> tuple[str, list[str]]:
    """The cold table and columns of the search's frequency (as `backtest run --frequency` reads)."""
    from quant_platform.assets.backtests import bars_table

    table = bars_table(spec.frequency)
    return table, KLINE_COLUMNS if spec.frequency == "1d" else BAR_COLUMNS


def _frequency_settings(spec: GridSpec, bars: pd.DataFrame) -> GridSpec:
    """Intraday searches annualise by the bars per trading day (`assets.backtests.periods_per_year`,
    as `backtest run` does; a `periods_per_year` setting of the request wins) and have no price
    limits (bars carry none)."""
    if spec.frequency == "1d":
        return spec
    from quant_platform.assets.backtests import periods_per_year

    settings = {"periods_per_year": periods_per_year(bars), **spec.settings, "price_limit": False}
    return dataclasses.replace(spec, settings=settings)


def _empty_work(request: GridRequest, stopped: str) -> Work:
    return Work(request.id, dict(request.body), 0, 0, 0, 0, [], [], None, stopped=stopped)


def _finished_batches(context: dg.OpExecutionContext) -> list[tuple[str, float | None, dict | None]]:
    """(step key, best objective, best params) of this run's batches that finished, in finishing order.

    Read from the run's event log, which every executor (in-process, multiprocess, Celery) shares.
    """
    prefix = f"{context.op_handle}["
    records = context.instance.get_records_for_run(
        context.run_id, of_type=dg.DagsterEventType.STEP_OUTPUT
    ).records
    out: list[tuple[str, float | None, dict | None]] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or not (event.step_key or "").startswith(prefix):
            continue
        meta = event.step_output_data.metadata
        if "best_objective" not in meta or not meta["evaluated"].value:
            continue
        value = meta["best_objective"].value
        params = meta["best_params"].value if "best_params" in meta else None
        out.append((event.step_key, value if value is not None and math.isfinite(value) else None, params))
    return out


def _skip(spec: GridSpec, batch: ev.Batch, reason: str, t0: float) -> BatchResult:
    return BatchResult(
        index=batch.index,
        rows=pd.DataFrame(),
        agg=ev.aggregate(pd.DataFrame(), spec),
        combinations=0,
        stopped=reason,
        seconds=time.perf_counter() - t0,
        worker=_worker(),
    )


def _batch_output(result: BatchResult) -> dg.Output:
    best = result.best_objective
    return dg.Output(
        result,
        metadata={
            "batch": result.index,
            "evaluated": result.stopped is None,
            "stopped": result.stopped or "",
            "combinations": result.combinations,
            "best_objective": dg.MetadataValue.float(best if best is not None else float("nan")),
            "best_params": dg.MetadataValue.json(result.best_params or {}),
            "seconds": round(result.seconds, 3),
            "worker": dg.MetadataValue.json(result.worker),
        },
    )


@dg.op(retry_policy=BATCH_RETRY, tags={"kind": "numba"})
def grid_evaluate_batch(
    context: dg.OpExecutionContext,
    work: Work,
    data: dict,
    batch: ev.Batch,
    warehouse: WarehouseResource,
    hot: HotCacheResource,
) -> dg.Output:
    """Evaluate one batch of combinations on every symbol, unless the search has to stop."""
    t0 = time.perf_counter()
    spec = work.spec
    step_key = f"{context.op_handle}[{context.get_mapping_key()}]"
    with warehouse.open() as warm:
        request = warm.get_grid_request(work.request_id)
        if request.status is not Status.RUNNING:
            reason = "cancelled" if request.status is Status.CANCELLED else f"request {request.status}"
            context.log.info(f"batch {batch.index}: grid request is {request.status}, not evaluated")
            return _batch_output(_skip(spec, batch, reason, t0))
        if work.deadline is not None and time.time() >= work.deadline:
            context.log.info(f"batch {batch.index}: time budget of {spec.time_budget}s spent, not evaluated")
            return _batch_output(_skip(spec, batch, "time_budget", t0))
        history = _finished_batches(context)
        stalled = progress.should_stop_early([h[1] for h in history], spec.early_stop, spec.direction)
        if stalled is not None:
            context.log.info(f"batch {batch.index}: no better {spec.objective} for {stalled} batches")
            return _batch_output(_skip(spec, batch, "early_stop", t0))

        rows = ev.evaluate_batch(data, spec, batch)
        agg = ev.aggregate(rows, spec)
        best_params, best_objective = ev.best_of(agg, spec.direction)
        result = BatchResult(
            index=batch.index,
            rows=rows,
            agg=agg,
            combinations=len(agg),
            best_params=best_params,
            best_objective=best_objective,
            seconds=time.perf_counter() - t0,
            worker=_worker(),
        )

        # Progress: batches finished in this run (this one included) and the best combination so far.
        done = {h[0] for h in history} | {step_key}
        overall = progress.best_so_far(
            ((value, params) for _, value, params in history), (best_params, best_objective), spec.direction
        )
        percent = progress.batch_progress(len(done), work.batches)
        current = warm.get_grid_request(work.request_id)
        if current.status is Status.RUNNING:  # progress only grows, whatever order batches end in
            current = warm.update_grid_progress(
                work.request_id, max(percent, current.progress), best_params=overall[0]
            )
    _publish(
        hot,
        work.request_id,
        {
            "type": "progress",
            "progress": current.progress,
            "batch": batch.index,
            "batches_done": len(done),
            "batches": work.batches,
            "best_objective": overall[1],
            "best_params": overall[0],
            "objective": spec.objective,
        },
    )
    context.log.info(
        f"batch {batch.index}: {len(agg)} combinations x {len(work.symbols)} symbols in "
        f"{result.seconds:.2f}s, best {spec.objective} {best_objective}"
    )
    return _batch_output(result)


def _stopped(work: Work, results: list[BatchResult]) -> str:
    reasons = [r.stopped for r in sorted(results, key=lambda r: r.index)]
    return progress.outcome(reasons, work.planned, work.valid)


@dg.op(
    out=dg.Out(is_required=False),
    retry_policy=STORE_RETRY,
    pool=COLD_POOL,
    tags={"kind": "clickhouse"},
)
@store_step
def grid_write_results(
    context: dg.OpExecutionContext,
    work: Work,
    data: dict,
    holdout_data: dict,
    results: list[BatchResult],
    clickhouse: ClickHouseResource,
    warehouse: WarehouseResource,
    hot: HotCacheResource,
):
    """Rank, store and activate the winner; finish the request. Nothing is written for a cancelled one."""
    t0 = time.perf_counter()
    rid = work.request_id
    with warehouse.open() as warm:
        request = warm.get_grid_request(rid)
    if request.status is not Status.RUNNING:
        context.log.info(f"grid request {rid} is {request.status}: no results written")
        if request.status is Status.CANCELLED:
            _publish(hot, rid, {"type": "finished", "status": "cancelled", "progress": request.progress})
        return
    spec = work.spec
    evaluated = [r for r in results if r.stopped is None]
    rows = pd.concat([r.rows for r in evaluated], ignore_index=True) if evaluated else pd.DataFrame()
    agg = pd.concat([r.agg for r in evaluated]) if evaluated else ev.aggregate(pd.DataFrame(), spec)
    stopped = _stopped(work, results)
    if agg.empty:
        with warehouse.open() as warm:  # the request fails (hook) but says how far it got
            counts = {"stopped": stopped, "evaluated": 0, "planned": work.planned, "valid": work.valid}
            reason = "no combination was evaluated"
            warm.set_grid_summary(rid, {**counts, "activation": {"action": "none", "reason": reason}})
        raise _final(f"no combination was evaluated (stopped: {stopped})")
    ranked = ev.rank(agg, spec.direction)
    frame = ev.results_frame(rid, rows, ranked, spec.objective)
    best_params, best_objective = ev.best_of(agg, spec.direction)
    # Everything that can fail without a store is done before the request is finished.
    try:  # how likely the winner is to be luck; a statistics problem never loses the results
        overfit = overfitting_report(data, spec, ranked)
    except (ValueError, ArithmeticError) as exc:
        context.log.warning(f"grid request {rid}: overfitting statistics failed: {exc}")
        overfit = {"n_trials": len(ranked), "pbo": None, "deflated_sharpe": None, "note": str(exc)[:300]}
    holdout = holdout_report(holdout_data, spec, ranked) if holdout_data else []
    walk = _walk_forward(context, work, spec, evaluated, data)
    png = ev.heatmap_png(ranked, spec, f"{spec.strategy} {spec.start}..{spec.end}: {spec.objective}")
    top = ev.markdown_table(ranked)
    t_rank = time.perf_counter()
    with clickhouse.open() as cold:
        written = cold.write_grid_results(rid, frame)
    t_write = time.perf_counter()

    with warehouse.open() as warm:
        if warm.get_grid_request(rid).status is not Status.RUNNING:  # cancelled while writing
            with clickhouse.open() as cold:
                cold.delete_grid_results(rid)
            context.log.info(f"grid request {rid} was cancelled while its results were written")
            return
        activate, reason = decide(
            spec.activate,
            stopped=stopped,
            objective=spec.objective,
            best=best_objective,
            gates={
                "deflated_sharpe": (overfit["deflated_sharpe"], DEFLATED_SHARPE_GATE),
                **({"holdout_sharpe": (holdout[0]["oos_sharpe"], 0.0)} if holdout else {}),
                **({"walk_forward_oos_sharpe": (walk["oos"]["sharpe"], 0.0)} if walk else {}),
            },
        )
        if best_params is None or best_objective is None:
            saved = {"action": "none: no combination has a finite objective", "reason": reason}
        elif activate:
            saved = {**activate_winner(warm, spec, rid, best_params, best_objective), "reason": reason}
        else:
            saved = save_inactive(warm, spec, rid, best_params, best_objective, reason)
        saved["policy"] = spec.activate
        counts = {
            "valid": work.valid,
            "planned": work.planned,
            "evaluated": len(ranked),
            "invalid_skipped": work.skipped,
            "batches": work.batches,
            "batches_evaluated": len(evaluated),
        }
        found = (best_params, best_objective, overfit, holdout, walk, saved)
        summary = grid_summary(spec, stopped, counts, *found)
        try:
            warm.finish_grid_request(rid, best_params=best_params, summary=summary)
        except IllegalTransition:
            context.log.info(f"grid request {rid} was cancelled before it finished: results discarded")
            with clickhouse.open() as cold:
                cold.delete_grid_results(rid)
            return
    _publish(
        hot,
        rid,
        {
            "type": "finished",
            "status": "succeeded",
            "progress": 100.0,
            "stopped": stopped,
            "best_params": best_params,
            "best_objective": best_objective,
            "objective": spec.objective,
            "activation": saved,
            "overfitting": overfit,
            "holdout": holdout,
            "walk_forward": walk,
        },
    )
    seconds = {
        "evaluate_total": round(sum(r.seconds for r in results), 3),
        "rank_and_plot": round(t_rank - t0, 3),
        "write": round(t_write - t_rank, 3),
    }
    metadata: dict[str, Any] = {
        "request_id": rid,
        "strategy": spec.strategy,
        "objective": f"{spec.objective} ({spec.direction}, mean over symbols)",
        "window": f"{spec.start} .. {spec.end}",
        "symbols": len(work.symbols),
        "stopped": stopped,
        "combinations": dg.MetadataValue.json(counts),
        "dagster/row_count": written,
        "best_params": dg.MetadataValue.json(best_params or {}),
        "best_objective": float(best_objective) if best_objective is not None else float("nan"),
        "param_version": dg.MetadataValue.json(saved),
        "overfitting": dg.MetadataValue.json(overfit),
        "probability_of_overfitting": overfit["pbo"] if overfit["pbo"] is not None else float("nan"),
        "deflated_sharpe": (
            overfit["deflated_sharpe"] if overfit["deflated_sharpe"] is not None else float("nan")
        ),
        "top_combinations": dg.MetadataValue.md(top),
        "seconds": dg.MetadataValue.json(seconds),
        "table": f"{GRID_RESULTS.name} (request_id = '{rid}')",
    }
    if holdout:
        metadata["holdout"] = dg.MetadataValue.md(holdout_markdown(spec, holdout))
        metadata["holdout_sharpe"] = float(holdout[0]["oos_sharpe"])
    if walk:
        metadata["walk_forward"] = dg.MetadataValue.md(walk_forward_markdown(walk))
        metadata["walk_forward_oos_sharpe"] = float(walk["oos"]["sharpe"])
    if spec.frequency != "1d":
        metadata["frequency"] = spec.frequency
    if work.missing_symbols:
        metadata["missing_symbols"] = dg.MetadataValue.json(work.missing_symbols)
    if png is not None:
        metadata["heatmap"] = dg.MetadataValue.md(markdown_image(png, f"{spec.objective} heatmap"))
    if len(frame):
        metadata["preview"] = preview(frame.drop(columns=["created_at"]))
    context.log.info(
        f"grid request {rid}: {len(ranked)} combinations ranked, {written} rows written, "
        f"best {spec.objective} {best_objective} with {best_params} ({saved.get('action')})"
    )
    yield dg.Output(
        {
            "request_id": rid,
            "best_params": best_params,
            "best_objective": best_objective,
            "rows": written,
            "stopped": stopped,
            "activation": saved,
            "overfitting": overfit,
            "holdout": holdout,
            "walk_forward": walk,
        },
        metadata=metadata,
    )


def _walk_forward(
    context: dg.OpExecutionContext, work: Work, spec: GridSpec, evaluated: list[BatchResult], data: dict
) -> dict[str, Any] | None:
    """The walk-forward folds of a search that asked for them, over the batches it evaluated. When they
    cannot be computed the report says why and carries a NaN out-of-sample Sharpe, so the gate blocks."""
    if not spec.walk_forward:
        return None
    batches = ev.plan_batches(spec, symbols=len(work.symbols)).batches
    try:
        return walk_forward_report(data, spec, [batches[r.index] for r in evaluated])
    except (ValueError, ArithmeticError) as exc:
        context.log.warning(f"grid request {work.request_id}: walk-forward failed: {exc}")
        nan = float("nan")
        oos = {"total_return": nan, "sharpe": nan, "max_drawdown": nan, "bars": 0}
        return {"folds_n": spec.walk_forward, "folds": [], "oos": oos, "note": str(exc)[:300]}
