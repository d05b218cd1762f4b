"""A local fake exchange feed for tests, benchmarks and demos (loopback only).

It speaks the collector's wire protocol (see `service`), numbers every pair's ticks 1, 2, 3, ...,
keeps a replay history, and can misbehave on purpose: drop connections abruptly, stall while
keeping the connection open, send garbage, swap, duplicate or silently skip frames, and send a tick
with a bad value.

Example:
    >>> async def demo():                                                   # doctest: +SKIP
    ...     async with FakeExchange(["BTC-USDT"], ticks_per_pair=100) as ex:
    ...         print(ex.url)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Faults:
    """Misbehaviour per connection (index 0 is the first connection the server accepts)."""

    drop_after: dict[int, int] = field(default_factory=dict)  # connection -> abort after N frames
    stall_after: dict[int, int] = field(default_factory=dict)  # connection -> go silent after N frames
    stall_seconds: float = 3.0
    malformed_every: int = 0  # a garbage frame after every N frames
    swap_every: int = 0  # send frame i+1 before frame i, every N frames
    duplicate_every: int = 0  # send a frame twice, every N frames
    skip_every: int = 0  # silently skip a frame (live only; replays are complete), every N frames
    bad_values: set[tuple[str, int]] = field(default_factory=set)  # (pair, seq) whose price is "abc"
    crossed_book: set[tuple[str, int]] = field(default_factory=set)  # (pair, seq) whose bid > ask
    huge_volume: set[tuple[str, int]] = field(default_factory=set)  # (pair, seq) with a 1e20 volume
    reset_after_rounds: int = 0  # restart every pair's seq at 1 after N rounds (an exchange restart)


GARBAGE = (
    '{"s": "BTC',
    "not json at all",
    '{"s": "NOPE-USDT", "seq": 1, "E": 1, "c": 1}',
    '{"seq": "x"}',
    "[1, 2, 3]",
    '{"s": null}',
)


class FakeExchange:
    """In-process asyncio WebSocket server on 127.0.0.1 (port 0 = ephemeral).

    `ticks_per_pair=None` streams forever at `rate` ticks/s (all pairs together); otherwise it stops
    after that many ticks per pair. `batch` ticks are sent per frame (a JSON list when > 1). With
    `wait_for_subscriber` the feed starts at the first subscription, so a client sees every seq.
    """

    def __init__(
        self,
        pairs: list[str],
        *,
        ticks_per_pair: int | None = None,
        rate: float = 2_000.0,
        batch: int = 1,
        history: int = 20_000,
        faults: Faults | None = None,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        start_ms: int | None = None,
        step_ms: int | None = None,
        wait_for_subscriber: bool = True,
    ) -> None:
        self.pairs = list(pairs)
        self.ticks_per_pair = ticks_per_pair
        self.rate, self.batch, self.history = rate, max(1, batch), history
        self.faults = faults or Faults()
        self.host, self.port = host, port
        self.start_ms, self.step_ms = start_ms, step_ms
        self.wait_for_subscriber = wait_for_subscriber
        self._subscribed = asyncio.Event()
        self._rng = random.Random(seed)
        self._prices = {p: 100.0 + 10 * i for i, p in enumerate(self.pairs)}
        self._seq = dict.fromkeys(self.pairs, 0)
        self._hist: dict[str, list[str]] = {p: [] for p in self.pairs}
        self._hist_base = dict.fromkeys(self.pairs, 1)  # seq of _hist[p][0]
        self._log: list[tuple[str, str]] = []  # (pair, encoded tick), global order
        self._log_base = 0
        self._new = asyncio.Event()
        self._server: Any = None
        self._producer: asyncio.Task | None = None
        self.connections = 0
        self.replays = 0
        self.subscribes = 0
        self.generated = 0
        self.done = asyncio.Event()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def total_ticks(self) -> int:
        return len(self.pairs) * (self.ticks_per_pair or 0)

    async def start(self) -> FakeExchange:
        from websockets.asyncio.server import serve

        self._server = await serve(self._handle, self.host, self.port, max_size=2**24, ping_interval=None)
        self.port = self._server.sockets[0].getsockname()[1]
        self._producer = asyncio.create_task(self._produce())
        return self

    async def stop(self) -> None:
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeExchange:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------------------- production
    def _tick(self, pair: str, now_ms: int) -> str:
        seq = self._seq[pair] = self._seq[pair] + 1
        p = self._prices[pair] = round(self._prices[pair] * (1 + self._rng.gauss(0, 0.0005)), 4)
        event_ms = self.start_ms + seq * (self.step_ms or 1) if self.start_ms is not None else now_ms
        msg = {
            "s": pair,
            "seq": seq,
            "E": event_ms,
            "c": "abc" if (pair, seq) in self.faults.bad_values else p,
            "o": 100.0,
            "h": max(p, 100.0),
            "l": min(p, 100.0),
            "pc": 99.5,
            "v": seq * 0.5,
            "q": seq * 50.0,
            "b": round(p - 0.01, 4),
            "a": round(p + 0.01, 4),
        }
        if (pair, seq) in self.faults.crossed_book:
            msg["b"], msg["a"] = msg["a"], msg["b"]
        if (pair, seq) in self.faults.huge_volume:
            msg["v"] = 1e20
        text = json.dumps(msg)
        hist = self._hist[pair]
        hist.append(text)
        if len(hist) > self.history:
            drop = len(hist) - self.history
            del hist[:drop]
            self._hist_base[pair] += drop
        return text

    def restart_sequences(self) -> None:
        """Number every pair's ticks from 1 again, as an exchange does after a restart; event times keep
        increasing, and the old history can no longer be replayed."""
        if self.start_ms is not None:
            self.start_ms += (max(self._seq.values(), default=0) + 1) * (self.step_ms or 1)
        self._seq = dict.fromkeys(self.pairs, 0)
        self._hist = {p: [] for p in self.pairs}
        self._hist_base = dict.fromkeys(self.pairs, 1)

    async def _produce(self) -> None:
        if self.wait_for_subscriber:
            await self._subscribed.wait()
        rounds = 0
        started = time.perf_counter()
        per_round = len(self.pairs)
        while self.ticks_per_pair is None or rounds < self.ticks_per_pair:
            now_ms = int(time.time() * 1000)
            for pair in self.pairs:
                self._log.append((pair, self._tick(pair, now_ms)))
            rounds += 1
            self.generated += per_round
            if rounds == self.faults.reset_after_rounds:
                self.restart_sequences()
            if len(self._log) > 4 * self.history:
                cut = len(self._log) - 2 * self.history
                del self._log[:cut]
                self._log_base += cut
            self._new.set()
            self._new = asyncio.Event()
            ahead = rounds * per_round / self.rate - (time.perf_counter() - started)
            await asyncio.sleep(max(0.0, ahead))
        self.done.set()

    # ---------------------------------------------------------------------------- connections
    async def _handle(self, ws: Any) -> None:
        index = self.connections
        self.connections += 1
        subscribed: set[str] = set()
        replay_q: asyncio.Queue[str] = asyncio.Queue()
        ready = asyncio.Event()
        sender = asyncio.create_task(self._send(ws, index, subscribed, replay_q, ready))
        try:
            async for raw in ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    await ws.send(json.dumps({"op": "error", "reason": "bad request"}))
                    continue
                op = msg.get("op")
                if op == "subscribe":
                    self.subscribes += 1
                    subscribed.update(p for p in msg.get("args", []) if p in self._seq)
                    await ws.send(
                        json.dumps({"op": "subscribed", "id": msg.get("id"), "args": msg.get("args")})
                    )
                    ready.set()
                    self._subscribed.set()
                elif op == "replay":
                    self.replays += 1
                    for pair, span in (msg.get("args") or {}).items():
                        if pair not in self._hist:
                            continue
                        first, last = (span + [None])[:2] if isinstance(span, list) else (span, None)
                        base, hist = self._hist_base[pair], self._hist[pair]
                        lo = max(int(first), base) - base
                        hi = len(hist) if last is None else min(len(hist), int(last) - base + 1)
                        for text in hist[lo:hi]:
                            replay_q.put_nowait(text)
        except Exception:  # noqa: BLE001 - a dropped client is normal here
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _send(self, ws: Any, index: int, subscribed: set[str], replay_q: asyncio.Queue, ready) -> None:
        f = self.faults
        await ready.wait()
        cursor = self._log_base + len(self._log)  # live from subscription on
        frames = 0
        held: str | None = None
        while True:
            out: list[str] = []
            while not replay_q.empty() and len(out) < self.batch:
                out.append(replay_q.get_nowait())
            if not out:
                if cursor < self._log_base:
                    cursor = self._log_base  # this consumer fell behind the log: a gap for it to replay
                i = cursor - self._log_base
                while i < len(self._log) and len(out) < self.batch:
                    pair, text = self._log[i]
                    i += 1
                    if pair in subscribed:
                        out.append(text)
                cursor = self._log_base + i
                if not out:
                    if held is not None:
                        await ws.send(held)
                        held = None
                        continue
                    waiter = self._new
                    if replay_q.empty():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(waiter.wait(), timeout=0.05)
                    continue
                if f.skip_every and (frames + 1) % f.skip_every == 0:
                    frames += 1
                    continue
            frame = out[0] if self.batch == 1 and len(out) == 1 else "[" + ",".join(out) + "]"
            frames += 1
            if index in f.drop_after and frames > f.drop_after[index]:
                ws.transport.abort()
                return
            if index in f.stall_after and frames == f.stall_after[index]:
                await asyncio.sleep(f.stall_seconds)
            if f.swap_every and frames % f.swap_every == 0 and held is None:
                held = frame
                continue
            await ws.send(frame)
            if held is not None:
                await ws.send(held)
                held = None
            if f.duplicate_every and frames % f.duplicate_every == 0:
                await ws.send(frame)
            if f.malformed_every and frames % f.malformed_every == 0:
                await ws.send(self._rng.choice(GARBAGE))
            if frames % 64 == 0:
                await asyncio.sleep(0)
