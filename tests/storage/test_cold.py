"""Cold tier on the embedded ClickHouse (chdb): partition replacement, reads, the one-process lock."""

import datetime as dt
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from quant_platform.core.schema import KLINES_DAILY, RAW_QUOTES
from quant_platform.sources.synthetic import SyntheticMarket
from quant_platform.storage.cold import ColdStore, ColdStoreLocked, redact

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
