"""Which table a quality function is looking at: one name per `core.schema` table, plus short aliases."""

from __future__ import annotations

from quant_platform.core.schema import BAR_SCHEMAS, KLINES_DAILY, RAW_QUOTES, TableSchema

QUOTES = "raw_quotes"
KLINES = "klines_daily"
BAR_TABLES = {freq: schema.name for freq, schema in BAR_SCHEMAS.items()}  # '1m' -> 'bars_1m'

_ALIASES = {"quotes": QUOTES, "raw_quotes": QUOTES, "klines": KLINES, "klines_daily": KLINES}
_SCHEMAS = {QUOTES: RAW_QUOTES, KLINES: KLINES_DAILY, **{s.name: s for s in BAR_SCHEMAS.values()}}


def resolve(kind: str | TableSchema, freq: str | None = None) -> TableSchema:
    """The schema of `kind`: 'raw_quotes'/'quotes', 'bars_1m'/'bars_5m'/'bars_15m' (or 'bars' with
    `freq`), 'klines_daily'/'klines'. Raises ValueError on anything else."""
    if isinstance(kind, TableSchema):
        return kind
    name = _ALIASES.get(kind, kind)
    if name == "bars":
        if freq not in BAR_SCHEMAS:
            raise ValueError(f"kind 'bars' needs freq in {sorted(BAR_SCHEMAS)}, got {freq!r}")
        return BAR_SCHEMAS[freq]
    if name not in _SCHEMAS:
        raise ValueError(
            f"unknown table kind {kind!r}; expected one of {sorted(_SCHEMAS)} or 'bars' with freq"
        )
    return _SCHEMAS[name]


def bar_freq(schema: TableSchema) -> str | None:
    """'1m' for bars_1m, ...; None for tables that are not intraday bars."""
    for freq, s in BAR_SCHEMAS.items():
        if s.name == schema.name:
            return freq
    return None


def key_columns(schema: TableSchema) -> list[str]:
    """Columns that identify one row: (symbol, ts) for quotes and bars, (symbol, trade_date) for klines."""
    return ["symbol", "trade_date"] if schema.name == KLINES else ["symbol", "ts"]


def freq_minutes(freq: str) -> int:
    if not freq.endswith("m") or not freq[:-1].isdigit():
        raise ValueError(f"bar frequency must look like '5m', got {freq!r}")
    return int(freq[:-1])
