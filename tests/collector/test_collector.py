"""Streaming collector against a local misbehaving WebSocket feed on 127.0.0.1 (ephemeral port)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import time
import urllib.error
import urllib.request

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from quant_platform.collector import (
    ChangeTracker,
    ColdSink,
    Collector,
    CollectorConfig,
    PairState,
    ticks_frame,
)
from quant_platform.collector.sink import CRYPTO_TICKS
from quant_platform.collector.testing import FakeExchange, Faults
from quant_platform.storage.cold import ColdStore
from quant_platform.storage.hot import MemoryHotStore, TTLPolicy

START_MS = 1_728_352_800_000  # 2024-10-08 02:00 UTC
FAST = dict(  # noqa: C408 - keyword overrides for quick tests
    ping_interval=0.5,
    ping_timeout=2.0,
    stall_timeout=0.4,
    reconnect_initial=0.02,
    reconnect_max=0.1,
    gap_grace=0.1,
    flush_interval=0.25,
    hot_interval=0.02,
    metrics_port=None,
)


def pairs(n: int) -> list[str]:
    return [f"C{i:04d}-USDT" for i in range(n)]


def hot_store() -> MemoryHotStore:
    return MemoryHotStore(ttl=TTLPolicy("24/7"))


async def wait_until(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.02)
    return cond()


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


# ------------------------------------------------------------------------------------- units


def test_pair_state_gaps_duplicates_and_out_of_order():
    st = PairState()
    assert [st.accept(s, 0.0) for s in (5, 6, 9, 8, 6, 7, 9)] == [True, True, True, True, False, True, False]
    assert st.high == 9 and st.missing == {} and st.resume_from() == 10
    st.accept(12, 1.0)
    assert sorted(st.missing) == [10, 11] and st.resume_from() == 10
    assert PairState().resume_from() is None


def test_pair_state_tells_a_sequence_reset_from_a_duplicate():
    st = PairState()
    for seq in (1, 2, 3):
        assert st.accept(seq, 0.0)
        st.seen_event(seq, 1_000 * seq)
    assert not st.is_reset(2, 2_000)  # a redelivered tick: same event time
    assert not st.is_reset(2, 500)  # a replay of an old tick
    assert not st.is_reset(4, 9_000)  # simply the next tick
    assert st.is_reset(1, 9_000)  # seq 1 again, but newer than anything seen: the feed restarted
    st.reset(1)
    assert st.accept(1, 0.0) and st.high == 1 and st.resets == 1 and st.missing == {}
    assert not PairState(high=5).is_reset(1, 9_000)  # no event time known yet: cannot tell


def test_change_tracker_carries_prices_forward():
    t = ChangeTracker()
    t.update("X", 0, 100.0)
    t.update("X", 30, 110.0)  # nothing between 0 and 30: price 100 carried forward
    t.update("X", 75, 121.0)
    rates = t.rates("X")
    assert rates["change_1m"] == pytest.approx(121.0 / 100.0 - 1)  # price at second 15 was 100
    assert math.isnan(rates["change_5m"]) and math.isnan(rates["change_15m"])
    t.update("X", 60 * 16, 50.0)  # a long gap: the ring wraps
    assert t.rates("X")["change_15m"] == pytest.approx(50.0 / 110.0 - 1)  # as of second 60
    assert all(math.isnan(v) for v in t.rates("nope").values())


def test_sink_dedupes_before_insert(chdb_dsn):
    rows = [
        ("A", s, START_MS + s, 1.0 + s, 1.0, 2.0, 0.5, 1.0, 1.0, 1.0, 0.9, 1.1, time.time())
        for s in range(1, 6)
    ]
    sink = ColdSink(chdb_dsn)
    try:
        assert sink.write(ticks_frame(rows)) == 5
        assert sink.write(ticks_frame(rows[2:] + rows[:1])) == 0  # a retried batch that did land
        assert sink.write(ticks_frame(rows + [("A", 6, START_MS + 6, 7.0, *rows[0][4:])])) == 1
        assert sink.count(final=False) == 6 and sink.high_water() == {"A": 6}
    finally:
        sink.close()


# ------------------------------------------------------------------------------------- feed


def test_faulty_feed_loses_nothing_and_duplicates_nothing(chdb_dsn):
    names = pairs(30)
    ticks = 60
    bad = ("C0003-USDT", 20)
    faults = Faults(
        drop_after={0: 400},  # abrupt disconnect
        stall_after={1: 300},  # silent but open connection
        stall_seconds=1.0,
        malformed_every=37,
        swap_every=11,
        duplicate_every=13,
        skip_every=53,
        bad_values={bad},
    )
    sink, hot = ColdSink(chdb_dsn), hot_store()
    config = CollectorConfig(url="", pairs=names, subscribe_chunk=7, **{**FAST, "metrics_port": 0})

    async def scenario():
        async with FakeExchange(
            names, ticks_per_pair=ticks, rate=3000, faults=faults, start_ms=START_MS, step_ms=2000
        ) as ex:
            config.url = ex.url
            collector = Collector(config, sink=sink, hot=hot)
            task = asyncio.create_task(collector.run())
            total = len(names) * ticks
            ok = await wait_until(lambda: collector.stats.accepted + collector.stats.rejected >= total, 60)
            port = collector.metrics_server.port
            health = await asyncio.to_thread(http_get, port, "/healthz")
            metrics = await asyncio.to_thread(http_get, port, "/metrics")
            collector.stop()
            await task
            return ok, collector, ex, health, metrics

    ok, collector, ex, health, metrics = asyncio.run(scenario())
    stats = collector.stats
    assert ok, stats
    assert stats.accepted == 30 * 60 - 1 and stats.rejected == 1 and stats.lost == 0
    assert (
        stats.malformed > 0 and stats.duplicates > 0 and stats.reconnects >= 2 and stats.replay_requests > 0
    )
    assert ex.subscribes == 5 * ex.connections  # 30 pairs in chunks of 7, on every connection

    with ColdStore(chdb_dsn) as cold:
        table = cold.table(CRYPTO_TICKS.name)
        n, distinct = cold.client.query(f"SELECT count(), uniqExact(symbol, seq) FROM {table}").result_rows[0]
        final = cold.client.command(f"SELECT count() FROM {table} FINAL")
        per_pair = cold.query_df(
            f"SELECT symbol, min(seq) AS lo, max(seq) AS hi, count() AS n FROM {table} GROUP BY symbol"
        )
        q = cold.query_df(f"SELECT symbol, rule, reason FROM {cold.table('quarantine')}")
        prices = cold.query_df(
            f"SELECT symbol, seq, price, ts FROM {table} WHERE seq IN (30, 60) ORDER BY symbol, seq"
        )
    assert n == distinct == int(final) == 30 * 60 - 1
    assert (per_pair["lo"] == 1).all() and (per_pair["hi"] == 60).all()
    assert (
        q["symbol"].tolist() == [bad[0]]
        and "seq 20" in q["reason"].iloc[0]
        and "'abc'" in q["reason"].iloc[0]
    )

    latest = hot.get_latest_quotes(names)
    assert len(latest) == 30 and (latest["seq"] == 60).all()
    assert (latest["ts"] == pd.Timestamp(START_MS + 60 * 2000, unit="ms", tz="UTC")).all()
    rates = hot.get_change_rates(names).set_index("symbol")
    wide = prices.pivot(index="symbol", columns="seq", values="price")
    np.testing.assert_allclose(rates.loc[wide.index, "change_1m"], wide[60] / wide[30] - 1)  # 60 s = 30 ticks
    assert rates["change_5m"].isna().all()  # only 2 minutes of history

    assert health[0] == 200 and json.loads(health[1])["connected"] is True
    text = metrics[1].decode()
    assert metrics[0] == 200 and 'qp_collector_messages_total{kind="tick"}' in text
    assert "qp_collector_update_latency_seconds_bucket" in text and "qp_collector_reconnects_total" in text


def test_restart_resumes_from_the_stored_sequence_without_duplicates(chdb_dsn):
    names = pairs(10)

    async def scenario():
        async with FakeExchange(names, ticks_per_pair=50, rate=400, start_ms=START_MS, step_ms=1000) as ex:
            first = Collector(CollectorConfig(url=ex.url, pairs=names, **FAST), sink=ColdSink(chdb_dsn))
            task = asyncio.create_task(first.run())
            await wait_until(lambda: first.stats.accepted >= 150, 10)
            first.stop()
            await task
            await asyncio.sleep(0.3)  # the feed moves on while nobody listens
            second = Collector(CollectorConfig(url=ex.url, pairs=names, **FAST), sink=ColdSink(chdb_dsn))
            task = asyncio.create_task(second.run())
            ok = await wait_until(
                lambda: all(st.high == 50 and not st.missing for st in second.pairs.values()), 10
            )
            second.stop()
            await task
            return ok, first, second

    ok, first, second = asyncio.run(scenario())
    assert ok
    assert first.stats.rows_written + second.stats.rows_written == 500
    sink = ColdSink(chdb_dsn)
    try:
        assert sink.count(final=False) == 500 and sink.high_water() == dict.fromkeys(names, 50)
    finally:
        sink.close()


def test_sigterm_stops_cleanly_and_flushes_everything(chdb_dsn):
    names = pairs(20)
    instance = dg.DagsterInstance.ephemeral()

    async def scenario():
        async with FakeExchange(names, ticks_per_pair=None, rate=2000) as ex:
            collector = Collector(
                CollectorConfig(
                    url=ex.url, pairs=names, **{**FAST, "flush_interval": 60.0, "flush_rows": 10**9}
                ),
                sink=ColdSink(chdb_dsn),
                hot=hot_store(),
                instance=instance,
            )
            collector.install_signal_handlers()
            task = asyncio.create_task(collector.run())
            try:
                await wait_until(lambda: collector.stats.accepted >= 500, 10)
                assert collector.stats.rows_written == 0  # nothing flushed yet: all in the buffer
                os.kill(os.getpid(), signal.SIGTERM)
                # asyncio.wait, not wait_for: a timeout must not cancel the final flush under way
                done, _ = await asyncio.wait({task}, timeout=60)
                assert done, "SIGTERM did not stop the collector within 60 s"
            finally:
                collector.remove_signal_handlers()
                if not task.done():  # a failed assertion above: stop it rather than hang the session
                    collector.stop()
                    await asyncio.wait({task}, timeout=60)
            return collector

    collector = asyncio.run(scenario())
    assert not collector.running and collector.stats.accepted >= 500
    assert collector.stats.rows_written == collector.stats.accepted
    sink = ColdSink(chdb_dsn)
    try:
        assert sink.count(final=False) == collector.stats.accepted
    finally:
        sink.close()
    records = instance.fetch_observations(dg.AssetKey("raw_quotes"), limit=10).records
    metas = [r.asset_observation.metadata for r in records]
    assert records, "no observation reported"
    assert sum(m["rows_since_last_observation"].value for m in metas) == collector.stats.accepted, metas
    assert metas[0]["table"].value == "quant.crypto_ticks" and "watermark" in metas[0]


def test_120_pairs_keep_the_hot_tier_current(chdb_dsn):
    names = pairs(120)

    async def scenario():
        async with FakeExchange(names, ticks_per_pair=None, rate=3000, batch=10) as ex:
            collector = Collector(
                CollectorConfig(url=ex.url, pairs=names, **FAST), sink=ColdSink(chdb_dsn), hot=hot_store()
            )
            task = asyncio.create_task(collector.run())
            await wait_until(lambda: collector.stats.accepted >= 3000, 10)
            collector.stop()
            await task
            return collector

    collector = asyncio.run(scenario())
    # Every accepted tick updated the hot tier; how fast is benchmarks/collector.py's job, not a test's.
    lat = np.array(collector.latencies)
    assert len(lat) >= 3000 and np.isfinite(lat).all() and (lat >= 0).all()


def test_unreachable_feed_backs_off_and_health_says_so():
    async def scenario():
        collector = Collector(
            CollectorConfig(url="ws://127.0.0.1:9", pairs=["A-B"], **{**FAST, "metrics_port": 0})
        )
        task = asyncio.create_task(collector.run())
        await wait_until(lambda: collector.stats.reconnects >= 3, 5)
        status = await asyncio.to_thread(http_get, collector.metrics_server.port, "/healthz")
        collector.stop()
        await task
        return collector, status

    collector, (code, body) = asyncio.run(scenario())
    assert collector.stats.errors.get("connect", 0) >= 3
    assert code == 503 and json.loads(body)["connected"] is False


def test_config_validation():
    with pytest.raises(ValueError, match="at least one pair"):
        CollectorConfig(url="ws://127.0.0.1:1", pairs=[" ", ""])


def test_a_feed_sequence_reset_is_detected_and_nothing_is_dropped(chdb_dsn, caplog):
    """An exchange restart numbers ticks from 1 again: the collector resyncs, logs it, keeps them all."""
    names = pairs(5)
    sink, hot = ColdSink(chdb_dsn), hot_store()
    config = CollectorConfig(url="", pairs=names, **FAST)

    async def scenario():
        async with FakeExchange(
            names, ticks_per_pair=40, rate=2000, faults=Faults(reset_after_rounds=25),
            start_ms=START_MS, step_ms=1000,
        ) as ex:  # fmt: skip
            config.url = ex.url
            collector = Collector(config, sink=sink, hot=hot)
            task = asyncio.create_task(collector.run())
            ok = await wait_until(lambda: collector.stats.accepted >= 5 * 40, 30)
            collector.stop()
            await task
            return ok, collector

    with caplog.at_level("WARNING", logger="quant_platform.collector"):
        ok, collector = asyncio.run(scenario())
    try:
        assert ok, collector.stats
        assert collector.stats.accepted == 200 and collector.stats.resets == 5 and collector.stats.lost == 0
        assert sum("sequence reset" in r.getMessage() for r in caplog.records) == 5
        assert sink.count(final=True) == 200  # seqs 1..15 twice per pair, at different times
        assert sink.high_water() == dict.fromkeys(names, 15)  # the newest tick, not the highest seq
    finally:
        sink.close()


def test_ticks_breaking_a_row_rule_are_quarantined_with_its_name(chdb_dsn):
    """The collector applies the rules a single tick can break, under the batch rules' names."""
    names = pairs(3)
    faults = Faults(crossed_book={("C0001-USDT", 7)}, huge_volume={("C0002-USDT", 9)})
    sink, hot = ColdSink(chdb_dsn), hot_store()
    config = CollectorConfig(url="", pairs=names, **FAST)

    async def scenario():
        async with FakeExchange(names, ticks_per_pair=20, rate=2000, faults=faults) as ex:
            config.url = ex.url
            collector = Collector(config, sink=sink, hot=hot)
            task = asyncio.create_task(collector.run())
            ok = await wait_until(lambda: collector.stats.accepted + collector.stats.rejected >= 60, 30)
            collector.stop()
            await task
            return ok, collector

    ok, collector = asyncio.run(scenario())
    try:
        assert ok and collector.stats.accepted == 58 and collector.stats.rejected == 2
        assert sink.count(final=True) == 58
    finally:
        sink.close()
    with ColdStore(chdb_dsn) as cold:
        q = cold.query_df(f"SELECT symbol, rule, reason FROM {cold.table('quarantine')} ORDER BY symbol")
    assert q["rule"].tolist() == ["crossed_book", "out_of_range"]
    assert q["symbol"].tolist() == ["C0001-USDT", "C0002-USDT"] and "seq 7" in q["reason"].iloc[0]
