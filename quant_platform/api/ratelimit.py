"""Per-user rate limits with the `limits` library: Redis when QP_REDIS_URL is redis://, memory otherwise.

Every response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (epoch
seconds); a request over the limit gets 429 RATE_LIMITED with `Retry-After`. The bucket is the user
(whether they came with a token or an API key); requests without valid credentials share a bucket
per client address. A rate-limit store that is down lets requests through (logged), rather than
taking the API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

log = logging.getLogger("quant_platform.api")


@dataclass(frozen=True)
class RateState:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window resets

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.reset - time.time())))
        return out


class RateLimiter:
    def __init__(self, spec: str, redis_url: str) -> None:
        from limits import parse, storage, strategies

        self.item = parse(spec)
        url = redis_url if redis_url.startswith(("redis://", "rediss://")) else "memory://"
        self.storage = storage.storage_from_string(url)
        self.strategy = strategies.FixedWindowRateLimiter(self.storage)

    def hit(self, key: str) -> RateState | None:
        try:
            allowed = self.strategy.hit(self.item, "qp-api", key)
            stats = self.strategy.get_window_stats(self.item, "qp-api", key)
        except Exception as exc:  # noqa: BLE001 - a down limiter must not take the API down
            log.warning("rate limiter unavailable: %s", type(exc).__name__)
            return None
        return RateState(allowed, self.item.amount, int(stats.remaining), int(math.ceil(stats.reset_time)))
