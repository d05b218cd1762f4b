"""Hot tier package; `from quant_platform.storage.hot import X` keeps working for every public name.

The implementation is being split into modules by concern; this file only re-exports them.
"""

from __future__ import annotations

from quant_platform.storage.hot.base import (
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
    decode_quotes,
    encode_quotes,
)
from quant_platform.storage.hot.errors import HotStoreError, HotStoreUnavailable
from quant_platform.storage.hot.memory import MemoryHotStore
from quant_platform.storage.hot.policy import TTLPolicy
from quant_platform.storage.hot.redis_store import RedisHotStore, hot_store_from_url, mask_redis_url
from quant_platform.storage.hot.resilient import FallbackReader, ResilientHotStore

__all__ = [
    "CHANGE_COLUMNS",
    "CHANGE_FREQS",
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
