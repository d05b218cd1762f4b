"""`RedisHotStore`: the hot store shared between processes (prod), with its Lua scripts.

Named `redis_store` and not `redis` so it can never be mistaken for the `redis` client library,
which it imports lazily.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from quant_platform.core.schema import RAW_QUOTES
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
from quant_platform.storage.hot.errors import HotStoreError, HotStoreUnavailable
from quant_platform.storage.hot.policy import TTLPolicy
from quant_platform.storage.hot.quote_codec import QUOTE_FORMAT, decode_quotes, encode_quotes

log = logging.getLogger(__name__)

# KEYS: entry, max, min hashes of one account. ARGV: symbol1, price1, symbol2, price2, ...
# Prices are compared as numbers but stored as sent (Python repr), so no precision is lost.
_LUA_UPDATE_PRICES = """
local n = 0
for i = 1, #ARGV, 2 do
  local sym, raw = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', KEYS[1], sym) == 1 then
    local p = tonumber(raw)
    local mx = tonumber(redis.call('HGET', KEYS[2], sym))
    if mx == nil or p > mx then redis.call('HSET', KEYS[2], sym, raw) end
    local mn = tonumber(redis.call('HGET', KEYS[3], sym))
    if mn == nil or p < mn then redis.call('HSET', KEYS[3], sym, raw) end
    n = n + 1
  end
end
return n
"""

# KEYS: held hash, last-rolled-day string. ARGV: ISO day or ''. ISO dates order like strings.
_LUA_ROLL_DAY = """
if ARGV[1] ~= '' then
  local last = redis.call('GET', KEYS[2])
  if last and ARGV[1] <= last then return 0 end
  redis.call('SET', KEYS[2], ARGV[1])
end
local syms = redis.call('HKEYS', KEYS[1])
for i = 1, #syms do redis.call('HINCRBY', KEYS[1], syms[i], 1) end
return #syms
"""

# KEYS: entry, qty hashes of one account. ARGV: symbol1, qty1, ... Only open positions get one.
_LUA_SET_QUANTITIES = """
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    n = n + 1
  end
end
return n
"""

_POSITION_PARTS = ("held", "entry", "max", "min", "qty")


def mask_redis_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _RedisSubscription(RunEventSubscription):
    def __init__(self, store: RedisHotStore, channel: str) -> None:
        self._store = store
        with store._errors("subscribe"):
            self._pubsub = store.client.pubsub()
            self._pubsub.subscribe(channel)
            # Wait for the server's confirmation: events published after this returns are delivered.
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                msg = self._pubsub.get_message(timeout=0.5)
                if msg and msg["type"] == "subscribe":
                    return
        raise HotStoreUnavailable(
            f"hot store {store.masked_url}: no confirmation for subscribing to {channel}"
        )

    def get(self, timeout: float = 1.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._store._errors("listen"):
            while True:
                remaining = deadline - time.monotonic()
                msg = self._pubsub.get_message(timeout=max(0.0, remaining))
                if msg and msg["type"] == "message":
                    return json.loads(msg["data"])
                if remaining <= 0:
                    return None

    def close(self) -> None:
        try:
            self._pubsub.close()
        except Exception:  # closing a broken connection must not mask the original problem
            log.debug("closing pubsub failed", exc_info=True)


class RedisHotStore(HotStore):
    """Hot store in Redis. Keys start with `prefix` (default "qp:"); tests use a unique prefix.

    Layout: `q2:{symbol}` is a packed quote record (`quote_codec`; the `q2` prefix is its format, so
    a layout change starts a new namespace and the old keys expire, as the JSON `quote:{symbol}`
    keys of earlier versions do); `run:{run_id}` a run's last event (JSON); `chg:{freq}:{symbol}`
    is a float string; each position field is one hash per account
    (`pos:{account}:held|entry|max|min|qty`, keyed by symbol), so a single Lua script updates all
    positions of an account atomically and declares every key it touches.
    The client has short timeouts and a single quick retry, so an unreachable Redis fails in
    milliseconds instead of blocking a run.
    """

    backend = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "qp:",
        ttl: TTLPolicy | None = None,
        session_ttl: float | None = None,
        connect_timeout: float = 0.25,
        socket_timeout: float = 1.0,
        client: Any = None,
    ) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.masked_url = mask_redis_url(url)
        self.url = self.masked_url  # what logs and pings show; the client keeps the real one
        self.prefix = prefix
        self.ttl = ttl or TTLPolicy(session_ttl=300.0 if session_ttl is None else session_ttl)
        self.client = client or redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 1),  # one immediate retry heals a connection dropped while pooled
            health_check_interval=30,
        )
        self._last_mget: tuple[list[str], bytes] | None = None  # (symbols, packed MGET), see _mget_quotes
        self._update_prices = self.client.register_script(_LUA_UPDATE_PRICES)
        self._roll_day = self.client.register_script(_LUA_ROLL_DAY)
        self._set_quantities = self.client.register_script(_LUA_SET_QUANTITIES)

    def __repr__(self) -> str:
        return f"RedisHotStore({self.masked_url!r}, prefix={self.prefix!r})"

    @contextmanager
    def _errors(self, op: str) -> Iterator[None]:
        import redis

        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError, OSError) as err:
            raise HotStoreUnavailable(f"hot store {self.masked_url}: {op}: {err}") from err
        except redis.RedisError as err:
            raise HotStoreError(f"hot store {self.masked_url}: {op}: {err}") from err

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _pos_keys(self, account: str) -> dict[str, str]:
        _check_name("account", account)
        return {part: self._k("pos", account, part) for part in _POSITION_PARTS}

    # quotes ------------------------------------------------------------------------------------
    def set_latest_quotes(self, df: pd.DataFrame, *, now: pd.Timestamp | None = None) -> int:
        docs = encode_quotes(df)
        if not docs:
            return 0
        ttl_ms = int(self.ttl.seconds(now) * 1000)
        with self._errors("set_latest_quotes"):
            pipe = self.client.pipeline(transaction=False)
            for sym, doc in docs.items():
                pipe.set(self._k(QUOTE_FORMAT, sym), doc, px=ttl_ms)
            pipe.execute()
        return len(docs)

    def get_latest_quotes(self, symbols: Iterable[str]) -> pd.DataFrame:
        syms = _unique(symbols)
        if not syms:
            return RAW_QUOTES.empty()
        with self._errors("get_latest_quotes"):
            docs = self._mget_quotes(syms)
        return decode_quotes(syms, docs)

    def _mget_quotes(self, syms: list[str]) -> list[bytes | None]:
        """MGET of the symbols' quote keys without decoding, packed by hiredis in C when installed.

        redis-py packs a command argument by argument in Python, which for 5,000 keys cost more
        than Redis takes to answer; hiredis packs the whole command in one call. Callers poll the
        same universe in a loop, so the last packed request is kept and reused for an equal list
        (comparing two lists of the same strings is a pointer check per symbol).
        """
        prefix = self.prefix + QUOTE_FORMAT + ":"
        try:
            from hiredis import pack_command
        except ImportError:
            keys = [prefix + s for s in syms]
            return self.client.execute_command("MGET", *keys, NEVER_DECODE=True)
        last = self._last_mget
        if last is not None and last[0] == syms:
            packed = last[1]
        else:
            packed = pack_command(("MGET", *[prefix + s for s in syms]))
            self._last_mget = (list(syms), packed)
        pool = self.client.connection_pool
        conn = pool.get_connection()  # the pool reconnects a connection the server dropped meanwhile
        try:
            conn.send_packed_command([packed])
            return conn.read_response(disable_decoding=True)
        except BaseException:
            conn.disconnect()  # a half-read reply must never reach the next command
            raise
        finally:
            pool.release(conn)

    def quote_ttl(self, symbol: str) -> float | None:
        with self._errors("quote_ttl"):
            ms = self.client.pttl(self._k(QUOTE_FORMAT, symbol))
        return ms / 1000 if ms is not None and ms > 0 else None

    # change rates ------------------------------------------------------------------------------
    def set_change_rates(self, df: pd.DataFrame, *, now: pd.Timestamp | None = None) -> int:
        items = _rate_items(df)
        if not items:
            return 0
        ttls = {f: int(self.ttl.seconds(now, floor=2 * sec) * 1000) for f, sec in CHANGE_FREQS.items()}
        with self._errors("set_change_rates"):
            pipe = self.client.pipeline(transaction=False)
            for freq, sym, value in items:
                pipe.set(self._k("chg", freq, sym), repr(value), px=ttls[freq])
            pipe.execute()
        return len(items)

    def get_change_rates(self, symbols: Iterable[str]) -> pd.DataFrame:
        syms = _unique(symbols)
        if not syms:
            return _rates_frame({})
        keys = [self._k("chg", f, s) for f in CHANGE_FREQS for s in syms]
        with self._errors("get_change_rates"):
            values = self.client.mget(keys)
        rows: dict[str, dict[str, float]] = {}
        for i, freq in enumerate(CHANGE_FREQS):
            for sym, value in zip(syms, values[i * len(syms) : (i + 1) * len(syms)], strict=True):
                if value is not None:
                    rows.setdefault(sym, {})[f"change_{freq}"] = float(value)
        return _rates_frame({s: rows[s] for s in syms if s in rows})

    # positions ---------------------------------------------------------------------------------
    def open_position(
        self, account: str, symbol: str, entry_price: float, *, held_days: int = 0
    ) -> PositionState:
        _check_name("symbol", symbol)
        keys, p = self._pos_keys(account), float(entry_price)
        with self._errors("open_position"):
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(keys["held"], symbol, int(held_days))
            for part in ("entry", "max", "min"):
                pipe.hset(keys[part], symbol, repr(p))
            pipe.hdel(keys["qty"], symbol)
            pipe.execute()
        return PositionState(account, symbol, int(held_days), p, p, p)

    def set_position_quantities(self, account: str, quantities: Mapping[str, float]) -> int:
        keys = self._pos_keys(account)
        args: list[str] = []
        for sym, q in _prices(quantities):
            args += [sym, repr(q)]
        if not args:
            return 0
        with self._errors("set_position_quantities"):
            return int(self._set_quantities(keys=[keys["entry"], keys["qty"]], args=args))

    def close_position(self, account: str, symbol: str) -> bool:
        keys = self._pos_keys(account)
        with self._errors("close_position"):
            pipe = self.client.pipeline(transaction=True)
            for part in _POSITION_PARTS:
                pipe.hdel(keys[part], symbol)
            removed = pipe.execute()
        return any(removed)

    def get_position(self, account: str, symbol: str) -> PositionState | None:
        keys = self._pos_keys(account)
        with self._errors("get_position"):
            pipe = self.client.pipeline(transaction=True)  # MULTI: a consistent snapshot of the four fields
            for part in _POSITION_PARTS:
                pipe.hget(keys[part], symbol)
            held, entry, mx, mn, qty = pipe.execute()
        if entry is None:
            return None
        q = None if qty is None else float(qty)
        return PositionState(account, symbol, int(held or 0), float(entry), float(mx), float(mn), q)

    def get_positions(self, account: str) -> dict[str, PositionState]:
        keys = self._pos_keys(account)
        with self._errors("get_positions"):
            pipe = self.client.pipeline(transaction=True)
            for part in _POSITION_PARTS:
                pipe.hgetall(keys[part])
            held, entry, mx, mn, qty = pipe.execute()
        return {
            s: PositionState(
                account,
                s,
                int(held.get(s, 0)),
                float(e),
                float(mx.get(s, e)),
                float(mn.get(s, e)),
                float(qty[s]) if s in qty else None,
            )
            for s, e in entry.items()
        }

    def update_position_prices(self, account: str, prices: Mapping[str, float]) -> int:
        keys = self._pos_keys(account)
        args: list[str] = []
        for sym, p in _prices(prices):
            args += [sym, repr(p)]
        if not args:
            return 0
        with self._errors("update_position_prices"):
            return int(self._update_prices(keys=[keys["entry"], keys["max"], keys["min"]], args=args))

    def roll_day(self, account: str, day: dt.date | str | None = None) -> int:
        keys = self._pos_keys(account)
        with self._errors("roll_day"):
            n = self._roll_day(keys=[keys["held"], self._k("pos", account, "rolled")], args=[str(day or "")])
        return int(n)

    # run events --------------------------------------------------------------------------------
    def publish_run_event(self, run_id: str, event: Mapping[str, Any]) -> int:
        payload = _event_payload(run_id, event)
        with self._errors("publish_run_event"):
            pipe = self.client.pipeline(transaction=False)
            pipe.set(self._k("run", run_id), payload, px=int(RUN_EVENT_TTL * 1000))
            pipe.publish(run_channel(run_id), payload)
            return int(pipe.execute()[1])

    def last_run_event(self, run_id: str) -> dict[str, Any] | None:
        with self._errors("last_run_event"):
            doc = self.client.get(self._k("run", run_id))
        return None if doc is None else json.loads(doc)

    def subscribe_run_events(self, run_id: str) -> RunEventSubscription:
        return _RedisSubscription(self, run_channel(run_id))

    # admin -------------------------------------------------------------------------------------
    def ping(self) -> HotPing:
        with self._errors("ping"):
            t0 = time.perf_counter()
            self.client.ping()
            latency = (time.perf_counter() - t0) * 1000
            version = self.client.info("server").get("redis_version")
        return HotPing(self.masked_url, self.backend, True, version, round(latency, 3))

    def delete_prefix(self) -> int:
        """Delete every key under this store's prefix (SCAN, never KEYS); for tests and resets."""
        n = 0
        with self._errors("delete_prefix"):
            batch = []
            for key in self.client.scan_iter(match=self.prefix.replace("*", r"\*") + "*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    n += self.client.unlink(*batch)
                    batch = []
            if batch:
                n += self.client.unlink(*batch)
        return n

    def close(self) -> None:
        self.client.close()
