"""`quant-platform` command line: run the graph, inspect stores and data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quant_platform.settings import StoreSettings, qp_home

app = typer.Typer(help="quant-platform: market data, QA and backtests on Dagster.", no_args_is_help=True)
console = Console()


@app.callback()
def _root() -> None:
    """quant-platform: market data, QA and backtests on Dagster."""


def _instance():
    """The Dagster instance runs are recorded in ($DAGSTER_HOME, default $QP_HOME/dagster)."""
    import dagster as dg

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(qp_home() / "dagster")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():  # `make` installs the repository's dagster.yaml; outside it, a minimal one
        config.write_text(
            "# Local instance written by quant-platform; see dagster.yaml in the repository.\n"
            "telemetry:\n  enabled: false\n"
        )
    return dg.DagsterInstance.get()


@app.command()
def run(
    start: str = typer.Option(..., help="First trading day, YYYY-MM-DD"),
    end: str = typer.Option(..., help="Last trading day, YYYY-MM-DD"),
    symbols: int = typer.Option(50, min=1, max=10_000, help="Synthetic universe size"),
    chunk: int = typer.Option(20, min=1, help="Trading days per Dagster run"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Dagster's step logs"),
) -> None:
    """Materialize quotes -> bars -> klines -> QA for a trading-day range (embedded stores by default)."""
    from quant_platform.definitions import build_definitions
    from quant_platform.resources import SyntheticMarketResource
    from quant_platform.runner import run_range, trading_days

    try:
        days = trading_days(start, end)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    defs = build_definitions(resources={"market": SyntheticMarketResource(n_symbols=symbols)})
    instance = _instance()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
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
    _summary(days, symbols, result)
    if not result.success:
        console.print(f"[red]run {result.failed[0]} failed[/red]: open the UI (make ui) for its logs.")
        raise typer.Exit(1)


def _summary(days, symbols: int, result) -> None:
    from quant_platform.storage.cold import ColdStore

    stores = StoreSettings.from_env()
    table = Table(title=f"{len(days)} trading days {days[0]} .. {days[-1]}, {symbols} symbols")
    table.add_column("asset / table")
    table.add_column("rows in range", justify="right")
    with ColdStore(stores.clickhouse_dsn) as cold:
        for name in ("raw_quotes", "bars_1m", "bars_5m", "bars_15m", "klines_daily", "qa_metrics"):
            counts = cold.count_by_day(name, days)
            table.add_row(name, f"{sum(counts.values()):,}")
    console.print(table)
    console.print(f"runs: {', '.join(r[:8] for r in result.run_ids)}")
    console.print(f"data: ClickHouse {stores.clickhouse_dsn}")
    console.print(f"Dagster instance: {os.environ.get('DAGSTER_HOME')}")
    console.print("UI: [bold]make ui[/bold] then open http://127.0.0.1:3000 (Assets -> lineage, partitions)")


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
