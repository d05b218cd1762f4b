"""`quant-platform accounts ...`, `quant-platform trades ...` and `quant-platform migrate ...`.

Exit codes (through the root command group): 0 ok; 1 an account or store is not there, or
`migrate verify` found a difference; 2 an invalid value or a refused change (illegal status move,
allocations above capital).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

console = Console()
accounts_app = typer.Typer(
    help="Trading accounts: capital, status, strategy allocations.", no_args_is_help=True
)
trades_app = typer.Typer(
    help="Trade records of the accounts: record, list, statistics.", no_args_is_help=True
)
migrate_app = typer.Typer(
    help="Move positions and trades between the old file store and the tiers.", no_args_is_help=True
)


def _client():
    from quant_platform.client import Client

    return Client()


def _table(df: pd.DataFrame, title: str | None = None) -> Table:
    table = Table(title=title)
    for col in df.columns:
        table.add_column(str(col))
    for row in df.itertuples(index=False):
        table.add_row(*[f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row])
    return table


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


# ------------------------------------------------------------------------------------ accounts


@accounts_app.command("create")
def accounts_create(
    name: str = typer.Argument(..., help="Account name (positions and trades are keyed by it)"),
    broker: str | None = typer.Option(None, help="Broker, e.g. ib, sim"),
    capital: float = typer.Option(0.0, help="Initial capital"),
    currency: str = typer.Option("CNY", help="Currency of the capital"),
) -> None:
    """Create an active account with its initial capital."""
    from quant_platform.storage.warm import AlreadyExists

    with _client() as qp:
        try:
            acc = qp.warm.create_account(name, broker=broker, initial_cash=capital, currency=currency)
        except AlreadyExists as exc:
            raise typer.BadParameter(str(exc)) from None
    console.print(f"account {acc.name} created: {acc.current_capital:,.2f} {acc.currency}, {acc.status}")


@accounts_app.command("list")
def accounts_list(status: str | None = typer.Option(None, help="active | inactive | suspended")) -> None:
    """Accounts with their capital, allocations and status."""
    with _client() as qp:
        accounts = qp.warm.list_accounts(status=status)
    df = pd.DataFrame(
        [
            (a.name, a.broker or "", a.status, a.initial_cash, a.current_capital, a.allocated_capital)
            for a in accounts
        ],
        columns=["account", "broker", "status", "initial", "current", "allocated"],
    )
    console.print(_table(df))


@accounts_app.command("show")
def accounts_show(name: str = typer.Argument(...)) -> None:
    """One account: capital, allocations and capital history."""
    with _client() as qp:
        acc = qp.warm.get_account(name)
        allocations = qp.warm.allocations(name)
        history = qp.warm.capital_history(name, limit=20)
    console.print(
        f"{acc.name} ({acc.broker or '-'}) {acc.status}: capital {acc.current_capital:,.2f} {acc.currency}, "
        f"allocated {acc.allocated_capital:,.2f}, free {acc.free_capital:,.2f}"
    )
    console.print(
        _table(
            pd.DataFrame(
                [(x.strategy, x.allocated_capital, x.risk_limit) for x in allocations],
                columns=["strategy", "allocated", "risk_limit"],
            ),
            "allocations",
        )
    )
    console.print(
        _table(
            pd.DataFrame(
                [(str(c.created_at)[:19], c.previous, c.capital, c.reason) for c in history],
                columns=["at", "previous", "capital", "reason"],
            ),
            "capital history",
        )
    )


@accounts_app.command("status")
def accounts_status(
    name: str = typer.Argument(...), status: str = typer.Argument(..., help="active | inactive | suspended")
) -> None:
    """Move an account to another status (active <-> suspended, active/suspended -> inactive -> active)."""
    with _client() as qp:
        acc = qp.warm.set_account_status(name, status)
    console.print(f"account {acc.name}: {acc.status}")


@accounts_app.command("capital")
def accounts_capital(
    name: str = typer.Argument(...),
    set_to: float | None = typer.Option(None, "--set", help="New current capital"),
    delta: float | None = typer.Option(None, help="Change of the current capital (+ deposit, - withdrawal)"),
    reason: str = typer.Option("", help="Recorded in the capital history"),
) -> None:
    """Change an account's current capital (recorded in its history)."""
    with _client() as qp:
        acc = qp.warm.update_capital(name, capital=set_to, delta=delta, reason=reason)
    console.print(
        f"account {acc.name}: capital {acc.current_capital:,.2f} (allocated {acc.allocated_capital:,.2f})"
    )


@accounts_app.command("allocate")
def accounts_allocate(
    account: str = typer.Argument(...),
    strategy: str = typer.Argument(...),
    capital: float = typer.Argument(..., help="Capital given to the strategy"),
    risk_limit: float = typer.Option(0.1, help="Largest loss, as a share of the allocated capital (0-1]"),
) -> None:
    """Allocate capital of an account to a strategy (never above the account's current capital)."""
    with _client() as qp:
        a = qp.warm.allocate(account, strategy, capital, risk_limit=risk_limit)
    console.print(f"{a.account} -> {a.strategy}: {a.allocated_capital:,.2f} (risk limit {a.risk_limit:.0%})")


@accounts_app.command("deallocate")
def accounts_deallocate(account: str = typer.Argument(...), strategy: str = typer.Argument(...)) -> None:
    """Remove a strategy's allocation."""
    with _client() as qp:
        removed = qp.warm.deallocate(account, strategy)
    console.print(f"{account} -> {strategy}: {'removed' if removed else 'had no allocation'}")


# -------------------------------------------------------------------------------------- trades


@trades_app.command("record")
def trades_record(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV of trades (see `trading.records`)"
    ),
) -> None:
    """Record trades from a CSV file (idempotent: a file recorded twice adds nothing)."""
    from quant_platform.trading.files import FileStore

    df = FileStore.read_trades_file(file)
    with _client() as qp:
        r = qp.record_trades(df)
    console.print(
        f"{r.recorded:,} trades recorded, {r.duplicates:,} already stored; "
        f"positions opened {r.positions_opened}, closed {r.positions_closed}"
    )


@trades_app.command("list")
def trades_list(
    account: str = typer.Argument(...),
    start: str = typer.Option(..., help="First day, YYYY-MM-DD"),
    end: str = typer.Option(..., help="Last day, YYYY-MM-DD"),
    symbols: list[str] | None = typer.Option(
        None, "--symbol", help="Only these symbols (repeat or comma-separate)"
    ),
    csv: bool = typer.Option(False, "--csv", help="Write CSV to standard output"),
) -> None:
    """An account's trades in a date range."""
    import sys

    with _client() as qp:
        df = qp.trades(account, start, end, _split(symbols))
    if csv:
        sys.stdout.write(df.to_csv(index=False))
    else:
        console.print(_table(df.drop(columns=["recorded_at"]), f"{len(df):,} trades"))


@trades_app.command("stats")
def trades_stats(
    accounts: list[str] = typer.Argument(..., help="Accounts (space- or comma-separated)"),
    start: str = typer.Option(..., help="First day, YYYY-MM-DD"),
    end: str = typer.Option(..., help="Last day, YYYY-MM-DD"),
    by: str = typer.Option("account", help="account | symbol | strategy | day"),
) -> None:
    """Trades, volume, turnover, commissions and realised P&L per account, symbol, strategy or day."""
    with _client() as qp:
        df = qp.trade_stats(_split(accounts), start, end, by=by)
    console.print(_table(df))


@trades_app.command("summary")
def trades_summary(accounts: list[str] | None = typer.Argument(None, help="Accounts (default: all)")) -> None:
    """Per account: capital, allocations, status, all-time trade totals, open positions."""
    with _client() as qp:
        df = qp.account_summary(_split(accounts))
    # One column per account: a dozen figures per account do not fit side by side in a terminal.
    console.print(_table(df.set_index("account").T.reset_index(names="account")))


@trades_app.command("roll-day")
def trades_roll_day(
    accounts: list[str] | None = typer.Argument(None, help="Accounts (default: the active ones)"),
    day: str | None = typer.Option(
        None, help="Trading day rolled (default: today); a repeated roll of a day is a no-op"
    ),
) -> None:
    """Add a held day to every open position (run once per trading day)."""
    with _client() as qp:
        rolled = qp.trading.roll_day(_split(accounts), day)
    for account, n in rolled.items():
        console.print(f"{account}: {n} positions rolled")


# ------------------------------------------------------------------------------------- migrate


def _files(directory: Path | None):
    from quant_platform.settings import settings
    from quant_platform.trading.files import FileStore

    return FileStore(directory or settings().files_dir)


def _service(qp):
    """The client's trading service without dual writes: an import must not write the files it reads."""
    from quant_platform.settings import settings
    from quant_platform.trading.service import TradingService

    return TradingService(qp.cold, qp.warm, qp.hot, calendar=settings().calendar)


def _warn_memory_hot(qp) -> None:
    if qp.redis_url.startswith("memory"):
        console.print(
            "[yellow]note:[/yellow] the hot tier is memory:// (in this process only): positions imported "
            "here are gone when it exits; set QP_REDIS_URL to a Redis server to keep them",
            soft_wrap=True,
        )


_DIR = typer.Option(None, "--dir", help="File store folder (default: QP_FILES_DIR)")


@migrate_app.command("import")
def migrate_import(directory: Path | None = _DIR) -> None:
    """Import JSON positions, CSV trades of every account and CSV klines of every symbol (repeatable)."""
    from quant_platform.trading.migrate import import_files, import_klines

    files = _files(directory)
    with _client() as qp:
        _warn_memory_hot(qp)
        done = import_files(files, _service(qp))
        klines = import_klines(files, qp.cold)
    for account, r in done.items():
        console.print(
            f"{account}: {r['trades']:,} trades ({r['duplicates']:,} already stored), "
            f"{r['positions']} positions"
        )
    if klines:
        new = sum(r["klines"] for r in klines.values())
        old = sum(r["duplicates"] for r in klines.values())
        console.print(f"klines: {new:,} new days of {len(klines)} symbols ({old:,} already stored)")


@migrate_app.command("verify")
def migrate_verify(directory: Path | None = _DIR) -> None:
    """Rows and checksums per account (symbol for klines) and table, file store vs tiers; exit 1 on
    any difference."""
    from quant_platform.trading.migrate import verify, verify_klines

    files = _files(directory)
    with _client() as qp:
        checks = verify(files, _service(qp)) + verify_klines(files, qp.cold)
    table = Table()
    for col in (
        "table",
        "account / symbol",
        "file rows",
        "store rows",
        "file checksum",
        "store checksum",
        "status",
    ):
        table.add_column(col)
    for c in checks:
        status = "[green]ok[/green]" if c.ok else "[red]DIFFERENT[/red]"
        table.add_row(
            c.table,
            c.account,
            f"{c.file_rows:,}",
            f"{c.store_rows:,}",
            c.file_checksum,
            c.store_checksum,
            status,
        )
    console.print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@migrate_app.command("export")
def migrate_export(directory: Path | None = _DIR) -> None:
    """Write every account's trades and positions, and the klines of the file store's symbols, back
    to the file store formats (for a rollback)."""
    from quant_platform.trading.migrate import export_files, export_klines

    files = _files(directory)
    with _client() as qp:
        done = export_files(files, _service(qp))
        klines = export_klines(files, qp.cold)
    for account, (trades, positions) in done.items():
        console.print(f"{account}: {trades:,} trades, {positions} positions -> {files.root}")
    if klines:
        console.print(f"klines: {sum(klines.values()):,} days of {len(klines)} symbols -> {files.root}")
