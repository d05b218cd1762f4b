"""The symbol master: which symbols exist on a trading day, recorded per source in the cold tier.

The row rules quarantine a row whose symbol is not in the universe (`unknown_symbol`). That universe
must never come from the rows being checked, or every made-up symbol would be "known". So each day's
listing is recorded in the cold table `symbol_master` (`core.schema.SYMBOL_MASTER`), and sources that
have no listing of their own (the file drops) read it from there:

- a source with a listing (synthetic, AKShare) records `source.universe(day)` when it ingests a day:
  `record_source_universe(cold, source, days)`;
- a deployment fed only by files imports a list: `quant-platform symbols import FILE`
  (`import_symbols`), or `record_universe(cold, "import", day, symbols)` from Python;
- `FileDropSource.universe(day)` is `cold.symbol_master(day)`: each source's latest list on or
  before the day, united over the sources. With no list recorded, it is empty and every row is
  `unknown_symbol`: never the symbols of the rows being checked.

Nothing here imports Dagster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from quant_platform.sources.vendor_columns import normalise_symbol, rename_file_columns
from quant_platform.storage.cold import ColdStore

IMPORT_SOURCE = "import"


def record_universe(
    cold: ColdStore, source: str, day: dt.date | str, symbols: Iterable[str], **details
) -> int:
    """Record `symbols` as `source`'s listing of trading day `day` (replacing that day's earlier list
    of the same source; idempotent). `details`: `names=` / `boards=` mappings. Returns rows written."""
    return cold.write_symbol_master(source, day, symbols, **details)


def record_source_universe(
    cold: ColdStore, source, days: Sequence[dt.date], universes: Mapping[dt.date, Sequence[str]] | None = None
) -> int:
    """Record `source.universe(day)` for each of `days` under `source.name` (one write for all days);
    `universes` passes lists the caller already has.

    A no-op for sources whose universe is read from the master (`universe_from_master = True`, the
    file drops): copying the master into itself would make it look confirmed by a second source.
    """
    if getattr(source, "universe_from_master", False):
        return 0
    known = universes or {}
    lists = {day: list(known[day]) if day in known else source.universe(day) for day in days}
    return cold.write_symbol_masters(source.name, lists)


def cold_symbol_master(dsn: str, database: str = "quant") -> Callable[[dt.date], list[str]]:
    """`day -> symbols` from the cold tier's symbol master, opening the store only for the query (the
    embedded engine allows one process per data path; a second client in the same process is fine)."""

    def lookup(day: dt.date) -> list[str]:
        with ColdStore(dsn, database) as cold:
            return cold.symbol_master(day)

    return lookup


def read_symbols_file(path: str | Path) -> dict[dt.date | None, list[str]]:
    """Symbols of a CSV with a `symbol` column (aliases `code`, `ticker`) and optionally `trade_date`
    (alias `date`): {day: symbols}, key None for rows without a day. A-share codes are normalised
    (`600000` -> `600000.SH`), other symbols kept as written. Raises ValueError for a file without a
    symbol column, an unreadable date, or a symbol cell that is empty."""
    path = Path(path)
    frame = rename_file_columns(pd.read_csv(path, dtype=str, keep_default_na=False))
    if "symbol" not in frame.columns:
        raise ValueError(f"{path.name}: no symbol column (symbol, code or ticker); got {list(frame.columns)}")
    out: dict[dt.date | None, set[str]] = {}
    for i, row in enumerate(frame.itertuples(index=False), start=2):
        text = str(row.symbol).strip()
        if not text:
            raise ValueError(f"{path.name}: line {i}: empty symbol")
        try:
            symbol = normalise_symbol(text)
        except ValueError:
            symbol = text
        day = None
        raw_day = str(getattr(row, "trade_date", "") or "").strip()
        if raw_day:
            try:
                day = pd.Timestamp(raw_day).date()
            except ValueError:
                raise ValueError(f"{path.name}: line {i}: trade_date {raw_day!r} is not a date") from None
        out.setdefault(day, set()).add(symbol)
    return {day: sorted(symbols) for day, symbols in out.items()}


def import_symbols(
    cold: ColdStore, path: str | Path, day: dt.date | str | None = None, source: str = IMPORT_SOURCE
) -> dict[dt.date, int]:
    """Record the symbols of a CSV (`read_symbols_file`) in the master: rows with a trade_date under
    their day, the others under `day`. Returns rows written per day."""
    lists = read_symbols_file(path)
    undated = lists.pop(None, None)
    if undated is not None:
        if day is None:
            raise ValueError(f"{Path(path).name}: rows without a trade_date need a day (--day)")
        key = pd.Timestamp(day).date()
        lists[key] = sorted(set(lists.get(key, [])) | set(undated))
    cold.write_symbol_masters(source, lists)
    return {d: len(symbols) for d, symbols in sorted(lists.items())}


__all__ = [
    "IMPORT_SOURCE",
    "cold_symbol_master",
    "import_symbols",
    "read_symbols_file",
    "record_source_universe",
    "record_universe",
]
