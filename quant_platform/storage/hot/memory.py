"""`MemoryHotStore`: the in-process hot store of local deployments and tests.

A complete second implementation of the interface with its own locking; it shares the codecs with
the Redis store but nothing else, so it sits in its own module.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from quant_platform.storage.hot.base import RUN_EVENT_TTL, HotStore, RunEventSubscription, run_channel
from quant_platform.storage.hot.codec import (
    CHANGE_FREQS,
    HotPing,
    PositionState,
    _check_name,
    _event_payload,
    _prices,
    _rate_items,
    _rates_frame,
    _unique,
)
from quant_platform.storage.hot.policy import TTLPolicy
from quant_platform.storage.hot.quote_codec import decode_quotes, encode_quotes


class _MemorySubscription(RunEventSubscription):
    def __init__(self, store: MemoryHotStore, channel: str) -> None:
        self._store, self._channel = store, channel
        self._queue: queue.Queue[str] = queue.Queue()
        with store._lock:
            store._subscribers.setdefault(channel, []).append(self._queue)

    def get(self, timeout: float = 1.0) -> dict[str, Any] | None:
        try:
            return json.loads(self._queue.get(timeout=max(0.0, timeout)))
        except queue.Empty:
            return None

    def close(self) -> None:
        with self._store._lock:
            subs = self._store._subscribers.get(self._channel, [])
            if self._queue in subs:
                subs.remove(self._queue)
            if not subs:
                self._store._subscribers.pop(self._channel, None)


class MemoryHotStore(HotStore):
    """In-process hot store with Redis semantics: same codecs, same TTLs, atomic position updates.

    One lock guards all state, which makes every operation atomic, as a Lua script is on Redis.
    Expired entries are dropped when they are read, and swept at most once a minute on writes.
    """

    backend = "memory"

    def __init__(self, *, ttl: TTLPolicy | None = None, session_ttl: float | None = None) -> None:
        self.url = "memory://"
        self.ttl = ttl or TTLPolicy(session_ttl=300.0 if session_ttl is None else session_ttl)
        self._lock = threading.RLock()
        self._values: dict[str, tuple[str, float]] = {}  # key -> (value, monotonic expiry)
        self._quotes: dict[str, bytes] = {}  # symbol -> packed record
        self._quote_expiry: dict[str, float] = {}  # symbol -> monotonic expiry, apart: read in C loops
        self._positions: dict[
            str, dict[str, list[float | None]]
        ] = {}  # account -> symbol -> [held, entry, max, min, quantity]
        self._rolled: dict[str, str] = {}
        self._subscribers: dict[str, list[queue.Queue[str]]] = {}
        self._last_sweep = time.monotonic()

    def _put(self, items: Iterable[tuple[str, str]], ttl: float) -> None:
        now = time.monotonic()
        with self._lock:
            for key, value in items:
                self._values[key] = (value, now + ttl)
            if now - self._last_sweep > 60:
                self._values = {k: v for k, v in self._values.items() if v[1] > now}
                expired = [k for k, t in self._quote_expiry.items() if t <= now]
                for k in expired:
                    del self._quotes[k], self._quote_expiry[k]
                self._last_sweep = now

    def _get(self, keys: Sequence[str]) -> list[str | None]:
        now = time.monotonic()
        out: list[str | None] = []
        with self._lock:
            for key in keys:
                hit = self._values.get(key)
                if hit is not None and hit[1] <= now:
                    del self._values[key]
                    hit = None
                out.append(None if hit is None else hit[0])
        return out

    def set_latest_quotes(self, df: pd.DataFrame, *, now: pd.Timestamp | None = None) -> int:
        docs = encode_quotes(df)  # the same packed records as Redis, so both answer identically
        expiry = time.monotonic() + self.ttl.seconds(now)
        with self._lock:
            self._quotes.update(docs)
            self._quote_expiry.update(dict.fromkeys(docs, expiry))
        self._put((), 0.0)  # the periodic sweep
        return len(docs)

    def get_latest_quotes(self, symbols: Iterable[str]) -> pd.DataFrame:
        syms = _unique(symbols)
        now = time.monotonic()
        with self._lock:
            docs = list(map(self._quotes.get, syms))
            expiry = np.fromiter(map(self._quote_expiry.get, syms, repeat(0.0)), float, len(syms))
        for i in np.flatnonzero(expiry <= now).tolist():
            docs[i] = None
        return decode_quotes(syms, docs)

    def quote_ttl(self, symbol: str) -> float | None:
        with self._lock:
            hit = self._quote_expiry.get(symbol)
            left = None if hit is None else hit - time.monotonic()
        return left if left is not None and left > 0 else None

    def set_change_rates(self, df: pd.DataFrame, *, now: pd.Timestamp | None = None) -> int:
        items = _rate_items(df)
        for freq, seconds in CHANGE_FREQS.items():
            ttl = self.ttl.seconds(now, floor=2 * seconds)
            self._put(((f"chg:{f}:{s}", repr(v)) for f, s, v in items if f == freq), ttl)
        return len(items)

    def get_change_rates(self, symbols: Iterable[str]) -> pd.DataFrame:
        syms = _unique(symbols)
        rows: dict[str, dict[str, float]] = {}
        for freq in CHANGE_FREQS:
            for sym, value in zip(syms, self._get([f"chg:{freq}:{s}" for s in syms]), strict=True):
                if value is not None:
                    rows.setdefault(sym, {})[f"change_{freq}"] = float(value)
        return _rates_frame({s: rows[s] for s in syms if s in rows})

    def open_position(
        self, account: str, symbol: str, entry_price: float, *, held_days: int = 0
    ) -> PositionState:
        _check_name("account", account)
        _check_name("symbol", symbol)
        p = float(entry_price)
        with self._lock:
            self._positions.setdefault(account, {})[symbol] = [int(held_days), p, p, p, None]
        return PositionState(account, symbol, int(held_days), p, p, p)

    def set_position_quantities(self, account: str, quantities: Mapping[str, float]) -> int:
        n = 0
        with self._lock:
            book = self._positions.get(account, {})
            for sym, q in _prices(quantities):
                st = book.get(sym)
                if st is not None:
                    st[4] = q
                    n += 1
        return n

    def close_position(self, account: str, symbol: str) -> bool:
        with self._lock:
            return self._positions.get(account, {}).pop(symbol, None) is not None

    def get_position(self, account: str, symbol: str) -> PositionState | None:
        with self._lock:
            st = self._positions.get(account, {}).get(symbol)
            return None if st is None else PositionState(account, symbol, int(st[0]), *st[1:])

    def get_positions(self, account: str) -> dict[str, PositionState]:
        with self._lock:
            return {
                s: PositionState(account, s, int(st[0]), *st[1:])
                for s, st in self._positions.get(account, {}).items()
            }

    def update_position_prices(self, account: str, prices: Mapping[str, float]) -> int:
        n = 0
        with self._lock:
            book = self._positions.get(account, {})
            for sym, p in _prices(prices):
                st = book.get(sym)
                if st is not None:
                    st[2], st[3] = max(st[2], p), min(st[3], p)
                    n += 1
        return n

    def roll_day(self, account: str, day: dt.date | str | None = None) -> int:
        with self._lock:
            if day is not None:
                key = str(day)
                if account in self._rolled and key <= self._rolled[account]:
                    return 0
                self._rolled[account] = key
            book = self._positions.get(account, {})
            for st in book.values():
                st[0] += 1
            return len(book)

    def publish_run_event(self, run_id: str, event: Mapping[str, Any]) -> int:
        payload = _event_payload(run_id, event)
        self._put([(f"run:{run_id}", payload)], RUN_EVENT_TTL)
        with self._lock:
            subs = list(self._subscribers.get(run_channel(run_id), []))
        for q in subs:
            q.put(payload)
        return len(subs)

    def last_run_event(self, run_id: str) -> dict[str, Any] | None:
        (doc,) = self._get([f"run:{run_id}"])
        return None if doc is None else json.loads(doc)

    def subscribe_run_events(self, run_id: str) -> RunEventSubscription:
        return _MemorySubscription(self, run_channel(run_id))

    def ping(self) -> HotPing:
        t0 = time.perf_counter()
        with self._lock:
            size = len(self._values) + len(self._quotes)
        latency = (time.perf_counter() - t0) * 1000
        return HotPing(self.url, self.backend, True, f"in-process ({size} keys)", round(latency, 4))

    def close(self) -> None:
        pass
