"""`quant-platform options`: look at the enriched option chain of a day.

Exit codes: 0 ok; 1 nothing stored for that underlying and day (or a store is down); 2 bad input.
"""

from __future__ import annotations

import math
import re

import typer
from rich.console import Console
from rich.table import Table

options_app = typer.Typer(
    help="Options: chains with implied vol, greeks and open interest.", no_args_is_help=True
)
console = Console()
UNDERLYING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


def _fail(message: str, code: int) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(code)


def _num(value: float, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


@options_app.command("chain")
def chain_command(
    underlying: str = typer.Option(..., help="Underlying, e.g. 510050.SH"),
    date: str = typer.Option(..., "--date", help="Trading day, YYYY-MM-DD"),
    expiry: str | None = typer.Option(None, help="Only this expiry, YYYY-MM-DD"),
) -> None:
    """The day's chain by expiry and strike: call and put mid, IV, delta, gamma, vega, open interest."""
    import pandas as pd

    from quant_platform.core.calendar import get_calendar
    from quant_platform.core.limits import check_window
    from quant_platform.partitions import calendar_name
    from quant_platform.settings import StoreSettings
    from quant_platform.storage.cold import ColdStore

    if not UNDERLYING.match(underlying):
        raise _fail(f"--underlying {underlying!r} is not a symbol (e.g. 510050.SH)", 2)
    try:
        day, _ = check_window(date, date, calendar_name())
    except ValueError as exc:
        raise _fail(f"--date: {exc}", 2) from None
    if not get_calendar(calendar_name()).is_session(day):
        raise _fail(f"--date {day} is not a {calendar_name()} trading day", 2)
    try:
        only = pd.Timestamp(expiry).normalize() if expiry else None
    except ValueError:
        raise _fail(f"--expiry {expiry!r} is not a date (YYYY-MM-DD)", 2) from None
    with ColdStore(StoreSettings.from_env().clickhouse_dsn) as cold:
        cold.ensure_schema()
        greeks = cold.read_table("option_greeks", day, day)
    greeks = greeks[greeks["underlying"] == underlying]
    if only is not None:
        greeks = greeks[greeks["expiry"] == only]
    if greeks.empty:
        raise _fail(
            f"no option_greeks for {underlying} on {day}: materialize them first "
            f"(quant-platform run --start {day} --end {day}, or the options_daily job)",
            1,
        )
    calls = greeks[greeks["kind"] == "call"].set_index(["expiry", "strike"])
    puts = greeks[greeks["kind"] == "put"].set_index(["expiry", "strike"])
    keys = sorted(set(calls.index) | set(puts.index))
    spot = float(greeks["underlying_price"].median())
    table = Table(
        title=f"{underlying} options on {day} (underlying {spot:g}; open interest: the day's close, T+1)"
    )
    for col in (
        "expiry",
        "strike",
        "C mid",
        "C iv",
        "C delta",
        "C OI",
        "gamma",
        "vega",
        "P mid",
        "P iv",
        "P delta",
        "P OI",
    ):
        table.add_column(col, justify="right")

    def leg(frame, key):
        return frame.loc[key] if key in frame.index else None

    for key in keys:
        c, p = leg(calls, key), leg(puts, key)
        any_leg = c if c is not None else p
        cells = [f"{key[0]:%Y-%m-%d}", f"{key[1]:g}"]
        for x in (c,):
            cells += [
                _num(None if x is None else x["mid"], ".4f"),
                _num(None if x is None else x["iv"], ".2%"),
                _num(None if x is None else x["delta"], "+.3f"),
                _num(None if x is None else x["open_interest"], ",.0f"),
            ]
        cells += [_num(any_leg["gamma"], ".3f"), _num(any_leg["vega"], ".4f")]
        cells += [
            _num(None if p is None else p["mid"], ".4f"),
            _num(None if p is None else p["iv"], ".2%"),
            _num(None if p is None else p["delta"], "+.3f"),
            _num(None if p is None else p["open_interest"], ",.0f"),
        ]
        style = (
            "bold" if abs(key[1] - spot) == min(abs(k[1] - spot) for k in keys if k[0] == key[0]) else None
        )
        table.add_row(*cells, style=style)
    console.print(table)
    flagged = int(greeks["parity_break"].sum())
    fallback = int(greeks["rollup_fallback"].sum())
    console.print(
        f"{len(greeks)} contracts; parity breaks {flagged}; taken from a slot before the close {fallback}"
    )
