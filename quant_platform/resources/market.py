"""Market-data sources as Dagster resources: which vendor feeds `raw_quotes` is configuration."""

from __future__ import annotations

import dagster as dg

from quant_platform.sources.base import MarketSource
from quant_platform.sources.synthetic import SyntheticMarket


class MarketDataResource(dg.ConfigurableResource):
    """Base class: subclasses build a `MarketSource`; assets only call `source()`."""

    def source(self) -> MarketSource:
        raise NotImplementedError


class SyntheticMarketResource(MarketDataResource):
    """The embedded default: a deterministic synthetic A-share market (no network, no vendor)."""

    n_symbols: int = 50
    seed: int = 7
    snapshot_seconds: int = 15
    calendar: str = "XSHG"

    def source(self) -> MarketSource:
        return SyntheticMarket(
            n_symbols=self.n_symbols,
            seed=self.seed,
            snapshot_seconds=self.snapshot_seconds,
            calendar=self.calendar,
        )
