"""`quant-platform backtest compare` and `quant-platform backtest report`, added to the `backtest`
command group by `cli.py`. An unknown or unfinished run id is one line and exit code 2 (through the
root command group, which turns ValueError into exactly that)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()

COMPARE_DIR = Path("backtest-compare")
# What the printed table shows (stats.csv has everything), with short headers to fit 80 columns;
# "common": the return over the span every run covers.
TABLE_COLUMNS = {
    "strategy": "strategy",
    "total_return": "return",
    "sharpe": "sharpe",
    "max_drawdown": "max dd",
    "num_trades": "trades",
    "common_return": "common",
}


def _load(run_ids: list[str]):
    from quant_platform.client import Client
    from quant_platform.research.runs import load_run

    with Client() as qp:
        return [load_run(qp.warm, qp.cold, run_id) for run_id in run_ids]


def _cell(name: str, value) -> str:
    if isinstance(value, float):
        return f"{value:.2%}" if "return" in name or "drawdown" in name else f"{value:.3f}"
    return str(value)


def compare(
    run_ids: list[str] = typer.Argument(..., help="2 to 12 run ids (see `quant-platform backtest list`)"),
    out: Path = typer.Option(COMPARE_DIR, help="Folder for stats.csv, curves.csv and curves.png"),
) -> None:
    """Compare recorded runs: a stats table, and their equity (as growth of 1) and drawdown curves
    overlaid on one aligned time axis, written as CSV and PNG."""
    from quant_platform.research.compare import aligned_curves, check_run_ids, curves_png, stats_table

    results = _load(check_run_ids(run_ids))
    stats = stats_table(results)
    curves = aligned_curves(results)
    out.mkdir(parents=True, exist_ok=True)
    stats.to_csv(out / "stats.csv")
    curves.to_csv(out / "curves.csv")
    (out / "curves.png").write_bytes(curves_png(curves, results))

    columns = [c for c in TABLE_COLUMNS if c in stats.columns]
    table = Table(title=f"{len(results)} backtest runs")
    table.add_column("run_id", no_wrap=True)
    for col in columns:
        table.add_column(TABLE_COLUMNS[col], justify="left" if col == "strategy" else "right")
    for run_id, row in stats.iterrows():
        table.add_row(str(run_id), *[_cell(c, row[c]) for c in columns])
    console.print(table)
    console.print(
        f"wrote {out / 'stats.csv'}, {out / 'curves.csv'} ({len(curves)} rows), {out / 'curves.png'}"
    )


def report(
    run_id: str = typer.Argument(..., help="Run id (see `quant-platform backtest list`)"),
    out: Path = typer.Option(..., help="HTML file to write, e.g. run.html"),
    page_size: int = typer.Option(50, min=1, max=10_000, help="Trades per page of the trades table"),
) -> None:
    """Write one self-contained HTML report of a run: interactive equity and drawdown charts, stats,
    parameters and data version, trades in pages. It opens offline (plotly.js is inline)."""
    from quant_platform.research.report import render_report

    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name such as run.html")
    (result,) = _load([run_id])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(result, page_size=page_size), encoding="utf-8")
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(result.trades)} trades)")


def register(backtest_app: typer.Typer) -> None:
    backtest_app.command("compare")(compare)
    backtest_app.command("report")(report)
