"""The streaming collector: a WebSocket feed -> hot tier (latest quotes, change rates) + cold tier (ticks).

Wire protocol (mapping of tick keys in `sources.vendor_columns.STREAM_TICK_FIELDS`):

    -> {"op": "subscribe", "id": 1, "args": ["BTC-USDT", "ETH-USDT", ...]}      chunks of `subscribe_chunk`
    <- {"op": "subscribed", "id": 1, "args": [...]}
    <- {"s": "BTC-USDT", "seq": 42, "E": 1728352800123, "c": 62000.5, ...}     or a JSON list of them
    -> {"op": "replay", "id": 2, "args": {"BTC-USDT": [40, 41], "ETH-USDT": [7, null]}}   resend seqs

Guarantees:
- Keepalive: WebSocket pings every `ping_interval` s (a missing pong closes the connection), and a
  feed silent for `stall_timeout` s counts as stalled and is reconnected.
- Reconnects back off exponentially with full jitter (`reconnect_initial` .. `reconnect_max`).
- After a reconnect the pairs are resubscribed and a replay is requested from each pair's oldest
  missing seq (or last seq + 1); gaps inside a live stream are replayed after `gap_grace` s.
- Every (pair, seq) is accepted once; duplicates and replays of seen seqs are dropped. Items that
  are not valid ticks are counted; ticks with unusable values are written to `quarantine` with the
  reason (their seq counts as seen, so they are not replayed forever).
- Ticks are written to the cold table `crypto_ticks` in micro-batches (`flush_interval` s or
  `flush_rows` rows); a failed write keeps the batch for the next flush. SIGTERM/SIGINT stop the
  collector after a final hot and cold flush.
- The hot tier gets the latest quote and 1m/5m/15m change rates of every updated pair every
  `hot_interval` s (one batched write).
- Dagster sees the output as `AssetObservation`s of `raw_quotes` (see `observe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quant_platform.collector.metrics import CollectorMetrics, MetricsServer
from quant_platform.collector.observe import report_observation
from quant_platform.collector.sink import BUFFER_COLUMNS, ColdSink, ticks_frame
from quant_platform.collector.state import ChangeTracker, PairState
from quant_platform.core.quality.quarantine import quarantine_frame
from quant_platform.core.quality.rules import BOUNDS
from quant_platform.core.schema import QUARANTINE

log = logging.getLogger(__name__)

HOT_COLUMNS = [
    "symbol",
    "trade_date",
    "ts",
    "price",
    "open",
    "high",
    "low",
    "prev_close",
    "volume",
    "amount",
    "bid",
    "ask",
    "seq",
]


_OPTIONAL = ("o", "h", "l", "pc", "v", "q", "b", "a")
_DEFAULTS = (
    lambda p: p,
    lambda p: p,
    lambda p: p,
    lambda p: math.nan,
    lambda p: 0.0,
    lambda p: 0.0,
    lambda p: math.nan,
    lambda p: math.nan,
)


class FeedStalled(Exception):
    """No message within the stall timeout although the connection is open."""


@dataclass
class CollectorConfig:
    url: str
    pairs: list[str]
    subscribe_chunk: int = 200
    ping_interval: float | None = 10.0
    ping_timeout: float | None = 10.0
    open_timeout: float = 10.0
    stall_timeout: float = 15.0
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    gap_grace: float = 1.0
    gap_give_up: float = 120.0
    flush_interval: float = 2.0
    flush_rows: int = 20_000
    hot_interval: float = 0.05
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9108  # None: no endpoint; 0: any free port
    observe_interval: float = 60.0
    shutdown_flush_attempts: int = 5

    def __post_init__(self) -> None:
        self.pairs = list(dict.fromkeys(p.strip() for p in self.pairs if p and p.strip()))
        if not self.pairs:
            raise ValueError("the collector needs at least one pair")
        if self.subscribe_chunk < 1:
            raise ValueError("subscribe_chunk must be >= 1")


@dataclass
class CollectorStats:
    accepted: int = 0
    duplicates: int = 0
    malformed: int = 0
    rejected: int = 0
    reconnects: int = 0
    connections: int = 0
    replay_requests: int = 0
    rows_written: int = 0
    hot_updates: int = 0
    flushes: int = 0
    lost: int = 0
    resets: int = 0  # sequence resets of the feed (resynced, see PairState.is_reset)
    errors: dict[str, int] = field(default_factory=dict)


class TickRuleError(ValueError):
    """A readable tick that breaks a row rule; `rule` is the rule's name in `core.quality.RULES`."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule


def check_tick(price: float, vals: list[float]) -> None:
    """The row rules a single tick can break on its own, with the names and bounds of the batch rules
    (`core.quality.rules`): a value beyond the plausible maximum, a crossed book, a negative volume or
    amount, high below low. Raises TickRuleError."""
    o, h, low, pc, v, q, b, a = vals
    for name, value, bound in (
        ("c", price, BOUNDS["price"]), ("o", o, BOUNDS["price"]), ("h", h, BOUNDS["price"]),
        ("l", low, BOUNDS["price"]), ("pc", pc, BOUNDS["price"]), ("b", b, BOUNDS["price"]),
        ("a", a, BOUNDS["price"]), ("v", v, BOUNDS["volume"]), ("q", q, BOUNDS["amount"]),
    ):  # fmt: skip
        if abs(value) > bound:  # NaN compares False: optional values may be missing
            raise TickRuleError("out_of_range", f"{name}={value:g} is above the plausible maximum {bound:g}")
    if b > 0 and a > 0 and b > a:
        raise TickRuleError("crossed_book", f"bid {b:g} > ask {a:g}")
    if v < 0 or q < 0:
        raise TickRuleError("negative_volume", f"volume {v:g} / amount {q:g} < 0")
    if h < low:
        raise TickRuleError("high_lt_low", f"high {h:g} < low {low:g}")


def _num(value: Any, name: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise ValueError(f"{name}={value!r} is not a number")
    return float(value)  # numeric strings are fine (many feeds quote prices as strings)


class Collector:
    """See the module docstring. `await collector.run()` until `stop()` (or SIGTERM with
    `install_signal_handlers`)."""

    def __init__(
        self,
        config: CollectorConfig,
        *,
        sink: ColdSink | None = None,
        hot: Any = None,
        instance: Any = None,
        metrics: CollectorMetrics | None = None,
        resume: bool = True,
        source_name: str = "ws",
        latency_samples: int = 200_000,
    ) -> None:
        self.cfg = config
        self.sink, self.hot, self.instance = sink, hot, instance
        self.metrics = metrics or CollectorMetrics()
        self.resume = resume
        self.source_name = source_name
        self.stats = CollectorStats()
        self.pairs: dict[str, PairState] = {p: PairState() for p in config.pairs}
        self.changes = ChangeTracker()
        self.latencies: deque[float] = deque(maxlen=latency_samples)  # receive -> hot visible (s)
        self.feed_latencies: deque[float] = deque(maxlen=latency_samples)  # event time -> hot visible (s)
        self.metrics_server: MetricsServer | None = None
        self._rows: list[tuple] = []
        self._quarantine: list[pd.DataFrame] = []
        self._pending_hot: dict[str, tuple] = {}
        self._latest: dict[str, tuple] = {}
        self._last_hot = 0.0
        self._frame_ticks = 0
        self._pending_since: dict[str, float] = {}  # oldest unpublished receive time per pair
        self._m_ticks = self.metrics.messages.labels("tick")
        self._pending_times: list[tuple[float, int]] = []  # (received, event ms) since the last hot write
        self._gappy: set[str] = set()
        self._ws: Any = None
        self._req_id = 0
        self._connected = False
        self._last_message: float | None = None
        self._started = time.monotonic()
        self._stop: asyncio.Event | None = None
        self._flush_now: asyncio.Event | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unobserved = 0
        self._watermark: pd.Timestamp | None = None
        self._last_observed = 0.0
        self.running = False
        self._closing = False

    # ------------------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        """Ask the collector to stop (safe from any thread or a signal handler)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    def remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    def health(self) -> tuple[bool, dict]:
        age = None if self._last_message is None else time.monotonic() - self._last_message
        ok = self.running and self._connected and age is not None and age < self.cfg.stall_timeout
        return ok, {
            "status": "ok" if ok else "degraded",
            "running": self.running,
            "connected": self._connected,
            "last_message_age_s": None if age is None else round(age, 3),
            "buffered_rows": len(self._rows),
            "accepted": self.stats.accepted,
            "reconnects": self.stats.reconnects,
        }

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        if self.cfg.metrics_port is not None:
            self.metrics_server = MetricsServer(
                self.metrics.registry, self.health, self.cfg.metrics_host, self.cfg.metrics_port
            ).start()
        if self.resume and self.sink is not None:
            try:
                highs = await asyncio.to_thread(self.sink.resume_points, list(self.pairs))
            except Exception as exc:  # noqa: BLE001 - an empty or unreachable store: start live
                log.warning("collector: cannot read stored sequence numbers (%s); starting live", exc)
                highs = {}
            for sym, (high, last_event_ms) in highs.items():
                if sym in self.pairs:
                    self.pairs[sym].high, self.pairs[sym].last_event_ms = high, last_event_ms
        self.running = True
        self._closing = False
        workers = [
            asyncio.create_task(self._connection_loop(), name="collector-connection"),
            asyncio.create_task(self._gap_loop(), name="collector-gaps"),
            asyncio.create_task(self._hot_loop(), name="collector-hot"),
        ]
        flusher = asyncio.create_task(self._flush_loop(), name="collector-flush")
        try:
            await self._stop.wait()
        finally:
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            # The flusher is never cancelled mid-write (the write runs in a thread): it finishes its
            # current batch and exits, then the final flush writes the rest.
            self._closing = True
            self._flush_now.set()
            with contextlib.suppress(Exception):
                await flusher
            await self._flush_hot()
            await self._final_flush()
            self.running = False
            if self.metrics_server is not None:
                self.metrics_server.stop()
            if self.sink is not None:
                self.sink.close()

    # ------------------------------------------------------------------------------ connection
    def _error(self, kind: str) -> None:
        self.metrics.errors.labels(kind).inc()
        self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1

    def _backoff(self, attempt: int) -> float:
        cap = min(self.cfg.reconnect_max, self.cfg.reconnect_initial * (2**attempt))
        return random.uniform(cap / 2, cap)  # "equal jitter": never 0, never above the cap

    async def _connection_loop(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        attempt = 0
        first = True
        while not self._stop.is_set():
            try:
                async with connect(
                    self.cfg.url,
                    ping_interval=self.cfg.ping_interval,
                    ping_timeout=self.cfg.ping_timeout,
                    open_timeout=self.cfg.open_timeout,
                    close_timeout=1.0,
                    max_size=2**24,
                    max_queue=1024,
                ) as ws:
                    self._ws = ws
                    self._set_connected(True)
                    self.stats.connections += 1
                    await self._subscribe(ws)
                    if not first or self.resume:
                        await self._request_replay(ws, self._resume_points(), clear_missing=True)
                    first = False
                    frames = 0
                    while not self._stop.is_set():
                        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation
                        # that arrives as recv() completes, which a backlog makes the common case, so a
                        # SIGTERM under load never stopped the collector.
                        try:
                            async with asyncio.timeout(self.cfg.stall_timeout):
                                raw = await ws.recv()
                        except TimeoutError:
                            raise FeedStalled(f"no message for {self.cfg.stall_timeout}s") from None
                        attempt = 0
                        self._on_frame(raw)
                        frames += 1
                        # A backlog makes recv() return without suspending: keep the hot tier's
                        # latency bounded and let the other tasks run.
                        if time.monotonic() - self._last_hot >= self.cfg.hot_interval:
                            await self._flush_hot()
                        elif frames % 64 == 0:
                            await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except FeedStalled as exc:
                self._error("stall")
                log.warning("collector: feed stalled (%s); reconnecting", exc)
            except ConnectionClosed as exc:
                self._error("disconnect")
                log.warning("collector: connection closed (%s); reconnecting", exc)
            except InvalidURI:
                raise
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self._error("connect")
                log.warning("collector: cannot connect to %s (%s)", self.cfg.url, exc)
            finally:
                self._ws = None
                self._set_connected(False)
            if self._stop.is_set():
                break
            delay = self._backoff(attempt)
            attempt += 1
            self.stats.reconnects += 1
            self.metrics.reconnects.inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)

    def _set_connected(self, value: bool) -> None:
        self._connected = value
        self.metrics.connected.set(1 if value else 0)

    def _next_id(self) -> int:
        self._req_id += 1
        return self._req_id

    async def _subscribe(self, ws: Any) -> None:
        pairs, n = self.cfg.pairs, self.cfg.subscribe_chunk
        for i in range(0, len(pairs), n):
            await ws.send(json.dumps({"op": "subscribe", "id": self._next_id(), "args": pairs[i : i + n]}))

    def _resume_points(self) -> dict[str, list]:
        points = {}
        for sym, st in self.pairs.items():
            start = st.resume_from()
            if start is not None:
                points[sym] = [start, None]
        return points

    async def _request_replay(self, ws: Any, points: dict[str, list], *, clear_missing: bool = False) -> None:
        if not points:
            return
        now = time.monotonic()
        items = list(points.items())
        n = self.cfg.subscribe_chunk
        for i in range(0, len(items), n):
            chunk = dict(items[i : i + n])
            await ws.send(json.dumps({"op": "replay", "id": self._next_id(), "args": chunk}))
            self.stats.replay_requests += 1
            self.metrics.replays.inc()
        for sym in points:
            st = self.pairs[sym]
            st.last_request = now
            if clear_missing:  # restart the grace period: the replay is on its way
                for seq in st.missing:
                    st.missing[seq] = max(st.missing[seq], now - self.cfg.gap_give_up / 2)

    async def _gap_loop(self) -> None:
        """Replay gaps that stayed open longer than `gap_grace`; give up on seqs after `gap_give_up`."""
        grace = self.cfg.gap_grace
        while True:
            await asyncio.sleep(grace / 2)
            now = time.monotonic()
            points = {}
            for sym in list(self._gappy):
                st = self.pairs[sym]
                if not st.missing:
                    self._gappy.discard(sym)
                    continue
                expired = [s for s, t in st.missing.items() if now - t > self.cfg.gap_give_up]
                for s in expired:
                    del st.missing[s]
                if expired:
                    self.stats.lost += len(expired)
                    self.metrics.lost.inc(len(expired))
                    log.error(
                        "collector: %s seqs %s.. never arrived; giving up on %d",
                        sym,
                        expired[0],
                        len(expired),
                    )
                if st.missing and now - min(st.missing.values()) > grace and now - st.last_request > grace:
                    points[sym] = [min(st.missing), max(st.missing)]
            ws = self._ws
            if points and ws is not None:
                try:
                    await self._request_replay(ws, points)
                except Exception as exc:  # noqa: BLE001 - the connection loop handles the connection
                    log.debug("collector: replay request failed: %s", exc)

    # ------------------------------------------------------------------------------ messages
    def _on_frame(self, raw: str | bytes) -> None:
        received = time.time()
        self._last_message = time.monotonic()
        self.metrics.last_message.set(received)
        try:
            obj = json.loads(raw)
        except (ValueError, TypeError):
            self._malformed(raw, "not JSON")
            return
        items = obj if isinstance(obj, list) else [obj]
        self._frame_ticks = 0
        for item in items:
            if not isinstance(item, dict):
                self._malformed(item, "not a JSON object")
            elif "op" in item:
                self.metrics.messages.labels("control").inc()
                if item.get("op") == "error":
                    self._error("server")
                    log.warning("collector: server error %s", item)
            else:
                self._on_tick(item, received)
        if self._frame_ticks:
            self.stats.accepted += self._frame_ticks
            self._m_ticks.inc(self._frame_ticks)
        if len(self._rows) >= self.cfg.flush_rows and self._flush_now is not None:
            self._flush_now.set()

    def _malformed(self, item: Any, reason: str) -> None:
        self.stats.malformed += 1
        self.metrics.messages.labels("malformed").inc()
        if self.stats.malformed <= 10 or self.stats.malformed % 1000 == 0:
            log.warning("collector: malformed feed item (%s): %.200r", reason, item)

    def _on_tick(self, d: dict, received: float) -> None:
        sym, seq = d.get("s"), d.get("seq")
        st = self.pairs.get(sym) if type(sym) is str else None
        if st is None:
            self._malformed(d, "unknown or missing pair" if sym is not None else "no pair")
            return
        if type(seq) is not int or seq < 1:
            self._malformed(d, "missing or invalid seq")
            return
        now = time.monotonic()
        event = d.get("E")
        if type(event) in (int, float) and st.is_reset(seq, int(event)):
            log.warning(
                "collector: %s sequence reset: seq %d after %d with a newer event time; resynced from it",
                sym, seq, st.high,
            )  # fmt: skip
            st.reset(seq)
            self.stats.resets += 1
            self.metrics.messages.labels("sequence_reset").inc()
        try:
            ev = d["E"]
            if type(ev) is not int and type(ev) is not float:
                raise ValueError(f"E={ev!r} is not an epoch-millisecond time")
            ts_ms = int(ev)
            price = d["c"]
            if type(price) is not float:
                price = _num(price, "c")
            if not (price > 0 and math.isfinite(price)):
                raise ValueError(f"c={d['c']!r} is not a positive price")
            vals = [d.get(k) for k in _OPTIONAL]
            for i, v in enumerate(vals):
                if type(v) is not float:
                    vals[i] = _num(v, _OPTIONAL[i]) if v is not None else _DEFAULTS[i](price)
            check_tick(price, vals)
            row = (sym, seq, ts_ms, price, *vals, received)
        except TickRuleError as exc:
            if st.accept(seq, now):
                self._seen(st, seq, event)
                self._reject(sym, seq, d, str(exc), rule=exc.rule)
            else:
                self._duplicate()
            return
        except (KeyError, ValueError, TypeError) as exc:
            if st.accept(seq, now):
                self._seen(st, seq, event)  # a redelivery of a rejected tick is a duplicate, not a reset
                self._reject(sym, seq, d, f"{type(exc).__name__}: {exc}")
            else:
                self._duplicate()
            return
        if not st.accept(seq, now):
            self._duplicate()
            return
        st.seen_event(seq, ts_ms)
        if st.missing:
            self._gappy.add(sym)
        self._frame_ticks += 1
        self._rows.append(row)
        self._pending_times.append((received, ts_ms))
        self.changes.update(sym, ts_ms // 1000, price, seq)
        if seq == st.high:  # the newest state of the pair (an old replayed seq never overwrites it)
            self._latest[sym] = row
            self._pending_hot[sym] = row
        else:  # a late tick can change the change rates: write the pair's latest state again
            self._pending_hot[sym] = self._latest.get(sym, row)
        self._pending_since.setdefault(sym, received)

    @staticmethod
    def _seen(st: PairState, seq: int, event: Any) -> None:
        if type(event) in (int, float) and math.isfinite(event):
            st.seen_event(seq, int(event))

    def _duplicate(self) -> None:
        self.stats.duplicates += 1
        self.metrics.messages.labels("duplicate").inc()

    def _reject(self, sym: str, seq: int, d: dict, reason: str, rule: str = "stream_payload") -> None:
        self.stats.rejected += 1
        self.metrics.messages.labels("rejected").inc()
        ts = d.get("E") if isinstance(d.get("E"), (int, float)) and not isinstance(d.get("E"), bool) else None
        day = (
            pd.Timestamp(int(ts), unit="ms").normalize() if ts is not None else pd.Timestamp.now().normalize()
        )
        self._quarantine.append(
            quarantine_frame(
                "crypto_ticks",
                pd.DataFrame([{k: str(v) for k, v in d.items()}]),
                rule=rule,
                reason=f"seq {seq}: {reason}",
                trade_date=day,
                symbol=sym,
                source="vendor",
            )
        )
        log.warning("collector: rejected %s seq %d: %s", sym, seq, reason)

    # ------------------------------------------------------------------------------ hot tier
    async def _hot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.hot_interval)
            if time.monotonic() - self._last_hot >= self.cfg.hot_interval * 0.5:
                await self._flush_hot()

    async def _flush_hot(self) -> None:
        self._last_hot = time.monotonic()
        if not self._pending_hot:
            return
        pending, self._pending_hot = self._pending_hot, {}
        times, self._pending_times = self._pending_times, []
        since, self._pending_since = self._pending_since, {}
        if self.hot is not None:
            rows = list(pending.values())
            quotes = pd.DataFrame.from_records([r[:12] for r in rows], columns=BUFFER_COLUMNS[:12])
            ts = pd.to_datetime(quotes["ts_ms"], unit="ms", utc=True)
            quotes["ts"] = ts
            quotes["trade_date"] = ts.dt.tz_localize(None).dt.normalize()
            quotes = quotes[HOT_COLUMNS]
            rates = pd.DataFrame([{"symbol": s, **self.changes.rates(s)} for s in pending])
            try:
                if getattr(self.hot, "backend", "") == "memory":
                    self._write_hot(quotes, rates)
                else:
                    await asyncio.to_thread(self._write_hot, quotes, rates)
            except Exception as exc:  # noqa: BLE001 - a cache outage must not stop collection
                self._error("hot")
                log.warning("collector: hot tier write failed: %s", exc)
                return
        done = time.time()
        self.stats.hot_updates += len(pending)
        for received in since.values():  # one observation per hot update: its oldest message's wait
            self.metrics.latency.observe(done - received)
        if times:
            arr = np.asarray(times, dtype=float)
            self.latencies.extend((done - arr[:, 0]).tolist())
            self.feed_latencies.extend((done - arr[:, 1] / 1000.0).tolist())

    def _write_hot(self, quotes: pd.DataFrame, rates: pd.DataFrame) -> None:
        self.hot.set_latest_quotes(quotes)
        self.hot.set_change_rates(rates)

    # ------------------------------------------------------------------------------ cold tier
    async def _flush_loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), timeout=self.cfg.flush_interval)
            self._flush_now.clear()
            if self._closing:
                return
            if not await self._flush_cold():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush_now.wait(), timeout=min(self.cfg.flush_interval, 1.0))

    async def _flush_cold(self, *, final: bool = False) -> bool:
        """Write what is buffered; on failure keep it for the next attempt. True when nothing is left."""
        async with self._flush_lock:
            rows, self._rows = self._rows, []
            quarantine, self._quarantine = self._quarantine, []
            self.metrics.buffered.set(len(self._rows))
            if not rows and not quarantine:
                return True
            if self.sink is None:
                self._note_written(rows, len(rows), final)
                return True
            sink = self.sink

            def write() -> tuple[int, pd.Timestamp | None]:  # in a worker thread: frames and insert
                ticks = ticks_frame(rows)
                bad = pd.concat(quarantine, ignore_index=True) if quarantine else QUARANTINE.empty()
                return sink.write(ticks, bad), (ticks["ts"].max() if len(ticks) else None)

            try:
                written, newest = await asyncio.to_thread(write)
            except Exception as exc:  # noqa: BLE001 - keep the batch, retry on the next flush
                self._rows = rows + self._rows
                self._quarantine = quarantine + self._quarantine
                self.metrics.buffered.set(len(self._rows))
                self._error("cold")
                log.warning("collector: cold write of %d ticks failed (kept for retry): %s", len(rows), exc)
                return False
            self.stats.flushes += 1
            if newest is not None:
                self._watermark = max(self._watermark or newest, newest)
            self._note_written(rows, written, final)
            return True

    def _note_written(self, rows: list[tuple], written: int, final: bool) -> None:
        self.stats.rows_written += written
        self.metrics.rows_written.inc(written)
        self._unobserved += written
        if (
            self.instance is not None
            and self._unobserved
            and (final or time.monotonic() - self._last_observed >= self.cfg.observe_interval)
        ):
            try:
                report_observation(
                    self.instance,
                    rows=self._unobserved,
                    watermark=self._watermark,
                    pairs=len(self.pairs),
                    source=self.source_name,
                    table=self.sink.database + ".crypto_ticks" if self.sink is not None else "(none)",
                )
                self._unobserved = 0
                self._last_observed = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - observability must not stop collection
                self._error("observe")
                log.warning("collector: cannot report the observation to Dagster: %s", exc)

    async def _final_flush(self) -> None:
        for attempt in range(self.cfg.shutdown_flush_attempts):
            if await self._flush_cold(final=True):
                return
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
        log.error("collector: %d buffered ticks could not be written at shutdown", len(self._rows))
