"""Hot tier: the latest quotes, short-horizon change rates, live position state and run progress events.

The same `HotStore` interface has two implementations:
- `RedisHotStore(url)` is shared between processes (prod). It writes batches through pipelines, reads
  them with MGET, and does atomic position updates in Lua.
- `MemoryHotStore()` is an in-process dictionary with the same TTL semantics (local deployment and
  tests). It cannot be seen from other processes, so with Dagster's multiprocess executor each step
  has its own copy.

`hot_store_from_url(url)` picks one from `QP_REDIS_URL` ("memory://" or "redis://...").

A cache must never be the reason a run fails. `ResilientHotStore` wraps a store, and while that
store is unreachable it answers reads from a caller-supplied fallback (the cold tier) and skips and
counts writes. A small circuit breaker keeps it from paying a connection attempt on every call.

Expiry follows the trading calendar. While the market trades, entries live for a short TTL (5 min
by default), so stale quotes disappear quickly. While it is closed, entries live until the next
session opens (or until trading resumes after the lunch break), so the last close can be read all
weekend.

Modules: `policy` (TTLs), `codec` (records, change-rate frames), `quote_codec` (the packed quote
record), `errors`, `base` (the
interfaces), `memory`, `redis_store`, `resilient` and `factory` (`hot_store_from_url`). This file
only re-exports them, so `from quant_platform.storage.hot import X` stays the import path.
"""

from __future__ import annotations

from quant_platform.storage.hot.base import (
    RUN_EVENT_TTL,
    TERMINAL_EVENT_STATUSES,
    HotStore,
    RunEventSubscription,
    run_channel,
)
from quant_platform.storage.hot.codec import (
    CHANGE_COLUMNS,
    CHANGE_FREQS,
    HotPing,
    PositionState,
)
from quant_platform.storage.hot.errors import HotStoreError, HotStoreUnavailable
from quant_platform.storage.hot.factory import hot_store_from_url
from quant_platform.storage.hot.memory import MemoryHotStore
from quant_platform.storage.hot.policy import TTLPolicy
from quant_platform.storage.hot.quote_codec import decode_quotes, encode_quotes
from quant_platform.storage.hot.redis_store import RedisHotStore, mask_redis_url
from quant_platform.storage.hot.resilient import FallbackReader, ResilientHotStore

__all__ = [
    "CHANGE_COLUMNS",
    "CHANGE_FREQS",
    "RUN_EVENT_TTL",
    "TERMINAL_EVENT_STATUSES",
    "FallbackReader",
    "HotPing",
    "HotStore",
    "HotStoreError",
    "HotStoreUnavailable",
    "MemoryHotStore",
    "PositionState",
    "RedisHotStore",
    "ResilientHotStore",
    "RunEventSubscription",
    "TTLPolicy",
    "decode_quotes",
    "encode_quotes",
    "hot_store_from_url",
    "mask_redis_url",
    "run_channel",
]
