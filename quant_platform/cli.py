"""`quant-platform` command line: run the graph, inspect stores and data."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from quant_platform.settings import SettingsError, StoreSettings, ensure_dagster_home, settings

console = Console()


class _Commands(TyperGroup):
    """Turns what a user can cause into one line and an exit code, never a traceback.

    A bad value or setting exits 2; a store that is down or held by another process exits 1.
    """

    def invoke(self, ctx: click.Context):
        from quant_platform.storage.cold import ColdStoreError
        from quant_platform.storage.hot import HotStoreError
        from quant_platform.storage.warm import NotFound, StoreUnavailable

        try:
            return super().invoke(ctx)
        except (SettingsError, ValueError) as exc:
            console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
        except NotFound as exc:
            console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(1) from None
        except (ColdStoreError, StoreUnavailable, HotStoreError) as exc:
            console.print(f"[red]error:[/red] store unavailable: {exc}", soft_wrap=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Commands, help="quant-platform: market data, QA and backtests on Dagster.", no_args_is_help=True
)


@app.callback()
def _root() -> None:
    """quant-platform: market data, QA and backtests on Dagster."""
    _configure_logs()


def _configure_logs() -> None:
    """QP_LOG_FORMAT=json: log records and what commands print become JSON lines (stderr and
    $QP_HOME/logs/quant-platform.jsonl, read by `logscan`); text mode leaves both as they were."""
    global console
    from quant_platform.ops.logs import JSON, configure, log_console

    current = settings()
    if current.log_format == JSON:
        configure(JSON, file=current.home / "logs" / "quant-platform.jsonl")
        console = log_console()
        import importlib

        for name in (
            "grid.cli",
            "options.cli",
            "api.cli",
            "collector.cli",
            "research.cli",
        ):  # their own consoles
            module = importlib.import_module(f"quant_platform.{name}")
            if hasattr(module, "console"):
                module.console = log_console(f"quant_platform.{name}")


def _instance():
    """The Dagster instance runs are recorded in ($DAGSTER_HOME, default $QP_HOME/dagster)."""
    import dagster as dg

    home = ensure_dagster_home()
    config = home / "dagster.yaml"
    if not config.exists():  # `make` installs the repository's dagster.yaml; outside it, a minimal one
        config.write_text(
            "# Local instance written by quant-platform; see dagster.yaml in the repository.\n"
            "telemetry:\n  enabled: false\n"
        )
    return dg.DagsterInstance.get()


def _trading_days_or_exit(start: str, end: str, max_days: int | None = None):
    """The range's trading days, or a clear message and exit code 2."""
    from quant_platform.runner import trading_days

    try:
        return trading_days(start, end, max_days=max_days)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def run(
    start: str = typer.Option(..., help="First trading day, YYYY-MM-DD"),
    end: str = typer.Option(..., help="Last trading day, YYYY-MM-DD"),
    symbols: int = typer.Option(50, min=1, max=10_000, help="Synthetic universe size"),
    chunk: int = typer.Option(60, min=1, help="Trading days per Dagster run"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Dagster's step logs"),
    backtests: bool = typer.Option(True, help="Run the backtests job on the new klines afterwards"),
    options: bool = typer.Option(
        True, help="Also materialize the options group (options_daily) for the days"
    ),
    allow_long_range: bool = typer.Option(
        False, "--allow-long-range", help="Materialize more trading days than QP_MAX_RANGE_DAYS"
    ),
) -> None:
    """Materialize quotes -> bars -> klines -> QA for a trading-day range (embedded stores by default)."""
    from quant_platform.definitions import build_definitions
    from quant_platform.resources import SyntheticMarketResource
    from quant_platform.runner import run_job, run_range

    current = settings().require()  # prod without its servers: one message listing what is missing
    days = _trading_days_or_exit(start, end, None if allow_long_range else current.max_range_days)
    synthetic = current.market_source == "synthetic"
    overrides = {"market": SyntheticMarketResource(n_symbols=symbols)} if synthetic else {}
    defs = build_definitions(resources=overrides)
    instance = _instance()
    from quant_platform.reconcile import fail_orphaned_runs

    for run_id in fail_orphaned_runs(instance):  # in-process runs of a killed CLI: no daemon sees them
        console.print(f"[yellow]run {run_id[:8]} was left STARTED by a dead process: marked FAILURE[/yellow]")
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=settings().log_format == "json",  # json mode: each chunk's line is a log record
    ) as progress:
        task = progress.add_task("trading days", total=len(days))

        def advance(part, res) -> None:
            state = "[green]ok[/green]" if res.success else "[red]FAILED[/red]"
            progress.console.print(f"{part[0]} .. {part[-1]}: run {res.run_id[:8]} {state}")
            progress.advance(task, len(part))

        result = run_range(
            defs,
            days,
            chunk_size=chunk,
            instance=instance,
            on_chunk=advance,
            log_level="DEBUG" if verbose else "WARNING",
        )
        if result.success and options:
            opt = run_range(
                defs,
                days,
                job_name="options_daily",
                chunk_size=chunk,
                instance=instance,
                log_level="DEBUG" if verbose else "WARNING",
            )
            result.run_ids.extend(opt.run_ids)
            result.failed.extend(opt.failed)
            state = "[green]ok[/green]" if opt.success else "[red]FAILED[/red]"
            progress.console.print(f"options: {len(opt.run_ids)} run(s) {state}")
        if result.success and backtests:
            bt = run_job(defs, "backtests", instance, log_level="DEBUG" if verbose else "WARNING")
            result.run_ids.append(bt.run_id)
            if not bt.success:
                result.failed.append(bt.run_id)
            progress.console.print(
                f"backtests: run {bt.run_id[:8]} {'[green]ok[/green]' if bt.success else '[red]FAILED[/red]'}"
            )
    _summary(days, symbols, result)
    if not result.success:
        from quant_platform.runner import first_error

        failed = result.failed[0]
        error = first_error(instance, failed) or "see its logs"
        console.print(f"[red]run {failed} failed[/red]: {error}", soft_wrap=True)
        console.print(f"logs: {_ui_hint()}")
        raise typer.Exit(1)


def _ui_hint() -> str:
    return (
        f"make ui (or DAGSTER_HOME={settings().dagster_home} dagster dev -w workspace.yaml), "
        "then open http://127.0.0.1:3000"
    )


def _summary(days, symbols: int, result) -> None:
    from quant_platform.storage.cold import ColdStore, ColdStoreError

    stores = StoreSettings.from_env()
    table = Table(title=f"{len(days)} trading days {days[0]} .. {days[-1]}, {symbols} symbols")
    table.add_column("asset / table")
    table.add_column("rows in range", justify="right")
    try:
        with ColdStore(stores.clickhouse_dsn) as cold:
            cold.ensure_schema()  # a run that failed early may have created no table yet
            names = ("raw_quotes", "bars_1m", "bars_5m", "bars_15m", "klines_daily", "qa_metrics")
            for name in (*names, "option_quotes", "option_greeks"):
                counts = cold.count_by_day(name, days)
                table.add_row(name, f"{sum(counts.values()):,}")
            quarantined = cold.count_by_day("quarantine", days)
            table.add_row("quarantine", f"{sum(quarantined.values()):,}")
        console.print(table)
    except ColdStoreError as exc:  # e.g. held by another process: the run's own result comes first
        console.print(f"(could not count rows: {exc})", soft_wrap=True)
    try:
        from quant_platform.client import Client

        with Client() as qp:
            runs = qp.backtest_runs(limit=1)
        if len(runs):
            r = runs.iloc[0]
            console.print(
                f"latest backtest: {r['strategy']} {r['params']} on {r.get('symbols', '?')} symbols: "
                f"total return {r.get('total_return', float('nan')):.2%}, "
                f"max drawdown {r.get('max_drawdown', float('nan')):.2%} (quant-platform backtest list)"
            )
    except Exception as exc:  # noqa: BLE001 - the summary must not hide the run's own result
        console.print(f"(could not read backtest runs: {exc})")
    console.print(f"runs: {', '.join(r[:8] for r in result.run_ids)}")
    console.print(f"data: ClickHouse {stores.clickhouse_dsn}")
    console.print(f"Dagster instance: {settings().dagster_home}")
    console.print(f"UI: {_ui_hint()} (Assets -> lineage, partitions)", soft_wrap=True)


@app.command()
def selfcheck() -> None:
    """One row per configured store: reachable, version, latency, schema version. Exit 1 if any is down."""
    import time

    from quant_platform.storage.cold import ColdStore, redact
    from quant_platform.storage.hot import hot_store_from_url
    from quant_platform.storage.warm import WarmStore

    stores = StoreSettings.from_env()
    table = Table(title="quant-platform stores")
    for col in ("tier", "backend", "address", "status", "version", "latency ms", "schema"):
        table.add_column(col)
    down = 0
    options_line = ""

    def row(tier, backend, address, ok, version="", latency=None, schema="", error=""):
        nonlocal down
        down += 0 if ok else 1
        status = "[green]up[/green]" if ok else f"[red]DOWN[/red] {error[:120]}"
        table.add_row(
            tier, backend, address, status, version, f"{latency:.1f}" if latency is not None else "", schema
        )

    try:
        with ColdStore(stores.clickhouse_dsn, lock_timeout=1.0) as cold:
            ping = cold.ping()
            counts = cold.row_counts()
        row("cold", "clickhouse", redact(stores.clickhouse_dsn), True, ping["version"], ping["latency_ms"])
        option_tables = (
            "option_contracts",
            "option_quotes",
            "option_daily",
            "option_greeks",
            "option_qa_metrics",
        )
        options_line = "options tables: " + ", ".join(f"{t} {counts.get(t, 0):,}" for t in option_tables)
    except Exception as exc:  # noqa: BLE001 - every failure is a row, not a crash
        row("cold", "clickhouse", redact(stores.clickhouse_dsn), False, error=str(exc))
    try:
        warm = WarmStore(stores.warehouse_url, attempts=1)
        ping = warm.ping()
        warm.close()
        schema = f"{ping.schema_version or 'none'} (head {ping.head_version})"
        row("warm", ping.backend, ping.url, True, ping.server_version, ping.latency_ms, schema)
    except Exception as exc:  # noqa: BLE001
        row("warm", "sql", stores.warehouse_url.split("@")[-1], False, error=str(exc))
    try:
        hot = hot_store_from_url(stores.redis_url)
        ping = hot.ping()
        hot.close()
        row(
            "hot",
            ping.backend,
            ping.url,
            ping.ok,
            ping.server_version or "",
            ping.latency_ms,
            error=ping.error or "",
        )
    except Exception as exc:  # noqa: BLE001
        row("hot", "redis", stores.redis_url.split("@")[-1], False, error=str(exc))
    try:
        start = time.perf_counter()
        instance = _instance()
        instance.get_runs(limit=1)
        storage = type(instance.run_storage).__name__
        row(
            "dagster",
            storage,
            str(settings().dagster_home),
            True,
            latency=(time.perf_counter() - start) * 1000,
        )
    except Exception as exc:  # noqa: BLE001
        row("dagster", "instance", str(settings().dagster_home), False, error=str(exc))
    console.print(table)
    if options_line:
        console.print(options_line)
    if down:
        raise typer.Exit(1)


@app.command()
def qa(
    start: str = typer.Option(..., help="First trading day, YYYY-MM-DD"),
    end: str = typer.Option(..., help="Last trading day, YYYY-MM-DD"),
) -> None:
    """QA report for a range of trading days; exit 1 when a day failed a blocking quality check."""
    from quant_platform.checks.verdicts import blocking_failures, check_verdicts
    from quant_platform.storage.cold import ColdStore

    days = _trading_days_or_exit(start, end)
    with ColdStore(StoreSettings.from_env().clickhouse_dsn) as cold:
        cold.ensure_schema()
        metrics = cold.read_table("qa_metrics", days[0], days[-1])
    verdicts = check_verdicts(_instance(), days)
    wanted = {
        ("raw_quotes", "rows"): "quotes",
        ("raw_quotes", "quarantined_rows"): "quarantined",
        ("raw_quotes", "completeness_mean"): "completeness",
        ("bars_1m", "rows"): "1m bars",
        ("klines_daily", "rows"): "klines",
        ("klines_daily", "return_outliers"): "outliers",
    }
    table = Table(title=f"QA {days[0]} .. {days[-1]}")
    for col in ["trade_date", *wanted.values(), "blocking checks"]:
        table.add_column(col)
    by_day = {d: g for d, g in metrics.groupby(metrics["trade_date"].dt.date)} if len(metrics) else {}
    failed_days = set()
    for day in days:
        m = by_day.get(day)
        values = []
        for (t, name), _ in wanted.items():
            v = m[(m["table_name"] == t) & (m["metric"] == name)]["value"] if m is not None else []
            values.append(f"{float(v.iloc[0]):,.4g}" if len(v) else "-")
        v = verdicts[verdicts["trade_date"] == day]
        bad = blocking_failures(v)
        if len(bad):
            failed_days.add(day)
            status = "[red]FAILED[/red] " + ", ".join(bad["table_name"])
        elif len(v):
            warned = v[~v["passed"]]
            status = (
                "[yellow]warn[/yellow] " + ", ".join(warned["table_name"])
                if len(warned)
                else "[green]passed[/green]"
            )
        else:
            status = "not checked"
        table.add_row(str(day), *values, status)
    console.print(table)
    if failed_days:
        console.print(f"[red]{len(failed_days)} trading day(s) failed a blocking quality check[/red]")
        raise typer.Exit(1)


def _collect_command() -> None:
    from quant_platform.collector.cli import collect

    app.command("collect", help="Stream quotes from an exchange WebSocket into the cold and hot tiers.")(
        collect
    )


_collect_command()


def _grid_commands() -> None:
    from quant_platform.grid.cli import grid_app

    app.add_typer(grid_app, name="grid")


_grid_commands()

symbols_app = typer.Typer(
    help="The symbol master: the listed symbols rows are checked against.", no_args_is_help=True
)
app.add_typer(symbols_app, name="symbols")


@symbols_app.command("import")
def symbols_import(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="CSV with a symbol column (or code/ticker), optional trade_date",
    ),
    day: str | None = typer.Option(
        None, help="Day of rows without a trade_date, YYYY-MM-DD (default: the first partition day)"
    ),
    source: str = typer.Option("import", help="Source name the lists are recorded under"),
) -> None:
    """Record lists of listed symbols (replacing the source's list of each day). A list holds from its
    day until the source's next list; file drops are checked against the lists of every source."""
    from quant_platform.core.limits import FIRST_PARTITION_DAY
    from quant_platform.sources.symbols import import_symbols
    from quant_platform.storage.cold import ColdStore

    with ColdStore(StoreSettings.from_env().clickhouse_dsn) as cold:
        written = import_symbols(cold, file, day=day or FIRST_PARTITION_DAY, source=source)
    for listed_day, count in written.items():
        console.print(f"{listed_day}: {count} symbols recorded for source {source!r}")


def _options_commands() -> None:
    from quant_platform.options.cli import options_app

    app.add_typer(options_app, name="options")


_options_commands()


def _api_commands() -> None:
    from quant_platform.api.cli import serve, users_app

    app.add_typer(users_app, name="users")
    app.command("serve", help="Serve the HTTP API (FastAPI under uvicorn).")(serve)


_api_commands()


def _ops_commands() -> None:
    from quant_platform.ops.cli import logscan, metrics, report_app

    app.command("logscan")(logscan)
    app.command("metrics")(metrics)
    app.add_typer(report_app, name="report")


_ops_commands()


def _trading_commands() -> None:
    from quant_platform.trading.cli import accounts_app, migrate_app, trades_app

    app.add_typer(accounts_app, name="accounts")
    app.add_typer(trades_app, name="trades")
    app.add_typer(migrate_app, name="migrate")


_trading_commands()

backtest_app = typer.Typer(
    help="Backtest runs: run, inspect, export, compare and report.", no_args_is_help=True
)
app.add_typer(backtest_app, name="backtest")


def _param_values(items: list[str]) -> dict | None:
    """``["fast=5", "slow=20"]`` -> {"fast": 5, "slow": 20} (JSON values); no items -> None."""
    import json

    if not items:
        return None
    out: dict = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip() or not raw.strip():
            raise ValueError(f"--param must look like name=value, got {item!r}")
        if name.strip() in out:
            raise ValueError(f"parameter {name.strip()!r} is given more than once")
        try:
            out[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(f"--param {name.strip()}: {raw!r} is not a number or true/false") from None
    return out


@backtest_app.command("run")
def backtest_run(
    strategy: str = typer.Option(..., help="Registered strategy, e.g. sma_cross or xs_momentum"),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="name=value, repeat per parameter (default: the active version)"
    ),
    symbols: str = typer.Option(..., help="Comma-separated symbols, e.g. 600000.SH,600001.SH"),
    start: str = typer.Option(..., help="First trading day, YYYY-MM-DD"),
    end: str = typer.Option(..., help="Last trading day, YYYY-MM-DD"),
    frequency: str = typer.Option(
        "1d", help="Bar frequency: 1d (klines_daily), 5m or 15m (bars_5m, bars_15m)"
    ),
    cash: float = typer.Option(1_000_000.0, min=1.0, help="Starting cash of the whole run"),
) -> None:
    """Backtest one strategy on klines and record the run: its record in the warm tier, equity and
    trades in the cold tier (see `backtest list`, `backtest export`)."""
    import uuid

    from quant_platform import backtest
    from quant_platform.assets.backtests import BacktestRunsConfig, bars_table, record_run, resolve_params
    from quant_platform.client import validate_range, validate_symbols
    from quant_platform.storage.cold import ColdStore
    from quant_platform.storage.warm import WarmStore

    table = bars_table(frequency)
    codes = validate_symbols([c.strip() for c in symbols.split(",") if c.strip()])
    s, e = validate_range(start, end)
    params = _param_values(param)
    env = StoreSettings.from_env()
    warm = WarmStore(env.warehouse_url)
    try:
        warm.migrate()
        params, source = resolve_params(warm, strategy, params)
        params = backtest.validate_params(strategy, params)
        with ColdStore(env.clickhouse_dsn) as cold:
            cold.ensure_schema()
            klines = cold.read_table(table, s, e, symbols=codes)
        if klines.empty:
            raise ValueError(
                f"no {table} for {', '.join(codes[:5])} between {s} and {e}: "
                "materialize the market data first (quant-platform run)"
            )
        missing = sorted(set(codes) - set(klines["symbol"]))
        cfg = BacktestRunsConfig(strategy=strategy, symbols=codes, cash=cash, frequency=frequency).model_copy(
            update={"params": params}
        )
        run_id = f"cli-{uuid.uuid4().hex[:12]}"
        first, last = klines["trade_date"].min(), klines["trade_date"].max()

        def open_cold():
            store = ColdStore(env.clickhouse_dsn)
            store.connect()
            return store

        out = record_run(warm, open_cold, klines, cfg, run_id, window=(first, last), params_source=source)
    finally:
        warm.close()
    st = out["stats"]
    table = Table(show_header=False, title=f"backtest run {run_id}")
    rows = [
        ("strategy", f"{strategy} {params} ({source})"),
        ("window", f"{pd_date(first)} .. {pd_date(last)}, {st['bars']} bars, {st['symbols']} symbol(s)"),
        ("total return", f"{st['total_return']:.2%}"),
        ("max drawdown", f"{st['max_drawdown']:.2%}"),
        ("sharpe", f"{st.get('sharpe', st['mean_sharpe']):.3f}"),
        ("trades", str(st["num_trades"])),
        ("final equity", f"{st['final_equity']:,.2f}"),
        ("commissions", f"{st['commissions']:,.2f}"),
    ]
    if missing:
        rows.append(("missing symbols", ", ".join(missing[:10])))
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    for warning in st["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    console.print(f"run id: {run_id}")


def pd_date(value) -> str:
    import pandas as pd

    return str(pd.Timestamp(value).date())


@backtest_app.command("export")
def backtest_export(
    run_id: str = typer.Argument(..., help="Run id (see `quant-platform backtest list`)"),
    what: str = typer.Option("equity", help="equity | trades"),
    out: Path | None = typer.Option(None, help="CSV file to write (default: standard output)"),
) -> None:
    """Write a run's equity curve or trades as CSV."""
    from quant_platform.client import Client

    if what not in ("equity", "trades"):
        console.print("[red]error:[/red] --what must be equity or trades")
        raise typer.Exit(2)
    with Client() as qp:
        df = qp.equity(run_id) if what == "equity" else qp.backtest_trades(run_id)
        if df.empty:  # an unknown run is an error; a run without trades is a CSV with its header
            from quant_platform.storage.warm import NotFound

            try:
                qp.warm.get_run(run_id)
            except NotFound as exc:
                console.print(f"[red]error:[/red] no {what} for run {run_id!r}: {exc}")
                raise typer.Exit(1) from None
    if out:
        df.to_csv(out, index=False)
        console.print(f"wrote {len(df)} rows to {out}")
    else:
        sys.stdout.write(df.to_csv(index=False))


@backtest_app.command("list")
def backtest_list(
    strategy: str | None = typer.Option(None, help="Only runs of this strategy"),
    limit: int = typer.Option(20, min=1, max=10_000, help="How many runs, newest first (1-10000)"),
) -> None:
    """Recorded backtest runs, newest first."""
    from quant_platform.client import Client

    with Client() as qp:
        runs = qp.backtest_runs(strategy=strategy, limit=limit)
    table = Table()
    for col in ("run_id", "strategy", "status", "params", "total_return", "max_drawdown", "finished_at"):
        table.add_column(col)
    for r in runs.to_dict("records"):
        table.add_row(
            r["run_id"],
            r["strategy"],
            r["status"],
            str(r["params"]),
            f"{r.get('total_return', float('nan')):.4f}",
            f"{r.get('max_drawdown', float('nan')):.4f}",
            str(r["finished_at"] or ""),
        )
    console.print(table)


def _research_commands() -> None:
    from quant_platform.research.cli import register

    register(backtest_app)


_research_commands()


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
