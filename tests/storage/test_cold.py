"""Cold tier on the embedded ClickHouse (chdb): partition replacement, reads, the one-process lock, and
the named queries of quotes, klines, bars, grid search results and collector ticks."""

import datetime as dt
import re
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from quant_platform.core.processes import ProcessId, host_key, hostname, start_ticks
from quant_platform.core.processes import current as current_process
from quant_platform.core.schema import (
    BARS_1M,
    COLD_TABLES,
    CRYPTO_TICKS,
    GRID_METRICS,
    GRID_RESULTS,
    KLINES_DAILY,
    RAW_QUOTES,
)
from quant_platform.sources.synthetic import SyntheticMarket
from quant_platform.storage import cold as cold_module
from quant_platform.storage.cold import ColdStore, ColdStoreLocked, redact, stage_name, stage_writer

D1, D2 = dt.date(2024, 9, 30), dt.date(2024, 10, 8)


@pytest.fixture
def cold(chdb_dsn):
    with ColdStore(chdb_dsn) as store:
        store.ensure_schema()
        yield store


@pytest.fixture(scope="module")
def quotes():
    m = SyntheticMarket(n_symbols=3, snapshot_seconds=60)
    return pd.concat([m.fetch_quotes(D1), m.fetch_quotes(D2)], ignore_index=True)


def test_replace_is_idempotent_and_round_trips(cold, quotes):
    for _ in range(3):
        cold.replace_partitions(RAW_QUOTES, quotes, [D1, D2])
    assert cold.count_by_day("raw_quotes", [D1, D2]) == {D1: 720, D2: 720}
    back = cold.read_table("raw_quotes", D1, D2)
    key = ["symbol", "ts"]
    expected = quotes.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert back.dtypes["ts"] == expected.dtypes["ts"]


def test_replacing_one_day_leaves_the_other(cold, quotes):
    cold.replace_partitions(RAW_QUOTES, quotes, [D1, D2])
    fewer = quotes[
        (quotes["trade_date"] == pd.Timestamp(D2)) & (quotes["symbol"] == quotes["symbol"].iloc[0])
    ]
    cold.replace_partitions(RAW_QUOTES, fewer, [D2])
    assert cold.count_by_day("raw_quotes", [D1, D2]) == {D1: 720, D2: 240}


def test_a_day_without_rows_is_emptied(cold, quotes):
    cold.replace_partitions(RAW_QUOTES, quotes, [D1, D2])
    cold.replace_partitions(RAW_QUOTES, RAW_QUOTES.empty(), [D2])
    assert cold.count_by_day("raw_quotes", [D1, D2]) == {D1: 720, D2: 0}


def test_rows_outside_the_written_days_are_refused(cold, quotes):
    with pytest.raises(ValueError, match="outside the days being written"):
        cold.replace_partitions(RAW_QUOTES, quotes, [D1])
    assert cold.count_by_day("raw_quotes", [D1]) == {D1: 0}


def test_failed_write_leaves_previous_data_and_no_staging(cold, quotes):
    cold.replace_partitions(RAW_QUOTES, quotes, [D1, D2])
    bad = quotes.copy()
    bad["volume"] = bad["volume"].astype(object)
    bad.loc[5, "volume"] = "not a number"
    with pytest.raises((ValueError, TypeError, RuntimeError)):  # the cast or the insert refuses it
        cold.replace_partitions(RAW_QUOTES, bad, [D1, D2])
    assert cold.count_by_day("raw_quotes", [D1, D2]) == {D1: 720, D2: 720}
    assert set(cold.row_counts()) >= {"raw_quotes"} and not [t for t in cold.row_counts() if "__stage_" in t]


def test_missing_columns_fail_loudly(cold, quotes):
    with pytest.raises(ValueError, match=r"missing columns \['amount'\]"):
        cold.replace_partitions(RAW_QUOTES, quotes.drop(columns=["amount"]), [D1, D2])


def test_read_filters_are_parameters_not_sql(cold, quotes):
    cold.replace_partitions(RAW_QUOTES, quotes, [D1, D2])
    sym = quotes["symbol"].iloc[0]
    one = cold.read_table("raw_quotes", D2, D2, symbols=[sym])
    assert set(one["symbol"]) == {sym} and len(one) == 240
    assert cold.read_table("raw_quotes", symbols=["x' OR 1=1 --"]).empty
    last = cold.read_table("raw_quotes", D1, D2, last_per_symbol_day=True)
    assert len(last) == 6
    with pytest.raises(ValueError, match="no column"):
        cold.read_table("raw_quotes", columns=["price; DROP TABLE x"])


def test_klines_table_keyed_by_day(cold):
    k = SyntheticMarket(n_symbols=5).fetch_daily_bars(D2)
    cold.replace_partitions(KLINES_DAILY, k, [D2])
    assert len(cold.read_table("klines_daily", D2, D2)) == len(k) > 0


def test_second_process_gets_a_clear_lock_error(cold, chdb_dsn):
    code = textwrap.dedent(
        f"""
        from quant_platform.storage.cold import ColdStore
        with ColdStore({chdb_dsn!r}, lock_timeout=0.5):
            pass
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "ColdStoreLocked" in proc.stderr
    assert "is held by process" in proc.stderr and "one process per data path" in proc.stderr


def test_lock_released_on_close(chdb_dsn):
    with ColdStore(chdb_dsn) as store:
        store.ensure_schema()
    code = (
        "from quant_platform.storage.cold import ColdStore\n"
        f"with ColdStore({chdb_dsn!r}) as c: c.ensure_schema()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_one_embedded_path_per_process(chdb_dsn, tmp_path):
    with ColdStore(chdb_dsn) as store:
        store.ensure_schema()
        with pytest.raises(ColdStoreLocked, match="one chdb path per process"):
            ColdStore(f"chdb://{tmp_path / 'other'}").connect()


def test_redact_hides_passwords():
    assert redact("http://user:s3cret@host:8123/db") == "http://user:***@host:8123/db"
    assert redact("chdb:///data/x") == "chdb:///data/x"


def test_yearly_tables_replace_only_the_days_written(cold):
    m = SyntheticMarket(n_symbols=4, snapshot_seconds=60)
    k1, k2 = m.fetch_daily_bars(D1), m.fetch_daily_bars(D2)
    cold.replace_partitions(KLINES_DAILY, pd.concat([k1, k2]), [D1, D2])
    assert cold.count_by_day("klines_daily", [D1, D2]) == {D1: len(k1), D2: len(k2)}
    cold.replace_partitions(KLINES_DAILY, k2.iloc[:1], [D2])  # same year: D1 must survive
    assert cold.count_by_day("klines_daily", [D1, D2]) == {D1: len(k1), D2: 1}
    cold.replace_partitions(KLINES_DAILY, k2, [D2])
    cold.replace_partitions(KLINES_DAILY, k2, [D2])
    assert cold.count_by_day("klines_daily", [D1, D2]) == {D1: len(k1), D2: len(k2)}
    cold.replace_partitions(KLINES_DAILY, KLINES_DAILY.empty(), [D1, D2])
    assert cold.count_by_day("klines_daily", [D1, D2]) == {D1: 0, D2: 0}


def test_ensure_schema_creates_every_registered_table(cold):
    assert set(COLD_TABLES) <= set(cold.row_counts())
    assert {"grid_search_results", "crypto_ticks"} <= set(COLD_TABLES)


# -- named queries -----------------------------------------------------------------------------------


def test_latest_quotes_is_the_newest_snapshot_per_symbol(cold, quotes):
    cold.replace_partitions(RAW_QUOTES, quotes, [D1, D2])
    a, b = sorted(quotes["symbol"].unique())[:2]
    latest = cold.latest_quotes([a, b, "NOPE.SH"])
    expected = (
        quotes[quotes["symbol"].isin([a, b])]
        .sort_values("ts")
        .groupby("symbol")
        .tail(1)
        .sort_values("symbol")
    )
    assert list(latest.columns) == RAW_QUOTES.names
    pd.testing.assert_frame_equal(
        latest.sort_values("symbol").reset_index(drop=True),
        expected.reset_index(drop=True),
        check_dtype=False,
    )
    assert cold.latest_quotes(["x' OR 1=1 --"]).empty


def test_latest_quotes_scans_only_the_lookback_window(cold, quotes):
    a, b = sorted(quotes["symbol"].unique())[:2]
    only_d1 = quotes[quotes["symbol"] == b].copy()
    only_d1 = only_d1[only_d1["trade_date"] == pd.Timestamp(D1)]
    both = pd.concat([quotes[quotes["symbol"] == a], only_d1], ignore_index=True)
    cold.replace_partitions(RAW_QUOTES, both, [D1, D2])
    gap = (D2 - D1).days  # b's newest day is `gap` days before the newest day of [a, b]
    assert set(cold.latest_quotes([a, b])["symbol"]) == {a, b}  # default: a month
    assert set(cold.latest_quotes([a, b], lookback_days=gap)["symbol"]) == {a, b}
    assert set(cold.latest_quotes([a, b], lookback_days=gap - 1)["symbol"]) == {a}


def test_kline_days_newest_first(cold):
    assert cold.kline_days(5).empty
    m = SyntheticMarket(n_symbols=3)
    cold.replace_partitions(
        KLINES_DAILY, pd.concat([m.fetch_daily_bars(D1), m.fetch_daily_bars(D2)]), [D1, D2]
    )
    days = cold.kline_days(5)
    assert list(days.columns) == ["trade_date"]
    assert list(days["trade_date"]) == [pd.Timestamp(D2), pd.Timestamp(D1)]
    assert list(cold.kline_days(1)["trade_date"]) == [pd.Timestamp(D2)]


def _bars(rows):
    """BARS_1M rows from (symbol, day, minute after 01:30 UTC, volume)."""
    frame = pd.DataFrame(
        [
            {
                "symbol": sym,
                "trade_date": pd.Timestamp(day),
                "ts": pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=1, minutes=30 + minute),
                "open": 10.0,
                "high": 10.0,
                "low": 10.0,
                "close": 10.0,
                "volume": volume,
                "amount": 10.0 * volume,
                "change_rate": 0.0,
            }
            for sym, day, minute, volume in rows
        ]
    )
    return BARS_1M.conform(frame)


def test_bar_volume_sums_per_symbol_and_day(cold):
    d0 = dt.date(2024, 9, 27)
    rows = [("A", D1, 1, 100), ("A", D1, 2, 250), ("B", D1, 1, 7), ("A", D2, 1, 40), ("A", d0, 1, 999)]
    cold.replace_partitions(BARS_1M, _bars(rows), [d0, D1, D2])
    got = cold.bar_volume(D1, D2).sort_values(["trade_date", "symbol"]).reset_index(drop=True)
    assert list(got.columns) == ["symbol", "trade_date", "bar_volume"]
    assert got.values.tolist() == [
        ["A", pd.Timestamp(D1), 350],
        ["B", pd.Timestamp(D1), 7],
        ["A", pd.Timestamp(D2), 40],
    ]
    assert cold.bar_volume(D2, D2, freq="5m").empty


def _grid_frame(request_id, combos=3, symbols=("A", "B")):
    """GRID_RESULTS rows: a '*' row and one row per symbol for each combination; rank 1 = combo 0."""
    rows = []
    for rank in range(1, combos + 1):
        for sym in ("*", *symbols):
            rows.append(
                {
                    "request_id": request_id,
                    "rank": rank,
                    "combo_id": rank - 1,
                    "symbol": sym,
                    "params": f'{{"fast": {rank}}}',
                    "objective": 1.0 / rank,
                    **dict.fromkeys(GRID_METRICS, 0.5),
                    "created_at": pd.Timestamp("2024-10-08 08:00", tz="UTC"),
                }
            )
    return GRID_RESULTS.conform(pd.DataFrame(rows))


def test_grid_results_write_read_delete(cold):
    frame = _grid_frame("r1")
    assert cold.write_grid_results("r1", frame) == len(frame) == 9
    assert cold.write_grid_results("r1", frame) == 9  # a retried write replaces, never duplicates
    cold.write_grid_results("r2", _grid_frame("r2", combos=1))
    best = cold.grid_results("r1")
    assert list(best.columns) == GRID_RESULTS.names
    assert list(best["rank"]) == [1, 2, 3] and set(best["symbol"]) == {"*"}
    assert list(cold.grid_results("r1", top=2)["rank"]) == [1, 2]
    every = cold.grid_results("r1", per_symbol=True)
    assert list(zip(every["rank"], every["symbol"], strict=True)) == [
        (r, s) for r in (1, 2, 3) for s in ("*", "A", "B")
    ]
    assert len(cold.grid_results("x' OR 1=1 --")) == 0
    cold.delete_grid_results("r1")
    assert cold.grid_results("r1", per_symbol=True).empty
    assert len(cold.grid_results("r2", per_symbol=True)) == 3


def test_grid_results_need_no_ensure_schema(chdb_dsn):
    with ColdStore(chdb_dsn) as store:  # a store that never ran ensure_schema
        assert store.grid_results("r1").empty
        store.delete_grid_results("r1")
        assert store.write_grid_results("r1", _grid_frame("r1", combos=1)) == 3


def _ticks(rows):
    """CRYPTO_TICKS rows from (symbol, seq, seconds after 2024-10-08 00:00 UTC)."""
    t0 = pd.Timestamp("2024-10-08", tz="UTC")
    frame = pd.DataFrame(
        [
            {
                "symbol": sym,
                "trade_date": pd.Timestamp("2024-10-08"),
                "ts": t0 + pd.Timedelta(seconds=sec),
                "seq": seq,
                **dict.fromkeys(["price", "open", "high", "low", "prev_close", "bid", "ask"], 100.0),
                "volume": 1.5,
                "amount": 150.0,
                "received_at": t0 + pd.Timedelta(seconds=sec + 1),
            }
            for sym, seq, sec in rows
        ]
    )
    return CRYPTO_TICKS.conform(frame)


def test_tick_queries(cold):
    assert cold.count_ticks() == 0 and cold.max_tick_seqs() == {}
    cold.append(CRYPTO_TICKS, _ticks([("A", 1, 1), ("A", 2, 2), ("A", 3, 3), ("B", 1, 1), ("B", 2, 2)]))
    cold.append(CRYPTO_TICKS, _ticks([("A", 3, 3)]))  # the same message written twice
    assert cold.count_ticks(final=False) == 6
    assert cold.count_ticks() == 5  # FINAL collapses the duplicate
    assert cold.max_tick_seqs() == {"A": 3, "B": 2}
    assert cold.max_tick_seqs(["B", "C"]) == {"B": 2}
    t0 = pd.Timestamp("2024-10-08", tz="UTC")
    seen = cold.tick_seqs(["A", "B"], t0 + pd.Timedelta(seconds=2), t0 + pd.Timedelta(seconds=3), 0, 10)
    assert sorted(zip(seen["symbol"], seen["seq"].astype(int), strict=True)) == [
        ("A", 2),
        ("A", 3),
        ("A", 3),
        ("B", 2),
    ]
    bounded = cold.tick_seqs(["A"], t0, t0 + pd.Timedelta(seconds=9), 2, 2)
    assert list(bounded["seq"]) == [2]
    assert cold.tick_seqs(["C"], t0, t0 + pd.Timedelta(seconds=9), 0, 10).empty


def _stage_tables(cold) -> set[str]:
    rows = cold.client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND position(name, '__stage_') > 0",
        parameters={"db": cold.database},
    ).result_rows
    return {name for (name,) in rows}


def _killed_process() -> ProcessId:
    """A process of this host that existed and was killed (SIGKILL, reaped): a crashed writer."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        return ProcessId(hostname(), child.pid, start_ticks(child.pid))
    finally:
        child.kill()
        child.wait(timeout=30)


def test_staging_tables_of_dead_writers_are_dropped_at_the_next_write(cold, quotes, monkeypatch):
    me, dead = current_process(), _killed_process()
    crashed = stage_name("raw_quotes", dead)
    live = stage_name("klines_daily", me)  # e.g. another ColdStore of this process, mid-write
    reused = stage_name("raw_quotes", ProcessId(me.host, me.pid, (me.start or 0) + 1))
    remote = stage_name("raw_quotes", ProcessId("another-host", dead.pid, dead.start))
    legacy = "raw_quotes__stage_0123456789ab"  # older naming: no writer, young
    for name in (crashed, live, reused, remote, legacy):
        cold.client.command(cold.create_table_sql(RAW_QUOTES, name))

    cold.replace_partitions(RAW_QUOTES, quotes, [D1, D2])  # fresh tables: no age rule involved

    left = _stage_tables(cold)
    assert crashed not in left
    assert live in left
    assert (reused in left) is (me.start is None)  # a pid now held by another process: dead writer
    assert {remote, legacy} <= left  # another host's or unknown writers: only after an hour
    assert cold.count_by_day("raw_quotes", [D1, D2]) == {D1: 720, D2: 720}
    assert stage_writer(crashed) == (host_key(), dead.pid, dead.start)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in (crashed, live, reused, remote))

    monkeypatch.setattr(cold_module, "STALE_STAGE_SECONDS", 0)  # as if an hour had passed
    time.sleep(1.1)  # metadata_modification_time has a resolution of one second
    assert sorted(cold.drop_orphaned_stages()) == sorted([remote, legacy])
    assert live in _stage_tables(cold)  # a live writer's table is never dropped, whatever its age


def test_ensure_schema_drops_dead_writers_stages_too(cold):
    crashed = stage_name("klines_daily", _killed_process())
    cold.client.command(cold.create_table_sql(KLINES_DAILY, crashed))
    cold.ensure_schema()
    assert crashed not in _stage_tables(cold)


# -- symbol master ---------------------------------------------------------------------------------


def test_symbol_master_is_replaced_per_source_and_day(cold):
    assert cold.symbol_master(D2) == []  # nothing recorded: an empty universe, not an error
    for _ in range(2):  # idempotent
        assert cold.write_symbol_master("synthetic", D1, ["600000.SH", "000001.SZ", "600000.SH"]) == 2
    cold.write_symbol_master("akshare", D1, ["600519.SH"], names={"600519.SH": "贵州茅台"})
    cold.write_symbol_master("synthetic", D2, ["600000.SH"])
    rows = cold.read_table("symbol_master")
    assert len(rows) == 4 and rows.loc[rows["symbol"] == "600519.SH", "name"].item() == "贵州茅台"
    # each source's latest list on or before the day, united over the sources
    assert cold.symbol_master(D1) == ["000001.SZ", "600000.SH", "600519.SH"]
    assert cold.symbol_master(D1 + dt.timedelta(days=3)) == ["000001.SZ", "600000.SH", "600519.SH"]
    assert cold.symbol_master(D2) == ["600000.SH", "600519.SH"]  # synthetic's list of D2, akshare's of D1
    assert cold.symbol_master(D2, source="synthetic") == ["600000.SH"]
    assert cold.symbol_master(D2, source="akshare") == ["600519.SH"]
    assert cold.symbol_master(D1 - dt.timedelta(days=1)) == []
    # replacing one (source, day) keeps the others; an empty list removes the record
    cold.write_symbol_master("synthetic", D1, ["000001.SZ"])
    assert cold.symbol_master(D1) == ["000001.SZ", "600519.SH"]
    cold.write_symbol_master("synthetic", D2, [])
    assert cold.symbol_master(D2) == ["000001.SZ", "600519.SH"]
    assert cold.symbol_master(D1, source="x' OR 1=1 --") == []


def test_symbol_masters_of_many_days_in_one_write(cold):
    days = [D1 + dt.timedelta(days=i) for i in range(120)] + [dt.date(2026, 1, 5)]  # three years
    assert cold.write_symbol_masters("synthetic", {d: ["600000.SH", "000001.SZ"] for d in days}) == 242
    cold.write_symbol_master("import", D1, ["600519.SH"])
    assert cold.write_symbol_masters("synthetic", {D1: ["600000.SH"], days[-1]: []}) == 1
    assert cold.symbol_master(D1) == ["600000.SH", "600519.SH"]
    assert cold.symbol_master(days[-1]) == ["000001.SZ", "600000.SH", "600519.SH"]  # back to days[-2]
    assert len(cold.read_table("symbol_master")) == 119 * 2 + 1 + 1


def test_symbol_master_needs_no_ensure_schema(chdb_dsn):
    with ColdStore(chdb_dsn) as store:
        assert store.symbol_master(D1) == []
        store.write_symbol_master("import", D1, ["600000.SH"])
        assert store.symbol_master(D2) == ["600000.SH"]


def test_backtest_outputs_through_arrow_read_back_as_through_native(cold):
    """`append_arrow` (dictionary-encoded text) stores exactly what `append` stores; `delete_runs`
    removes several runs' rows at once and nothing else."""
    import numpy as np

    from quant_platform.core.schema import BACKTEST_EQUITY, BACKTEST_TRADES

    ts = pd.date_range("2024-01-02", periods=50, freq="D", tz="UTC").as_unit("ms")
    equity = pd.DataFrame(
        {
            "symbol": np.repeat(["*", "600000.SH", "000001.SZ"], 50),
            "ts": np.tile(ts, 3),
            "equity": np.linspace(1e6, 1.1e6, 150),
            "drawdown": -np.linspace(0, 0.2, 150),
        }
    )
    trades = pd.DataFrame(
        {
            "symbol": ["600000.SH", "000001.SZ"],
            "entry_time": ts[[1, 3]],
            "exit_time": ts[[9, 49]],
            "entry_price": [10.5, 7.25],
            "exit_price": [11.0, 7.0],
            "size": [1000.0, -300.0],
            "pnl": [495.1, 70.3],
            "commission": [4.9, 5.0],
            "is_open": [False, True],
        }
    )
    for schema, frame in ((BACKTEST_EQUITY, equity), (BACKTEST_TRADES, trades)):
        assert cold.append(schema, frame.assign(run_id="native")) == len(frame)
        assert cold.append_arrow(schema, frame.assign(run_id="arrow")) == len(frame)
        cold.append_arrow(schema, frame.assign(run_id="other"))
        native, arrow = cold.read_run(schema.name, "native"), cold.read_run(schema.name, "arrow")
        assert len(arrow) == len(frame)
        pd.testing.assert_frame_equal(
            native.drop(columns="run_id"), arrow.drop(columns="run_id"), check_exact=True
        )
        assert cold.append_arrow(schema, frame.iloc[:0].assign(run_id="none")) == 0
    cold.delete_runs(["native", "arrow"])
    for schema in (BACKTEST_EQUITY, BACKTEST_TRADES):
        assert cold.read_run(schema.name, "native").empty and cold.read_run(schema.name, "arrow").empty
        assert len(cold.read_run(schema.name, "other")) == (150 if schema is BACKTEST_EQUITY else 2)
