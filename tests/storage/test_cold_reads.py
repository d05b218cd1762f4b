"""The cold tier's read paths that callers run in loops: klines of a few symbols, an account's trades.

Both must return the same rows, order and dtypes whatever path serves them, and a store created
with the trades table's earlier sort key must keep working after it is moved to the current one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from quant_platform.core.calendar import get_calendar
from quant_platform.core.schema import KLINES_DAILY, TRADES
from quant_platform.storage.cold import ColdStore

OLD_TRADES_KEY = ("account", "symbol", "ts", "trade_id")


@pytest.fixture
def cold(chdb_dsn):
    with ColdStore(chdb_dsn) as store:
        store.ensure_schema([KLINES_DAILY])
        yield store


def trade_rows(n: int) -> pd.DataFrame:
    """`n` trades of two accounts over two months, in no particular order, with equal timestamps."""
    rng = np.random.default_rng(5)
    ts = pd.Timestamp("2024-09-02 01:30", tz="UTC") + pd.to_timedelta(rng.integers(0, 40, n), unit="D")
    ts = ts + pd.to_timedelta(rng.integers(0, 4, n) * 3600, unit="s")  # several trades share an instant
    frame = pd.DataFrame(
        {
            "account": rng.choice(["a1", "a2"], n),
            "symbol": rng.choice(["600000.SH", "000001.SZ", "300750.SZ"], n),
            "ts": ts.astype("datetime64[ms, UTC]"),
            "trade_id": [f"T{i:05d}" for i in rng.permutation(n)],
            "trade_date": ts.tz_convert("Asia/Shanghai").tz_localize(None).normalize(),
            "strategy": rng.choice(["", "momo"], n),
            "side": rng.choice(["buy", "sell"], n),
            "quantity": rng.integers(1, 9, n) * 100.0,
            "price": np.round(rng.uniform(5, 50, n), 2),
            "commission": np.round(rng.uniform(0, 5, n), 2),
            "realized_pnl": np.round(rng.normal(0, 100, n), 2),
            "recorded_at": pd.Timestamp("2024-11-01", tz="UTC"),
        }
    )
    return TRADES.conform(frame)


def expected_trades(frame: pd.DataFrame, account: str) -> pd.DataFrame:
    mine = frame[frame["account"] == account]
    return mine.sort_values(["account", "ts", "trade_id"]).reset_index(drop=True)


def test_trades_come_back_by_account_time_and_id_with_schema_dtypes(cold) -> None:
    frame = trade_rows(400)
    cold.ensure_schema([TRADES])
    cold.insert_trades(frame)
    got = cold.read_trades(["a1"], pd.Timestamp("2024-09-01").date(), None)
    assert cold.sorting_key("trades") == ", ".join(TRADES.order_by)
    pd.testing.assert_frame_equal(got, expected_trades(frame, "a1"))
    assert dict(got.dtypes.astype(str)) == dict(TRADES.empty().dtypes.astype(str))


def test_a_store_with_the_old_trades_key_is_moved_and_reads_the_same(cold) -> None:
    old = dataclasses.replace(TRADES, order_by=OLD_TRADES_KEY)
    cold.client.command(cold.create_table_sql(old))
    frame = trade_rows(300)
    cold.insert_trades(frame)
    before = cold.read_trades(["a2"], None, None)
    assert cold.sorting_key("trades") == ", ".join(OLD_TRADES_KEY)

    cold.ensure_schema([TRADES])  # what every opener (Client, assets, CLI) runs

    assert cold.sorting_key("trades") == ", ".join(TRADES.order_by)
    assert "trades__rekey" not in cold.row_counts()
    after = cold.read_trades(["a2"], None, None)
    pd.testing.assert_frame_equal(after, before)
    pd.testing.assert_frame_equal(after, expected_trades(frame, "a2"))
    assert cold.rekey(TRADES) is False  # once only
    stats = cold.trade_stats(["a1", "a2"], dt.date(2024, 9, 1), dt.date(2024, 12, 31))
    assert stats["trades"].sum() == len(frame)


def klines_frame(symbols: list[str], days: list) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    n = len(symbols) * len(days)
    close = np.round(rng.uniform(5, 50, n), 2)
    return KLINES_DAILY.conform(
        pd.DataFrame(
            {
                "symbol": np.tile(symbols, len(days)),
                "trade_date": np.repeat(pd.DatetimeIndex(days).values.astype("datetime64[s]"), len(symbols)),
                "open": close,
                "high": close * 1.01,
                "low": close * 0.99,
                "close": close,
                "prev_close": close,
                "volume": rng.integers(100, 10_000, n),
                "amount": close * 100,
                "change_rate": 0.0,
                "limit_up": close * 1.1,
                "limit_down": close * 0.9,
            }
        )
    )


def test_point_reads_of_klines_equal_the_wide_read_rows_order_and_dtypes(cold) -> None:
    days = get_calendar("XSHG").sessions("2024-08-01", "2024-10-31")
    symbols = ["000001.SZ", "300750.SZ", "600000.SH"]
    frame = klines_frame(symbols, days)
    cold.replace_partitions(KLINES_DAILY, frame, days)
    wide = cold.read_table("klines_daily", days[5], days[40])  # every symbol: the parallel plan
    assert wide["symbol"].nunique() == 3
    for symbol in symbols:
        point = cold.read_table("klines_daily", days[5], days[40], symbols=[symbol])
        expected = wide[wide["symbol"] == symbol].reset_index(drop=True)
        pd.testing.assert_frame_equal(point, expected)
        assert dict(point.dtypes.astype(str)) == dict(KLINES_DAILY.empty().dtypes.astype(str))
    both = cold.read_table("klines_daily", days[5], days[40], symbols=symbols[:2])
    sorted_input = frame.sort_values(["symbol", "trade_date"]).reset_index(drop=True)
    in_window = sorted_input["trade_date"].between(pd.Timestamp(days[5]), pd.Timestamp(days[40]))
    pd.testing.assert_frame_equal(
        both, sorted_input[in_window & sorted_input["symbol"].isin(symbols[:2])].reset_index(drop=True)
    )
    few = cold.read_table(
        "klines_daily", days[5], days[6], symbols=["600000.SH"], columns=["symbol", "trade_date", "close"]
    )
    assert (
        list(few.columns) == ["symbol", "trade_date", "close"]
        and str(few["trade_date"].dtype) == "datetime64[s]"
    )


def test_query_results_carry_the_tier_types(cold) -> None:
    df = cold.query_df(
        "SELECT toDate('2024-10-08') AS d, toDateTime64('2024-10-08 01:30:00.250', 3, 'UTC') AS t, "
        "toLowCardinality('600000.SH') AS s, toFloat64(1.5) AS x"
    )
    assert [str(t) for t in df.dtypes] == ["datetime64[s]", "datetime64[ms, UTC]", "str", "float64"]
    assert df["d"].iloc[0] == pd.Timestamp("2024-10-08")
    assert df["t"].iloc[0] == pd.Timestamp("2024-10-08 01:30:00.250", tz="UTC")
