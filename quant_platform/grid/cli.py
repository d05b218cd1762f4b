"""`quant-platform grid`: submit, inspect, cancel and list grid searches.

Exit codes: 0 ok; 1 the request or the store is not there; 2 an invalid request or an idempotency
key already used for a different request.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

grid_app = typer.Typer(help="Grid search over strategy parameters.", no_args_is_help=True)
console = Console()


def _fail(message: str, code: int) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(code)


def _record(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "status": str(r.status),
        "progress": r.progress,
        "strategy": r.body.get("strategy"),
        "objective": r.body.get("objective"),
        "best_params": r.best_params,
        "error": r.error,
        "idempotency_key": r.idempotency_key,
        "created_at": r.created_at.isoformat() if r.created_at else None,
        "started_at": r.started_at.isoformat() if r.started_at else None,
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "body": r.body,
        "summary": r.summary,
    }


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, sort_keys=True))


def _errors():
    from quant_platform.grid.spec import GridSpecError
    from quant_platform.storage.warm import IdempotencyConflict, IllegalTransition, NotFound, StoreUnavailable

    return GridSpecError, IdempotencyConflict, IllegalTransition, NotFound, StoreUnavailable


@grid_app.command("submit")
def submit_command(
    strategy: str = typer.Option(..., help="Registered strategy, e.g. sma_cross"),
    param: list[str] = typer.Option(
        ..., "--param", "-p", help="name=start:stop:step (inclusive) or name=v1,v2,...; repeat per parameter"
    ),
    start: str = typer.Option(..., help="First trading day, YYYY-MM-DD"),
    end: str = typer.Option(..., help="Last trading day, YYYY-MM-DD"),
    symbols: str | None = typer.Option(None, help="Comma-separated codes, e.g. 600000.SH,600001.SH"),
    universe: str | None = typer.Option(None, help="'all': every symbol with klines in the window"),
    objective: str = typer.Option("sharpe", help="Statistic to optimise (mean over symbols)"),
    max_evals: int | None = typer.Option(None, min=1, help="Evaluate at most N combinations"),
    time_budget: float | None = typer.Option(None, min=0.001, help="Seconds of evaluation at most"),
    early_stop: int | None = typer.Option(
        None, min=1, help="Stop after PATIENCE batches without a better objective"
    ),
    batch_size: int | None = typer.Option(None, min=1, help="Combinations per batch (default: ~16 batches)"),
    watch: bool = typer.Option(False, "--watch", help="Re-run whenever new klines_daily land"),
    activate: str = typer.Option(
        "if-validated",
        "--activate",
        help="What happens to the winner: if-validated (active only when every planned combination "
        "was evaluated and the objective is positive), best (always), never",
    ),
    holdout: str | None = typer.Option(
        None,
        help="Out-of-sample window START..END after --end: parameters are chosen on --start..--end "
        "only, the top combinations are then measured on the holdout (shown side by side)",
    ),
    walk_forward: int | None = typer.Option(
        None,
        "--walk-forward",
        help="N anchored walk-forward folds (2..20) over --start..--end: each fold chooses on its "
        "in-sample part and is measured on the next segment; not with --holdout",
    ),
    frequency: str = typer.Option(
        "1d", help="Bar frequency: 1d (klines_daily), 5m or 15m (bars_5m, bars_15m)"
    ),
    setting: list[str] = typer.Option(
        [], "--setting", help="Engine setting name=value (JSON value), e.g. commission=0.0003"
    ),
    idempotency_key: str | None = typer.Option(
        None, help="Same key + same request returns the first request (default: the request's hash)"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the request as JSON"),
) -> None:
    """Queue a grid search; the grid_request_sensor launches it."""
    from quant_platform.grid import service
    from quant_platform.grid.spec import build_spec, parse_params

    GridSpecError, IdempotencyConflict, _, _, StoreUnavailable = _errors()
    try:
        settings = {}
        for item in setting:
            name, sep, raw = item.partition("=")
            if not sep or not name.strip():
                raise GridSpecError(f"--setting must look like name=value, got {item!r}")
            try:
                settings[name.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                settings[name.strip()] = raw
        spec = build_spec(
            strategy,
            parse_params(param),
            start=start,
            end=end,
            symbols=symbols,
            universe=universe,
            objective=objective,
            max_evals=max_evals,
            time_budget=time_budget,
            early_stop=early_stop,
            batch_size=batch_size,
            watch=watch,
            settings=settings,
            activate=activate,
            holdout=holdout,
            frequency=frequency,
            walk_forward=walk_forward,
        )
    except GridSpecError as exc:
        raise _fail(f"invalid grid request: {exc}", 2) from None
    body = spec.body()
    key = idempotency_key or service.default_idempotency_key(body)
    try:
        with service.open_store() as store:
            existing = store.find_grid_request(key)
            request = service.submit_spec(spec, idempotency_key=key, store=store)
    except IdempotencyConflict as exc:
        raise _fail(str(exc), 2) from None
    except (StoreUnavailable, ValueError) as exc:
        raise _fail(str(exc), 1) from None
    if as_json:
        _print_json({**_record(request), "existing": existing is not None})
        return
    n = spec.size
    what = f"{n:,} combination(s)" + (f", at most {spec.max_evals:,} evaluated" if spec.max_evals else "")
    who = "all symbols" if spec.symbols is None else f"{len(spec.symbols)} symbol(s)"
    verb = "already submitted" if existing is not None else "queued"
    checks = f", {spec.frequency} bars" if spec.frequency != "1d" else ""
    if spec.holdout is not None:
        checks += f", holdout {spec.holdout[0]} .. {spec.holdout[1]}"
    if spec.walk_forward is not None:
        checks += f", {spec.walk_forward} walk-forward folds"
    console.print(
        f"grid request [bold]{request.id}[/bold] {verb} ({request.status}): {spec.strategy}, {what}, "
        f"{who}, {spec.start} .. {spec.end}{checks}, objective {spec.objective}"
    )
    console.print(f"follow it with: quant-platform grid status {request.id}")
    if request.status.value == "queued":
        _warn_without_daemon()


# A sensor daemon that has not heartbeated for this long is taken as not running.
DAEMON_STALE_SECONDS = 120.0


def _warn_without_daemon() -> None:
    """Say so when nothing will launch a queued request: no sensor daemon heartbeats recently."""
    import dagster as dg

    from quant_platform.grid.dagster.sensors import sensor_daemon_age
    from quant_platform.settings import ensure_dagster_home

    home = ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        age = sensor_daemon_age(instance)
    if age is not None and age < DAEMON_STALE_SECONDS:
        return
    when = "has never run" if age is None else f"last ran {age:,.0f} s ago"
    console.print(
        f"[yellow]warning:[/yellow] the Dagster daemon of instance {home} {when}, so the request stays "
        "queued until one runs: start `make ui` (dagster dev runs the daemon) or "
        "`dagster-daemon run -w workspace.yaml` with the same DAGSTER_HOME.",
        soft_wrap=True,
    )


@grid_app.command("status")
def status_command(
    request_id: str = typer.Argument(..., help="Grid request id"),
    as_json: bool = typer.Option(False, "--json", help="Print the request as JSON"),
) -> None:
    """Status, progress, best parameters and error of a grid request; once it ended, the stop reason,
    evaluated / planned counts, PBO, deflated Sharpe, out-of-sample figures and activation."""
    from quant_platform.grid import service

    _, _, _, NotFound, StoreUnavailable = _errors()
    try:
        r = service.status(request_id)
    except NotFound as exc:
        raise _fail(str(exc), 1) from None
    except StoreUnavailable as exc:
        raise _fail(str(exc), 1) from None
    if as_json:
        _print_json(_record(r))
        return
    table = Table(show_header=False, title=f"grid request {r.id}")
    colour = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}.get(str(r.status), "cyan")
    grid = r.body.get("grid", {})
    rows = [
        ("status", f"[{colour}]{r.status}[/{colour}]"),
        ("progress", f"{r.progress:.1f} %"),
        ("strategy", f"{r.body.get('strategy')}  objective {r.body.get('objective')}"),
        ("grid", ", ".join(f"{k}: {len(v)} value(s)" for k, v in grid.items())),
        ("window", f"{r.body.get('start')} .. {r.body.get('end')}"),
        ("best params", json.dumps(r.best_params) if r.best_params else "-"),
        ("error", r.error or "-"),
        ("created", str(r.created_at)),
        ("started", str(r.started_at or "-")),
        ("finished", str(r.finished_at or "-")),
    ]
    if r.body.get("watch"):
        rows.append(("watch", "re-runs on new klines_daily"))
    if r.body.get("origin"):
        rows.append(("re-run of", str(r.body["origin"].get("request_id"))))
    from quant_platform.grid.summary import summary_rows

    rows += summary_rows(r.summary)
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)


@grid_app.command("cancel")
def cancel_command(request_id: str = typer.Argument(..., help="Grid request id")) -> None:
    """Cancel a queued or running grid request (cancelling again is fine)."""
    from quant_platform.grid import service

    _, _, IllegalTransition, NotFound, StoreUnavailable = _errors()
    try:
        r = service.cancel(request_id)
    except (NotFound, StoreUnavailable) as exc:
        raise _fail(str(exc), 1) from None
    except IllegalTransition as exc:
        raise _fail(f"{exc} (it already finished)", 2) from None
    console.print(f"grid request {r.id}: {r.status} at {r.progress:.1f} %")


@grid_app.command("list")
def list_command(
    status: str | None = typer.Option(None, help="queued | running | succeeded | failed | cancelled"),
    limit: int = typer.Option(20, min=1, help="How many, newest first"),
    as_json: bool = typer.Option(False, "--json", help="Print the requests as JSON"),
) -> None:
    """Grid requests, newest first."""
    from quant_platform.grid import service

    _, _, _, _, StoreUnavailable = _errors()
    try:
        requests = service.list_requests(status=status, limit=limit)
    except ValueError as exc:
        raise _fail(f"invalid --status: {exc}", 2) from None
    except StoreUnavailable as exc:
        raise _fail(str(exc), 1) from None
    if as_json:
        _print_json([_record(r) for r in requests])
        return
    table = Table()
    for col in ("id", "status", "progress", "strategy", "objective", "best params", "created"):
        table.add_column(col)
    for r in requests:
        table.add_row(
            r.id,
            str(r.status),
            f"{r.progress:.0f} %",
            str(r.body.get("strategy")),
            str(r.body.get("objective")),
            json.dumps(r.best_params) if r.best_params else "-",
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


@grid_app.command("results")
def results_command(
    request_id: str = typer.Argument(..., help="Grid request id"),
    top: int = typer.Option(10, min=1, help="Best N combinations"),
) -> None:
    """The best combinations of a finished grid request (reads the cold tier)."""
    from quant_platform.settings import StoreSettings
    from quant_platform.storage.cold import ColdStore, ColdStoreError

    try:
        with ColdStore(StoreSettings.from_env().clickhouse_dsn) as cold:
            df = cold.grid_results(request_id, top=top)
    except ColdStoreError as exc:
        raise _fail(str(exc), 1) from None
    if df.empty:
        raise _fail(f"no results for grid request {request_id!r} (not finished, or cancelled)", 1)
    table = Table(title=f"grid request {request_id}: best {len(df)}")
    for col in ("rank", "params", "objective", "total_return", "sharpe", "max_drawdown", "num_trades"):
        table.add_column(col)
    for r in df.itertuples(index=False):
        table.add_row(
            str(r.rank), r.params, f"{r.objective:.4f}", f"{r.total_return:.4f}", f"{r.sharpe:.3f}",
            f"{r.max_drawdown:.4f}", f"{r.num_trades:.1f}",
        )  # fmt: skip
    console.print(table)
