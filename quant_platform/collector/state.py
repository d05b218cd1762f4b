"""Per-pair bookkeeping of the collector: sequence numbers (gaps, duplicates) and change rates."""

from __future__ import annotations

import math

CHANGE_WINDOWS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900}


class PairState:
    """Sequence numbers seen for one pair.

    `high` is the highest accepted seq (0 = nothing yet). A jump above `high + 1` records the seqs in
    between as missing (with the monotonic time they were noticed); a later arrival of a missing seq
    is accepted, anything else at or below `high` is a duplicate, unless it is a sequence reset.

    A feed that restarts numbers its ticks from 1 again. Such a tick looks like a duplicate by its
    seq, but its event time is newer than the newest tick accepted (`last_event_ms`), which a
    duplicate or a replay never is: `is_reset` tells it apart, and `reset` starts over from it.
    """

    __slots__ = ("high", "missing", "last_request", "last_event_ms", "resets")

    def __init__(self, high: int = 0, last_event_ms: int = 0) -> None:
        self.high = high
        self.missing: dict[int, float] = {}
        self.last_request = 0.0
        self.last_event_ms = last_event_ms  # event time of the newest accepted tick (0 = unknown)
        self.resets = 0

    def is_reset(self, seq: int, event_ms: int | None) -> bool:
        """`seq` is at or below `high`, not a missing one, and newer in time than every tick seen."""
        return (
            seq <= self.high
            and seq not in self.missing
            and event_ms is not None
            and self.last_event_ms > 0
            and event_ms > self.last_event_ms
        )

    def reset(self, seq: int) -> None:
        """Start the sequence over so that `seq` is accepted as the next tick; old gaps are moot."""
        self.high = seq - 1
        self.missing.clear()
        self.resets += 1

    def seen_event(self, seq: int, event_ms: int) -> None:
        """Remember the event time of the newest tick (an old replayed seq never moves it back)."""
        if seq == self.high and event_ms > self.last_event_ms:
            self.last_event_ms = event_ms

    def accept(self, seq: int, now: float, max_gap: int = 100_000) -> bool:
        """True if `seq` is new (and records any gap it opens); False for a duplicate."""
        high = self.high
        if seq > high:
            if high and seq > high + 1:
                first = max(high + 1, seq - max_gap)
                for s in range(first, seq):
                    self.missing[s] = now
            self.high = seq
            return True
        if seq in self.missing:
            del self.missing[seq]
            return True
        return False

    def resume_from(self) -> int | None:
        """Where a replay must start after a reconnect: the oldest missing seq, else high + 1."""
        if not self.high:
            return None
        return min(self.missing) if self.missing else self.high + 1


class ChangeTracker:
    """1m/5m/15m change rates per symbol from a per-second price ring (last price carried forward).

    The rate for window w is `price / price(w seconds before the latest tick) - 1`, NaN until the
    symbol has w seconds of history. Each second of the ring remembers the seq its price came from,
    so a tick that arrives late (a replayed gap) still lands in its second and replaces the prices
    carried forward from older ticks. Updates are O(1) amortised; memory is 2 x 901 slots per symbol.

    Example:
        >>> t = ChangeTracker()
        >>> t.update("BTC-USDT", 1_000, 100.0, 1); t.update("BTC-USDT", 1_060, 101.0, 2)
        >>> round(t.rates("BTC-USDT")["change_1m"], 4)
        0.01
    """

    def __init__(self, windows: dict[str, int] | None = None) -> None:
        self.windows = dict(windows or CHANGE_WINDOWS)
        self.size = max(self.windows.values()) + 1
        self._state: dict[str, list] = {}  # symbol -> [last_sec, first_sec, prices, seqs]

    def update(self, symbol: str, sec: int, price: float, seq: int = 0) -> None:
        st = self._state.get(symbol)
        n = self.size
        if st is None:
            prices, seqs = [math.nan] * n, [-1] * n
            prices[sec % n], seqs[sec % n] = price, seq
            self._state[symbol] = [sec, sec, prices, seqs]
            return
        last, first, prices, seqs = st
        if sec > last:
            carried, carried_seq = prices[last % n], seqs[last % n]
            for s in range(max(last + 1, sec - n + 1), sec):
                prices[s % n], seqs[s % n] = carried, carried_seq
            prices[sec % n], seqs[sec % n] = price, seq
            st[0] = sec
            return
        if sec <= last - n:  # older than the ring: no rate can use it
            return
        if sec < first:
            st[1] = sec
        # A late or same-second tick owns its second and the following seconds that still hold an
        # older tick's price (seqs never decrease along the ring, so stop at the first newer one).
        for s in range(sec, last + 1):
            i = s % n
            if seqs[i] > seq:
                break
            prices[i], seqs[i] = price, seq

    def rates(self, symbol: str) -> dict[str, float]:
        st = self._state.get(symbol)
        out = {f"change_{k}": math.nan for k in self.windows}
        if st is None:
            return out
        last, first, prices, _ = st
        price = prices[last % self.size]
        for name, w in self.windows.items():
            ref_sec = last - w
            if ref_sec >= first:
                ref = prices[ref_sec % self.size]
                if ref and not math.isnan(ref):
                    out[f"change_{name}"] = price / ref - 1.0
        return out
