"""Market-source resources beyond the synthetic default, and the choice between them by configuration.

`QP_MARKET_SOURCE=synthetic|akshare|files` (default synthetic) selects the `market` resource's
source; `market_resource_from_env()` builds it. A run may override the choice with the run tag
`quant_platform/market_source` (the file-drop sensor tags its runs `files`, so dropped files are
ingested from the drop folder whatever the deployment's default source is).

Environment (all optional):
    QP_MARKET_SOURCE        synthetic | akshare | files
    QP_CALENDAR             exchange calendar (XSHG)
    QP_DROP_DIR             file-drop folder (default $QP_HOME/drop)
    QP_AKSHARE_ADJUST       "" (none, default) | qfq | hfq
    QP_AKSHARE_RATE         vendor calls per second (default 2)
    QP_AKSHARE_SYMBOLS      comma-separated universe (default: the whole market from the spot call)
    QP_SYNTHETIC_SYMBOLS    synthetic universe size (default 50)
"""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from quant_platform.conventions import MARKET_SOURCE_TAG
from quant_platform.resources.addresses import store_address
from quant_platform.resources.market import MarketDataResource, SyntheticMarketResource
from quant_platform.settings import MARKET_SOURCES as SOURCES
from quant_platform.settings import settings
from quant_platform.sources.base import MarketSource


class AkshareMarketResource(MarketDataResource):
    """A-share klines and realtime spot from AKShare (needs `quant-platform[akshare]` where it runs).

    With `clickhouse_dsn` set and no price adjustment, klines already in the cold tier's
    `klines_daily` are not fetched again.
    """

    adjust: str = ""
    symbols: list[str] | None = None
    calls_per_second: float = 2.0
    max_attempts: int = 4
    calendar: str = "XSHG"
    clickhouse_dsn: str | None = None

    def source(self) -> MarketSource:
        from quant_platform.sources.akshare import AkshareSource, cold_kline_lookup

        lookup = cold_kline_lookup(self.clickhouse_dsn) if self.clickhouse_dsn and not self.adjust else None
        return AkshareSource(
            adjust=self.adjust,
            symbols=self.symbols,
            known_klines=lookup,
            calls_per_second=self.calls_per_second,
            max_attempts=self.max_attempts,
            calendar=self.calendar,
        )


class FileDropMarketResource(MarketDataResource):
    """Quotes and klines from CSV/Parquet files dropped into `drop_dir` (default `QP_DROP_DIR`).

    Its universe is the symbol master of the cold tier at `clickhouse_dsn` (default: the configured
    cold store), never the symbols of the dropped rows.
    """

    drop_dir: str | None = None
    calendar: str = "XSHG"
    clickhouse_dsn: str | None = None

    def source(self) -> MarketSource:
        from quant_platform.sources.files import FileDropSource
        from quant_platform.sources.symbols import cold_symbol_master

        master = cold_symbol_master(self.clickhouse_dsn) if self.clickhouse_dsn else None
        return FileDropSource(self.drop_dir, calendar=self.calendar, symbol_master=master)


class SelectableMarketResource(MarketDataResource):
    """The configured `kind` of source, unless the run is tagged `quant_platform/market_source=<kind>`."""

    kind: str = "synthetic"
    calendar: str = "XSHG"
    n_symbols: int = 50
    seed: int = 7
    snapshot_seconds: int = 15
    drop_dir: str | None = None
    akshare_adjust: str = ""
    akshare_symbols: list[str] | None = None
    akshare_calls_per_second: float = 2.0
    clickhouse_dsn: str | None = None

    _run_kind: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = getattr(context, "dagster_run", None)
        tag = (run.tags or {}).get(MARKET_SOURCE_TAG) if run is not None else None
        if tag is not None and tag not in SOURCES:
            raise ValueError(f"run tag {MARKET_SOURCE_TAG}={tag!r}: expected one of {SOURCES}")
        self._run_kind = tag

    def selected(self) -> MarketDataResource:
        kind = self._run_kind or self.kind
        if kind == "synthetic":
            return SyntheticMarketResource(
                n_symbols=self.n_symbols,
                seed=self.seed,
                snapshot_seconds=self.snapshot_seconds,
                calendar=self.calendar,
            )
        if kind == "akshare":
            return AkshareMarketResource(
                adjust=self.akshare_adjust,
                symbols=self.akshare_symbols,
                calls_per_second=self.akshare_calls_per_second,
                calendar=self.calendar,
                clickhouse_dsn=self.clickhouse_dsn,
            )
        if kind == "files":
            return FileDropMarketResource(
                drop_dir=self.drop_dir, calendar=self.calendar, clickhouse_dsn=self.clickhouse_dsn
            )
        raise ValueError(f"market source must be one of {SOURCES}, got {kind!r}")

    def source(self) -> MarketSource:
        return self.selected().source()


def market_resource_from_env() -> SelectableMarketResource:
    """The `market` resource chosen by `QP_MARKET_SOURCE` (synthetic by default); see module docstring."""
    current = settings()
    kind = current.market_source
    return SelectableMarketResource(
        kind=kind,
        calendar=current.calendar,
        n_symbols=current.synthetic_symbols,
        drop_dir=str(current.drop_dir),
        akshare_adjust=current.akshare_adjust,
        akshare_symbols=list(current.akshare_symbols) if current.akshare_symbols else None,
        akshare_calls_per_second=current.akshare_rate,
        # akshare: klines already stored; files: the symbol master. A run tag may pick either.
        clickhouse_dsn=store_address("QP_CLICKHOUSE_DSN", current.stores.clickhouse_dsn),
    )
