"""Politeness towards vendors: a token-bucket rate limiter and retries with backoff and jitter.

Both take their clock and sleep function as arguments, so tests measure spacing and backoff on a
fake clock instead of sleeping.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

log = logging.getLogger(__name__)

T = TypeVar("T")


class SourceUnavailable(RuntimeError):
    """A vendor call kept failing with transport errors after all retries."""


class TokenBucket:
    """At most `rate` calls per second on average, bursts of up to `capacity` calls.

    `acquire()` blocks (through `sleep`) until a token is available and returns the seconds it
    waited. Waiting callers reserve their token first, so concurrent threads are spaced correctly.

    Example:
        >>> bucket = TokenBucket(rate=2.0)       # one call every 0.5 s, no burst
        >>> bucket.acquire()
        0.0
    """

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 calls/s, got {rate}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, tokens: float = 1.0) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= tokens
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait


def is_transient(exc: BaseException) -> bool:
    """Transport errors worth retrying: OS/socket errors (requests' and http.client's errors are
    OSErrors), timeouts, and an HTML throttling page where JSON was expected."""
    return isinstance(exc, (OSError, TimeoutError, ConnectionError, json.JSONDecodeError))


def call_with_retry(
    fn: Callable[[], T],
    *,
    what: str,
    attempts: int = 4,
    initial: float = 0.5,
    max_wait: float = 8.0,
    jitter: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    retry_if: Callable[[BaseException], bool] = is_transient,
) -> T:
    """`fn()` with up to `attempts` tries on transient errors, waiting initial * 2^n (+ jitter, capped
    at `max_wait`) between them. Non-transient errors propagate at once; exhaustion raises
    `SourceUnavailable` naming the call, the number of attempts and the last error."""
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential_jitter(initial=initial, max=max_wait, jitter=jitter),
        retry=tenacity.retry_if_exception(retry_if),
        sleep=sleep,
        before_sleep=lambda rs: log.warning(
            "%s failed (attempt %d/%d): %s; retrying in %.2fs",
            what,
            rs.attempt_number,
            attempts,
            rs.outcome.exception() if rs.outcome else "?",
            rs.next_action.sleep if rs.next_action else 0.0,
        ),
        reraise=False,
    )
    try:
        return retrying(fn)
    except tenacity.RetryError as err:
        last = err.last_attempt.exception()
        raise SourceUnavailable(
            f"{what}: gave up after {attempts} attempts; last error: {type(last).__name__}: {last}"
        ) from last
