"""Hot tier against a real Redis and the in-process store; every behavioural test runs on both."""

from __future__ import annotations

import multiprocessing
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from quant_platform.core.schema import RAW_QUOTES
from quant_platform.storage.hot import (
    TERMINAL_EVENT_STATUSES,
    HotStore,
    MemoryHotStore,
    RedisHotStore,
    ResilientHotStore,
    TTLPolicy,
    hot_store_from_url,
)

TRADING = pd.Timestamp("2024-10-08 02:00", tz="UTC")  # Tue 10:00 Shanghai, morning session
LUNCH = pd.Timestamp("2024-10-08 04:00", tz="UTC")  # 12:00 Shanghai, lunch break until 13:00
FRIDAY_EVENING = pd.Timestamp("2024-10-11 07:30", tz="UTC")  # 15:30 Shanghai, after the close
MONDAY_OPEN = pd.Timestamp("2024-10-14 01:30", tz="UTC")
HOLIDAY = pd.Timestamp("2024-10-01 02:00", tz="UTC")  # National Day week, next open Tue 10-08
CLOSED_PORT = "redis://:s3cret@127.0.0.1:1/0"


def quotes(n: int, *, ts: pd.Timestamp = TRADING, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    price = rng.uniform(2, 200, n).round(2)
    return RAW_QUOTES.conform(
        pd.DataFrame(
            {
                "symbol": [f"{600000 + i}.SH" for i in range(n)],
                "trade_date": pd.Timestamp(ts.date()),
                "ts": ts,
                "price": price,
                "open": price * 0.99,
                "high": price * 1.02,
                "low": price * 0.98,
                "prev_close": price * 1.001,
                "volume": rng.integers(0, 10**9, n),
                "amount": price * 1e6,
                "bid": price - 0.01,
                "ask": price + 0.01,
            }
        )
    )


# -------------------------------------------------------------------------------------- quotes


def test_batch_quotes_round_trip(hot: HotStore) -> None:
    df = quotes(5000)
    assert hot.set_latest_quotes(df, now=TRADING) == 5000
    out = hot.get_latest_quotes(df["symbol"])
    pd.testing.assert_frame_equal(out, df)

    wanted = ["600003.SH", "nope.SZ", "600001.SH", "600003.SH"]
    assert hot.get_latest_quotes(wanted)["symbol"].tolist() == ["600003.SH", "600001.SH"]  # request order
    empty = hot.get_latest_quotes(["nope.SZ"])
    assert empty.empty and list(empty.columns) == RAW_QUOTES.names


def test_quotes_keep_the_newest_row_per_symbol_and_missing_values(hot: HotStore) -> None:
    old, new = quotes(3, ts=TRADING), quotes(3, ts=TRADING + pd.Timedelta(seconds=3), seed=1)
    new.loc[0, "bid"] = np.nan
    hot.set_latest_quotes(pd.concat([new, old]), now=TRADING)  # out of order inside one batch
    out = hot.get_latest_quotes(new["symbol"])
    pd.testing.assert_frame_equal(out, new)
    assert np.isnan(out.loc[0, "bid"])
    assert hot.set_latest_quotes(RAW_QUOTES.empty()) == 0
    with pytest.raises(ValueError, match="symbol"):
        hot.set_latest_quotes(pd.DataFrame({"price": [1.0]}))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (TRADING, 300.0),
        (LUNCH, 3600.0),
        (FRIDAY_EVENING, (MONDAY_OPEN - FRIDAY_EVENING).total_seconds()),
        (HOLIDAY, (pd.Timestamp("2024-10-08 01:30", tz="UTC") - HOLIDAY).total_seconds()),
    ],
    ids=["session", "lunch-break", "weekend", "holiday"],
)
def test_quote_ttl_follows_the_trading_calendar(hot: HotStore, now: pd.Timestamp, expected: float) -> None:
    assert TTLPolicy(session_ttl=300).seconds(now) == pytest.approx(expected)
    hot.set_latest_quotes(quotes(2), now=now)
    assert hot.quote_ttl("600000.SH") == pytest.approx(expected, abs=3)
    assert hot.quote_ttl("nope.SZ") is None


def test_ttl_policy_edges() -> None:
    policy = TTLPolicy("XSHG", session_ttl=120)
    assert policy.seconds(TRADING.tz_convert("Asia/Shanghai")) == 120  # any timezone works
    assert policy.seconds(TRADING.tz_localize(None)) == 120  # naive means UTC
    assert policy.seconds(TRADING, floor=1800) == 1800
    assert policy.seconds(FRIDAY_EVENING, floor=1800) > 2 * 86400
    assert TTLPolicy("24/7", session_ttl=60).seconds(FRIDAY_EVENING) == 60
    beyond = TTLPolicy(closed_fallback_ttl=123).seconds(pd.Timestamp("2099-01-03", tz="UTC"))
    assert beyond == 123


def test_entries_expire(hot_kind: str, hot_factory) -> None:
    store = hot_factory(hot_kind, session_ttl=0.3)
    store.set_latest_quotes(quotes(3), now=TRADING)
    assert len(store.get_latest_quotes(["600000.SH", "600001.SH"])) == 2
    time.sleep(0.5)
    assert store.get_latest_quotes(["600000.SH", "600001.SH"]).empty
    assert store.quote_ttl("600000.SH") is None


# -------------------------------------------------------------------------------- change rates


def test_change_rates(hot: HotStore) -> None:
    syms = ["600000.SH", "600001.SH", "600002.SH"]
    n = hot.set_change_rates(
        pd.DataFrame({"symbol": syms, "change_1m": [0.001, -0.002, np.nan]}), now=TRADING
    )
    assert n == 2  # NaN is not written
    hot.set_change_rates(pd.DataFrame({"symbol": syms[1:], "change_5m": [0.01, 0.02]}), now=TRADING)
    hot.set_change_rates(pd.DataFrame({"symbol": [syms[0]], "change_15m": [-0.05]}), now=TRADING)
    out = hot.get_change_rates([syms[2], "nope.SZ", *syms[:2]])
    assert out["symbol"].tolist() == [syms[2], syms[0], syms[1]]
    assert list(out.columns) == ["symbol", "change_1m", "change_5m", "change_15m"]
    expected = {
        syms[2]: (np.nan, 0.02, np.nan),
        syms[0]: (0.001, np.nan, -0.05),
        syms[1]: (-0.002, 0.01, np.nan),
    }
    for row in out.itertuples(index=False):
        np.testing.assert_array_equal((row.change_1m, row.change_5m, row.change_15m), expected[row.symbol])
    assert hot.get_change_rates(["nope.SZ"]).empty
    with pytest.raises(ValueError, match="change_1m"):
        hot.set_change_rates(pd.DataFrame({"symbol": syms, "rate": [1, 2, 3]}))


# ----------------------------------------------------------------------------------- positions


def test_position_state(hot: HotStore) -> None:
    acc = f"acc-{uuid.uuid4().hex[:6]}"
    assert hot.get_position(acc, "600000.SH") is None
    hot.open_position(acc, "600000.SH", 10.0)
    hot.open_position(acc, "600001.SH", 20.0, held_days=3)

    assert hot.update_position_prices(acc, {"600000.SH": 10.5, "600001.SH": 19.0, "nope.SZ": 1.0}) == 2
    assert hot.update_position_prices(acc, {"600000.SH": 9.75, "600001.SH": float("nan")}) == 1
    p = hot.get_position(acc, "600000.SH")
    assert (p.held_days, p.entry_price, p.max_price, p.min_price) == (0, 10.0, 10.5, 9.75)

    assert hot.roll_day(acc, "2024-10-08") == 2
    assert hot.roll_day(acc, "2024-10-08") == 0  # a retried roll for the same day is a no-op
    assert hot.roll_day(acc, "2024-10-07") == 0
    assert hot.roll_day(acc) == 2  # without a day: unconditional
    positions = hot.get_positions(acc)
    assert {s: p.held_days for s, p in positions.items()} == {"600000.SH": 2, "600001.SH": 5}
    assert positions["600001.SH"].min_price == 19.0

    assert hot.close_position(acc, "600000.SH") is True
    assert hot.close_position(acc, "600000.SH") is False
    assert set(hot.get_positions(acc)) == {"600001.SH"}
    assert hot.get_positions(f"other-{acc}") == {}
    assert hot.update_position_prices(acc, {}) == 0


def _hammer(store: HotStore, acc: str, symbols: list[str], seed: int, n: int) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    sent = []
    for _ in range(n):
        batch = {s: round(rng.uniform(1, 100), 4) for s in rng.sample(symbols, 3)}
        store.update_position_prices(acc, batch)
        sent += batch.items()
    return sent


def _check_extremes(
    store: HotStore, acc: str, entry: float, sent: list[tuple[str, float]], rolls: int
) -> None:
    for sym, pos in store.get_positions(acc).items():
        prices = [p for s, p in sent if s == sym] + [entry]
        assert (pos.max_price, pos.min_price, pos.held_days) == (max(prices), min(prices), rolls), sym


def test_concurrent_threads_keep_position_state_consistent(hot: HotStore) -> None:
    acc, entry = f"acc-{uuid.uuid4().hex[:6]}", 50.0
    symbols = [f"{600000 + i}.SH" for i in range(5)]
    for s in symbols:
        hot.open_position(acc, s, entry)
    rolls = 40

    def roller() -> None:
        for _ in range(rolls):
            hot.roll_day(acc)

    with ThreadPoolExecutor(9) as pool:
        roll = pool.submit(roller)
        parts = list(pool.map(lambda k: _hammer(hot, acc, symbols, k, 150), range(8)))
        roll.result()
    _check_extremes(hot, acc, entry, [x for part in parts for x in part], rolls)


def _process_worker(
    url: str, prefix: str, acc: str, symbols: list[str], seed: int
) -> list[tuple[str, float]]:
    store = RedisHotStore(url, prefix=prefix)
    sent = _hammer(store, acc, symbols, seed, 200)
    for _ in range(10):
        store.roll_day(acc)
    store.close()
    return sent


def test_concurrent_processes_keep_redis_position_state_consistent(hot_factory, redis_url: str) -> None:
    store = hot_factory("redis")
    acc, entry = f"acc-{uuid.uuid4().hex[:6]}", 50.0
    symbols = [f"{600000 + i}.SH" for i in range(5)]
    for s in symbols:
        store.open_position(acc, s, entry)
    workers = 4
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [
            pool.submit(_process_worker, redis_url, store.prefix, acc, symbols, k) for k in range(workers)
        ]
        sent = [x for f in futures for x in f.result()]
    _check_extremes(store, acc, entry, sent, rolls=10 * workers)


# ---------------------------------------------------------------------------------- run events


def test_run_events_pub_sub(hot: HotStore) -> None:
    run_id = uuid.uuid4().hex
    events = [{"status": "running", "progress": p} for p in (0, 50, 100)] + [{"status": "succeeded"}]
    with hot.subscribe_run_events(run_id) as sub, hot.subscribe_run_events(f"other-{run_id}") as other:
        received: list[dict] = []
        reader = threading.Thread(
            target=lambda: received.extend(
                sub.listen(5, until=lambda e: e["status"] in TERMINAL_EVENT_STATUSES)
            )
        )
        reader.start()
        for e in events:
            assert hot.publish_run_event(run_id, e) == 1
        reader.join(10)
        assert [{k: e[k] for k in ("status", "progress") if k in e} for e in received] == events
        assert all(e["run_id"] == run_id and "ts" in e for e in received)
        assert other.get(timeout=0.1) is None  # other runs' channels stay quiet
    assert hot.publish_run_event(run_id, {"status": "late"}) == 0  # nobody listens any more


def test_the_last_run_event_is_kept_for_late_readers(hot: HotStore) -> None:
    run_id = uuid.uuid4().hex
    assert hot.last_run_event(run_id) is None
    hot.publish_run_event(run_id, {"status": "running", "stage": "data_loaded", "progress": 25})
    hot.publish_run_event(run_id, {"status": "running", "stage": "simulated", "progress": 70})
    last = hot.last_run_event(run_id)
    assert last["stage"] == "simulated" and last["progress"] == 70 and last["run_id"] == run_id
    assert hot.last_run_event(f"other-{run_id}") is None


def test_hot_store_from_url(redis_url: str) -> None:
    assert isinstance(hot_store_from_url("memory://"), MemoryHotStore)
    redis_store = hot_store_from_url(redis_url, prefix="qptest:url:")
    assert isinstance(redis_store, RedisHotStore) and redis_store.ping().ok
    redis_store.close()
    with pytest.raises(ValueError, match=r"redis://host"):
        hot_store_from_url("http://:pw@example")


# ------------------------------------------------------------------------------- degradation


def test_resilient_store_falls_back_and_counts_skipped_writes_quickly(caplog) -> None:
    cold = quotes(3)
    asked: list[list[str]] = []

    def from_cold(symbols: list[str]) -> pd.DataFrame:
        asked.append(symbols)
        return cold[cold["symbol"].isin(symbols)].reset_index(drop=True)

    store = ResilientHotStore(
        RedisHotStore(CLOSED_PORT), fallback_reader=from_cold, cooldown=0.3, max_cooldown=0.3
    )
    acc = "acc-down"
    t0 = time.perf_counter()
    assert store.set_latest_quotes(quotes(100)) == 0
    first_failure = time.perf_counter() - t0
    for _ in range(50):
        store.set_latest_quotes(cold)
        store.set_change_rates(pd.DataFrame({"symbol": ["600000.SH"], "change_1m": [0.01]}))
        store.update_position_prices(acc, {"600000.SH": 1.0})
        store.roll_day(acc)
        store.publish_run_event("r", {"status": "running"})
    got = store.get_latest_quotes(["600001.SH", "600000.SH"])
    elapsed = time.perf_counter() - t0

    assert store.skipped_writes == 1 + 50 * 5
    assert first_failure < 0.25 and elapsed < 1.0, (first_failure, elapsed)
    assert not store.available
    pd.testing.assert_frame_equal(got, from_cold(["600001.SH", "600000.SH"]))
    assert store.fallback_reads == 1
    assert store.get_change_rates(["600000.SH"]).empty
    assert store.get_position(acc, "600000.SH") is None and store.get_positions(acc) == {}
    assert store.quote_ttl("600000.SH") is None
    with store.subscribe_run_events("r") as sub:
        assert sub.get(timeout=0.01) is None

    ping = store.ping()
    assert not ping.ok and "127.0.0.1:1" in ping.error
    assert "s3cret" not in caplog.text + ping.error + repr(store.primary)
    assert "hot store unavailable" in caplog.text
    with pytest.raises(ValueError):  # caller bugs still surface
        store.set_latest_quotes(pd.DataFrame({"price": [1.0]}))

    # After the cooldown the primary is tried again (and fails again: the circuit re-opens).
    time.sleep(0.35)
    assert store.available
    store.set_latest_quotes(cold)
    assert not store.available and store.skipped_writes == 2 + 50 * 5


def test_resilient_store_passes_through_a_healthy_primary(hot: HotStore) -> None:
    cold = quotes(5, seed=7)
    store = ResilientHotStore(hot, fallback_reader=lambda s: cold[cold["symbol"].isin(s)], fill_misses=True)
    store.set_latest_quotes(quotes(3), now=TRADING)
    out = store.get_latest_quotes([f"{600000 + i}.SH" for i in range(5)])
    assert len(out) == 5 and store.skipped_writes == 0 and store.fallback_reads == 1
    pd.testing.assert_frame_equal(out.head(3), quotes(3))  # the cache wins where it has data
    assert store.ping().ok


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_resilient_store_survives_a_redis_restart() -> None:
    """A private redis-server is stopped mid-use and started again: no exception, then recovery."""
    port = _free_port()
    proc = _start_redis(port)
    try:
        store = ResilientHotStore(
            RedisHotStore(f"redis://127.0.0.1:{port}/0"), cooldown=0.1, max_cooldown=0.2
        )
        store.open_position("acc", "600000.SH", 10.0)
        assert store.get_position("acc", "600000.SH").entry_price == 10.0

        proc.terminate()
        proc.wait(10)
        assert store.update_position_prices("acc", {"600000.SH": 11.0}) == 0
        assert store.get_position("acc", "600000.SH") is None
        assert store.skipped_writes == 1 and not store.available

        proc = _start_redis(port)  # empty again: no persistence
        time.sleep(0.25)
        store.open_position("acc", "600000.SH", 12.0)
        assert store.available and store.get_position("acc", "600000.SH").entry_price == 12.0
        assert store.skipped_writes == 1
        store.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_hot_tier_expiry_follows_the_configured_calendar(qp_home, monkeypatch):
    """QP_CALENDAR decides whose sessions set the TTL, for the resource and the client alike."""
    from quant_platform.client import Client
    from quant_platform.resources.hot import HotCacheResource

    monkeypatch.setenv("QP_CALENDAR", "XNYS")
    assert HotCacheResource().store().ttl.calendar.name == "XNYS"
    assert HotCacheResource(calendar="XSHG").store().ttl.calendar.name == "XSHG"
    with Client() as qp:
        assert qp.hot.ttl.calendar.name == "XNYS"


def test_packed_quotes_keep_nulls_extra_columns_and_partial_frames(hot: HotStore) -> None:
    df = quotes(3)
    df["volume"] = pd.array([5, None, 7], dtype="Int64")
    df.loc[1, "ts"] = pd.NaT
    hot.set_latest_quotes(df.iloc[:2], now=TRADING)
    with_seq = df.iloc[2:].assign(seq=[42])  # the collector's extra column rides along as JSON
    hot.set_latest_quotes(with_seq, now=TRADING)
    out = hot.get_latest_quotes(df["symbol"])
    assert str(out["volume"].dtype) == "Int64" and out["volume"].isna().tolist() == [False, True, False]
    assert pd.isna(out.loc[1, "ts"]) and out.loc[0, "ts"] == TRADING
    assert out["seq"].isna().tolist() == [True, True, False] and out.loc[2, "seq"] == 42
    hot.set_latest_quotes(pd.DataFrame({"symbol": ["X.SH"], "price": [1.5]}), now=TRADING)
    partial = hot.get_latest_quotes(["X.SH"])
    assert list(partial.columns) == ["symbol", "price"] and partial.loc[0, "price"] == 1.5


def test_a_quote_read_heals_a_connection_dropped_while_pooled(hot_factory, redis_url: str) -> None:
    import redis

    store = hot_factory("redis")
    store.set_latest_quotes(quotes(3), now=TRADING)
    conn_id = store.client.client_id()  # the one pooled connection the next read reuses
    admin = redis.Redis.from_url(redis_url)
    try:
        assert admin.client_kill_filter(_id=conn_id) == 1
    finally:
        admin.close()
    assert len(store.get_latest_quotes(["600000.SH", "600002.SH"])) == 2
