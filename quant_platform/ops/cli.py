"""`quant-platform logscan`, `quant-platform metrics` and `quant-platform report daily`.

Errors are one line and exit 2 (bad value) or 1 (store down), like every other command (`cli._Commands`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def _console() -> Console:
    from quant_platform.ops.logs import JSON, log_console
    from quant_platform.settings import settings

    return log_console("quant_platform.ops") if settings().log_format == JSON else console


def logscan(
    paths: list[Path] | None = typer.Argument(
        None, help="Log files or folders (default: $QP_HOME/logs, where QP_LOG_FORMAT=json writes)"
    ),
    since: str = typer.Option("24h", help="Only lines newer than this: 30m, 24h, 7d"),
) -> None:
    """Errors and warnings of log files (JSON lines or text) by kind: count, first and last seen.
    Exit 1 when there are errors."""
    from quant_platform.ops.logs import parse_since, read_lines, scan
    from quant_platform.settings import settings

    window = parse_since(since)
    paths = paths or [settings().home / "logs"]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ValueError(f"no such log file or folder: {', '.join(missing)}")
    kinds = scan(read_lines(paths), since=dt.datetime.now(dt.UTC) - window)
    out = _console()
    table = Table(title=f"errors and warnings of the last {since} in {', '.join(map(str, paths))}")
    for col in ("level", "logger", "kind", "count", "first seen", "last seen", "runs", "example"):
        table.add_column(col)
    for k in kinds:
        table.add_row(
            k.level.upper(),
            k.logger,
            k.kind,
            str(k.count),
            f"{k.first:%Y-%m-%d %H:%M:%S}" if k.first else "-",
            f"{k.last:%Y-%m-%d %H:%M:%S}" if k.last else "-",
            str(len(k.runs)),
            k.example[:80],
        )
    errors = sum(k.count for k in kinds if k.level == "error")
    warnings = sum(k.count for k in kinds if k.level == "warning")
    if kinds:
        out.print(table)
    out.print(f"{errors} error(s), {warnings} warning(s) in {len(kinds)} kind(s)")
    if errors:
        raise typer.Exit(1)


def metrics(
    port: int = typer.Option(9464, min=0, max=65535, help="TCP port of /metrics (0: any free port)"),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
) -> None:
    """Serve the pipeline metrics (Prometheus /metrics, read from the Dagster instance) until Ctrl-C."""
    import time

    from quant_platform.collector.metrics import MetricsServer
    from quant_platform.ops.metrics import instance_at, registry
    from quant_platform.settings import ensure_dagster_home, settings

    current = settings().require()
    reg = registry(instance_at(ensure_dagster_home()), current.stores.warehouse_url, current.stores.redis_url)
    server = MetricsServer(reg, lambda: (True, {"status": "ok"}), host=host, port=port).start()
    _console().print(f"pipeline metrics on http://{server.host}:{server.port}/metrics (Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


report_app = typer.Typer(help="Reports of the platform's days.", no_args_is_help=True)


@report_app.command("daily")
def report_daily(
    date: str = typer.Option(..., help="Trading day, YYYY-MM-DD"),
    fmt: str = typer.Option("md", "--format", help="md | json"),
    out: Path | None = typer.Option(None, help="File to write (default: standard output)"),
) -> None:
    """Rows per table, quarantine by rule, blocked checks, runs, backtests, grids and collector ticks
    of one day."""
    import sys

    from quant_platform.ops import report
    from quant_platform.settings import StoreSettings, ensure_dagster_home
    from quant_platform.storage.cold import ColdStore
    from quant_platform.storage.warm import WarmStore

    if fmt not in ("md", "json"):
        raise ValueError(f"--format must be md or json, got {fmt!r}")
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise ValueError(f"--date must be YYYY-MM-DD, got {date!r}") from None
    import dagster as dg

    stores = StoreSettings.from_env()
    ensure_dagster_home()
    warm = WarmStore(stores.warehouse_url)
    warm.migrate()
    try:
        with ColdStore(stores.clickhouse_dsn) as cold:
            data = report.daily(day, cold, warm, dg.DagsterInstance.get())
    finally:
        warm.close()
    text = report.to_json(data) if fmt == "json" else report.to_markdown(data)
    if out is not None:
        out.write_text(text)
        _console().print(f"wrote the {fmt} report of {day} to {out}")
    else:
        sys.stdout.write(text)
