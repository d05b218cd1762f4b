"""The `HotStore` and `RunEventSubscription` interfaces, and the run-event channel and statuses.

Callers depend on this interface only, so each backend (memory, Redis, the resilient wrapper) lives
in its own module and is picked at run time.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pandas as pd

from quant_platform.storage.hot.codec import HotPing, PositionState
from quant_platform.storage.hot.policy import TTLPolicy

TERMINAL_EVENT_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
# How long a run's last event stays readable (`last_run_event`): long enough for anyone polling the
# run while it runs, short enough that finished runs do not pile up keys.
RUN_EVENT_TTL = 3600.0


def run_channel(run_id: str) -> str:
    """Pub/sub channel of a run's progress events. Run ids are globally unique, so no key prefix."""
    return f"runs.{run_id}"


class RunEventSubscription(ABC):
    """Progress events of one run, in publication order, as dicts. Use as a context manager."""

    @abstractmethod
    def get(self, timeout: float = 1.0) -> dict[str, Any] | None:
        """The next event, or None if none arrives within `timeout` seconds."""

    @abstractmethod
    def close(self) -> None: ...

    def listen(
        self, timeout: float = 5.0, *, until: Callable[[dict[str, Any]], bool] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield events until `until(event)` is true (that event included) or `timeout` passes without one.

        `until=lambda e: e.get("status") in TERMINAL_EVENT_STATUSES` follows a run to its end.
        """
        while (event := self.get(timeout)) is not None:
            yield event
            if until is not None and until(event):
                return

    def __enter__(self) -> RunEventSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class HotStore(ABC):
    """Latest quotes, change rates, position state and run events; see the package docstring."""

    url: str
    backend: str
    ttl: TTLPolicy

    # quotes ------------------------------------------------------------------------------------
    @abstractmethod
    def set_latest_quotes(self, df: pd.DataFrame, *, now: pd.Timestamp | None = None) -> int:
        """Store the newest row per symbol of a RAW_QUOTES-like frame; returns the number of symbols."""

    @abstractmethod
    def get_latest_quotes(self, symbols: Iterable[str]) -> pd.DataFrame:
        """One row per requested symbol that has a live entry, in request order (missing ones omitted)."""

    @abstractmethod
    def quote_ttl(self, symbol: str) -> float | None:
        """Seconds the symbol's quote has left to live, or None if there is none."""

    # change rates ------------------------------------------------------------------------------
    @abstractmethod
    def set_change_rates(self, df: pd.DataFrame, *, now: pd.Timestamp | None = None) -> int:
        """Store `change_1m/5m/15m` (any subset of those columns) per symbol; NaN values are skipped."""

    @abstractmethod
    def get_change_rates(self, symbols: Iterable[str]) -> pd.DataFrame:
        """Columns symbol, change_1m, change_5m, change_15m (NaN when unknown); symbols with none omitted."""

    # positions ---------------------------------------------------------------------------------
    @abstractmethod
    def open_position(
        self, account: str, symbol: str, entry_price: float, *, held_days: int = 0
    ) -> PositionState:
        """Start (or restart) tracking a position: max = min = entry price."""

    @abstractmethod
    def set_position_quantities(self, account: str, quantities: Mapping[str, float]) -> int:
        """Record the units held of open positions; symbols without a position are ignored.

        Returns the number of positions touched. Opening a position forgets its quantity.
        """

    @abstractmethod
    def close_position(self, account: str, symbol: str) -> bool:
        """Forget a position; False if there was none."""

    @abstractmethod
    def get_position(self, account: str, symbol: str) -> PositionState | None: ...

    @abstractmethod
    def get_positions(self, account: str) -> dict[str, PositionState]: ...

    @abstractmethod
    def update_position_prices(self, account: str, prices: Mapping[str, float]) -> int:
        """Atomically raise max / lower min with the given prices; symbols without a position are ignored.

        Returns the number of positions touched.
        """

    @abstractmethod
    def roll_day(self, account: str, day: dt.date | str | None = None) -> int:
        """Add one held day to every position of the account, atomically.

        With `day`, the roll is idempotent, and a retried roll for the same (or an earlier) day
        does nothing and returns 0. Returns the number of positions rolled.
        """

    # run events --------------------------------------------------------------------------------
    @abstractmethod
    def publish_run_event(self, run_id: str, event: Mapping[str, Any]) -> int:
        """Publish `event` (JSON-able; `run_id` and `ts` added if absent) on `runs.{run_id}`, and keep
        it as the run's last event (`last_run_event`) for `RUN_EVENT_TTL` seconds.

        Returns the number of subscribers that received it.
        """

    @abstractmethod
    def last_run_event(self, run_id: str) -> dict[str, Any] | None:
        """The last event published for the run within `RUN_EVENT_TTL`, for readers that come late."""

    @abstractmethod
    def subscribe_run_events(self, run_id: str) -> RunEventSubscription:
        """Subscribe before the run publishes; events are not buffered for late subscribers."""

    # admin -------------------------------------------------------------------------------------
    @abstractmethod
    def ping(self) -> HotPing: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> HotStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
