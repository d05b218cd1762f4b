"""The `options` resource: which `OptionSource` feeds the options assets (`QP_OPTIONS_SOURCE`)."""

from __future__ import annotations

import dagster as dg

from quant_platform.options.sources import OptionSource, SyntheticOptionSource
from quant_platform.settings import settings


class OptionSourceResource(dg.ConfigurableResource):
    """`kind` synthetic (deterministic chain) or ib (Interactive Brokers through TWS / IB Gateway)."""

    kind: str = "synthetic"
    underlyings: list[str] = ["510050.SH"]
    calendar: str = "XSHG"
    seed: int = 11
    ib_host: str = "127.0.0.1"
    ib_port: int = 7497
    ib_client_id: int = 17
    ib_cache_path: str | None = None

    def source(self) -> OptionSource:
        if self.kind == "ib":
            from quant_platform.options.ib import IBOptionSource

            return IBOptionSource(
                self.underlyings,
                host=self.ib_host,
                port=self.ib_port,
                client_id=self.ib_client_id,
                calendar=self.calendar,
                cache_path=self.ib_cache_path,
            )
        if self.kind != "synthetic":
            raise ValueError(f"options source must be synthetic or ib, got {self.kind!r}")
        return SyntheticOptionSource(
            underlying_list=tuple(self.underlyings), seed=self.seed, calendar=self.calendar
        )


def option_source_resource_from_env() -> OptionSourceResource:
    """The resource `QP_OPTIONS_SOURCE`, `QP_OPTIONS_UNDERLYINGS` and `QP_IB_*` describe."""
    current = settings()
    return OptionSourceResource(
        kind=current.options_source,
        underlyings=list(current.options_underlyings),
        calendar=current.calendar,
        ib_host=current.ib_host,
        ib_port=current.ib_port,
        ib_client_id=current.ib_client_id,
        ib_cache_path=str(current.home / "ib_contracts.json"),
    )
