"""`ResilientHotStore`: wraps any hot store so that its outages degrade runs instead of failing them.

It depends only on the interface, never on a backend, so it has its own module. `FallbackReader`
is the type of its cold-tier fallback.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import pandas as pd

from quant_platform.core.schema import RAW_QUOTES
from quant_platform.storage.hot.base import HotStore, RunEventSubscription
from quant_platform.storage.hot.codec import (
    CHANGE_COLUMNS,
    HotPing,
    PositionState,
    _check_columns,
    _rates_frame,
    _unique,
)
from quant_platform.storage.hot.errors import HotStoreError, HotStoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

FallbackReader = Callable[[list[str]], pd.DataFrame]


class _NoEvents(RunEventSubscription):
    """Stands in for a subscription while the hot store is down: a channel on which nothing arrives."""

    def get(self, timeout: float = 1.0) -> dict[str, Any] | None:
        time.sleep(max(0.0, timeout))
        return None

    def close(self) -> None:
        pass


class ResilientHotStore(HotStore):
    """Wraps a hot store so that its outages degrade the platform instead of failing runs.

    When the primary is unreachable (`HotStoreUnavailable`):
    - quote reads return `fallback_reader(symbols)` (e.g. latest quotes from the cold tier) or an
      empty frame, and other reads return "nothing cached" (empty frame, None, {});
    - writes are skipped and counted in `skipped_writes`, and one warning is logged per outage;
    - a circuit breaker opens for `cooldown` seconds, doubling with each consecutive failure up to
      `max_cooldown`, so an outage costs one failed connection per cooldown and not one per call.
    Other store errors (e.g. Redis out of memory) are logged and degrade the same way without
    opening the circuit. Invalid arguments still raise ValueError, because those are bugs in the
    caller.

    Position reads return None/{} during an outage. Check `available` if a decision must not rely
    on a missing position.
    """

    def __init__(
        self,
        primary: HotStore,
        fallback_reader: FallbackReader | None = None,
        *,
        cooldown: float = 1.0,
        max_cooldown: float = 30.0,
        fill_misses: bool = False,
    ) -> None:
        self.primary = primary
        self.fallback_reader = fallback_reader
        self.cooldown, self.max_cooldown = cooldown, max_cooldown
        self.fill_misses = fill_misses
        self.url, self.backend, self.ttl = primary.url, f"resilient({primary.backend})", primary.ttl
        self.skipped_writes = 0
        self.fallback_reads = 0
        self._failures = 0
        self._open_until = 0.0
        self._outage_skips = 0
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """False while the circuit is open (the primary failed recently)."""
        return time.monotonic() >= self._open_until

    def _trip(self, err: HotStoreError) -> None:
        with self._lock:
            self._failures += 1
            wait = min(self.max_cooldown, self.cooldown * 2 ** (self._failures - 1))
            self._open_until = time.monotonic() + wait
            first = self._failures == 1
        if first:
            log.warning("hot store unavailable, degrading for %.1fs (cache writes skipped): %s", wait, err)

    def _recovered(self) -> None:
        if self._failures:
            with self._lock:
                skipped, self._failures, self._outage_skips = self._outage_skips, 0, 0
            log.warning("hot store %s is back; %d cache writes were skipped meanwhile", self.url, skipped)

    def _call(self, op: str, fn: Callable[[], T], degraded: Callable[[], T], *, write: bool) -> T:
        if self.available:
            try:
                result = fn()
            except HotStoreUnavailable as err:
                self._trip(err)
            except HotStoreError as err:
                log.warning("hot store %s: %s failed, degrading: %s", self.url, op, err)
            else:
                self._recovered()
                return result
        if write:
            with self._lock:
                self.skipped_writes += 1
                self._outage_skips += 1
            log.debug("hot store %s unavailable: skipped %s", self.url, op)
        return degraded()

    def _fallback_quotes(self, symbols: list[str]) -> pd.DataFrame:
        if self.fallback_reader is None or not symbols:
            return RAW_QUOTES.empty()
        with self._lock:
            self.fallback_reads += 1
        try:
            return self.fallback_reader(symbols)
        except Exception:  # the fallback is best-effort too
            log.warning("hot store fallback reader failed", exc_info=True)
            return RAW_QUOTES.empty()

    def set_latest_quotes(self, df: pd.DataFrame, *, now: pd.Timestamp | None = None) -> int:
        _check_columns(df, "quotes")  # argument errors raise, whatever the primary's state
        return self._call(
            "set_latest_quotes", lambda: self.primary.set_latest_quotes(df, now=now), lambda: 0, write=True
        )

    def get_latest_quotes(self, symbols: Iterable[str]) -> pd.DataFrame:
        syms = _unique(symbols)
        hit = self._call(
            "get_latest_quotes", lambda: self.primary.get_latest_quotes(syms), lambda: None, write=False
        )
        if hit is None:
            return self._fallback_quotes(syms)
        if self.fill_misses and len(hit) < len(syms):
            cached = set(hit["symbol"])
            missing = [s for s in syms if s not in cached]
            extra = self._fallback_quotes(missing)
            if not extra.empty:
                hit = pd.concat([hit, extra], ignore_index=True) if not hit.empty else extra
        return hit

    def quote_ttl(self, symbol: str) -> float | None:
        return self._call("quote_ttl", lambda: self.primary.quote_ttl(symbol), lambda: None, write=False)

    def set_change_rates(self, df: pd.DataFrame, *, now: pd.Timestamp | None = None) -> int:
        _check_columns(df, "change rates", CHANGE_COLUMNS)
        return self._call(
            "set_change_rates", lambda: self.primary.set_change_rates(df, now=now), lambda: 0, write=True
        )

    def get_change_rates(self, symbols: Iterable[str]) -> pd.DataFrame:
        syms = _unique(symbols)
        return self._call(
            "get_change_rates",
            lambda: self.primary.get_change_rates(syms),
            lambda: _rates_frame({}),
            write=False,
        )

    def open_position(
        self, account: str, symbol: str, entry_price: float, *, held_days: int = 0
    ) -> PositionState:
        p = float(entry_price)
        return self._call(
            "open_position",
            lambda: self.primary.open_position(account, symbol, p, held_days=held_days),
            lambda: PositionState(account, symbol, int(held_days), p, p, p),
            write=True,
        )

    def set_position_quantities(self, account: str, quantities: Mapping[str, float]) -> int:
        return self._call(
            "set_position_quantities",
            lambda: self.primary.set_position_quantities(account, quantities),
            lambda: 0,
            write=True,
        )

    def close_position(self, account: str, symbol: str) -> bool:
        return self._call(
            "close_position", lambda: self.primary.close_position(account, symbol), lambda: False, write=True
        )

    def get_position(self, account: str, symbol: str) -> PositionState | None:
        return self._call(
            "get_position", lambda: self.primary.get_position(account, symbol), lambda: None, write=False
        )

    def get_positions(self, account: str) -> dict[str, PositionState]:
        return self._call("get_positions", lambda: self.primary.get_positions(account), dict, write=False)

    def update_position_prices(self, account: str, prices: Mapping[str, float]) -> int:
        return self._call(
            "update_position_prices",
            lambda: self.primary.update_position_prices(account, prices),
            lambda: 0,
            write=True,
        )

    def roll_day(self, account: str, day: dt.date | str | None = None) -> int:
        return self._call("roll_day", lambda: self.primary.roll_day(account, day), lambda: 0, write=True)

    def publish_run_event(self, run_id: str, event: Mapping[str, Any]) -> int:
        return self._call(
            "publish_run_event", lambda: self.primary.publish_run_event(run_id, event), lambda: 0, write=True
        )

    def last_run_event(self, run_id: str) -> dict[str, Any] | None:
        return self._call(
            "last_run_event", lambda: self.primary.last_run_event(run_id), lambda: None, write=False
        )

    def subscribe_run_events(self, run_id: str) -> RunEventSubscription:
        return self._call(
            "subscribe_run_events", lambda: self.primary.subscribe_run_events(run_id), _NoEvents, write=False
        )

    def ping(self) -> HotPing:
        """Always asks the primary (a health probe bypasses the breaker) and never raises."""
        try:
            result = self.primary.ping()
        except HotStoreError as err:
            return HotPing(self.url, self.backend, False, error=str(err))
        self._open_until = 0.0
        self._recovered()
        return result

    def close(self) -> None:
        self.primary.close()
