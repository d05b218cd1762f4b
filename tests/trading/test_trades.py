"""Trade records: idempotent recording, reads, statistics, summaries and hot-tier positions."""

from __future__ import annotations

import pandas as pd
import pytest

from quant_platform.client import Client
from quant_platform.core.limits import BoundsError
from quant_platform.storage.warm import AccountNotActive, NotFound

from .conftest import trade


def batch(a: str, b: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            trade(a, "t1", "600000.SH", "buy", 100, 10.0, "2024-01-02 02:00"),
            trade(a, "t2", "600000.SH", "buy", 100, 11.0, "2024-01-03 02:00"),
            trade(a, "t3", "600000.SH", "sell", 50, 12.5, "2024-02-05 02:00", realized_pnl=100.0),
            trade(a, "t4", "000001.SZ", "buy", 200, 5.0, "2024-02-06 02:00", strategy="s2"),
            trade(b, "t1", "600000.SH", "buy", 10, 9.0, "2024-01-02 03:00"),  # same id, other account
        ]
    )


def test_record_is_idempotent_and_reads_back(client: Client, accounts) -> None:
    a, b = accounts
    first = client.record_trades(batch(a, b))
    assert (first.received, first.recorded, first.duplicates) == (5, 5, 0)
    again = client.record_trades(batch(a, b))  # a replayed batch
    assert (again.recorded, again.duplicates) == (0, 5)
    mixed = pd.concat(
        [
            batch(a, b).iloc[:2],
            pd.DataFrame([trade(a, "t5", "000001.SZ", "sell", 200, 6.0, "2024-03-01 02:00")]),
        ]
    )
    assert client.record_trades(mixed).recorded == 1

    got = client.trades(a, "2024-01-01", "2024-12-31")
    assert list(got["trade_id"]) == ["t1", "t2", "t3", "t4", "t5"]
    assert got["ts"].dt.tz is not None and str(got["trade_date"].iloc[0].date()) == "2024-01-02"
    assert list(client.trades(a, "2024-01-01", "2024-01-31")["trade_id"]) == ["t1", "t2"]
    assert list(client.trades(a, "2024-01-01", "2024-12-31", symbols=["000001.SZ"])["trade_id"]) == [
        "t4",
        "t5",
    ]
    assert len(client.trades(b, "2024-01-01", "2024-12-31")) == 1


def test_stats_by_account_symbol_strategy_and_day(client: Client, accounts) -> None:
    a, b = accounts
    client.record_trades(batch(a, b))
    by_acc = client.trade_stats([a, b], "2024-01-01", "2024-12-31").set_index("account")
    assert by_acc.loc[a, "trades"] == 4 and by_acc.loc[b, "trades"] == 1
    assert by_acc.loc[a, "volume"] == 450
    assert by_acc.loc[a, "turnover"] == pytest.approx(1000 + 1100 + 625 + 1000)
    assert by_acc.loc[a, "commissions"] == 4 and by_acc.loc[a, "realized_pnl"] == 100
    by_sym = client.trade_stats([a, b], "2024-01-01", "2024-12-31", by="symbol").set_index("symbol")
    assert by_sym.loc["600000.SH", "trades"] == 4
    by_strat = client.trade_stats(a, "2024-01-01", "2024-12-31", by="strategy").set_index("strategy")
    assert dict(by_strat["trades"]) == {"s1": 3, "s2": 1}
    by_day = client.trade_stats([a], "2024-01-01", "2024-01-31", by="day")
    assert [str(d.date()) for d in by_day["day"]] == ["2024-01-02", "2024-01-03"]
    with pytest.raises(ValueError, match="by must be"):
        client.trade_stats(a, "2024-01-01", "2024-12-31", by="week")


def test_summary_across_accounts(client: Client, accounts) -> None:
    a, b = accounts
    client.record_trades(batch(a, b))
    client.warm.update_capital(a, delta=-1000, reason="fees")
    summary = client.account_summary([a, b]).set_index("account")
    assert summary.loc[a, "current_capital"] == 999_000 and summary.loc[a, "trades"] == 4
    assert summary.loc[a, "open_positions"] == 2 and summary.loc[b, "open_positions"] == 1
    assert summary.loc[a, "realized_pnl"] == 100 and summary.loc[b, "status"] == "active"


def test_positions_follow_the_trades(client: Client, accounts) -> None:
    a, b = accounts
    client.record_trades(batch(a, b))
    pos = client.positions(a)
    p = pos["600000.SH"]
    assert (p.entry_price, p.max_price, p.min_price, p.held_days) == (10.0, 12.5, 10.0, 0)
    assert client.trading.roll_day([a], "2024-03-01") == {a: 2}
    assert client.trading.roll_day([a], "2024-03-01") == {a: 0}  # idempotent per day
    # Selling the rest closes it; buying again re-opens at the new price.
    out = client.record_trades(
        pd.DataFrame(
            [
                trade(a, "t10", "600000.SH", "sell", 150, 9.5, "2024-03-04 02:00"),
                trade(a, "t11", "600000.SH", "buy", 10, 8.0, "2024-03-05 02:00"),
                trade(a, "t12", "600000.SH", "buy", 10, 8.4, "2024-03-05 03:00"),
            ]
        )
    )
    p = client.positions(a)["600000.SH"]
    assert (p.entry_price, p.max_price, p.min_price, p.held_days) == (8.0, 8.4, 8.0, 0)
    client.record_trades(pd.DataFrame([trade(a, "t13", "600000.SH", "sell", 20, 9.0, "2024-03-06 02:00")]))
    assert "600000.SH" not in client.positions(a)
    assert out.recorded == 3


def test_input_is_validated_and_bounded(client: Client, accounts) -> None:
    a, _ = accounts
    good = trade(a, "x1", "600000.SH", "buy", 1, 1.0, "2024-01-02")
    for change, message in (
        ({"side": "hold"}, "side"),
        ({"quantity": -1}, "quantity"),
        ({"price": float("nan")}, "price"),
        ({"trade_id": "bad id"}, "trade_id"),
        ({"symbol": "600000.SH;DROP"}, "symbol"),
        ({"commission": -0.1}, "commission"),
        ({"ts": "not a time"}, "ts"),
    ):
        with pytest.raises(ValueError, match=message):
            client.record_trades(pd.DataFrame([{**good, **change}]))
    with pytest.raises(ValueError, match="missing columns"):
        client.record_trades(pd.DataFrame([{"account": a}]))
    with pytest.raises(NotFound):
        client.record_trades(pd.DataFrame([{**good, "account": "nobody"}]))
    client.warm.set_account_status(a, "suspended")
    with pytest.raises(AccountNotActive):
        client.record_trades(pd.DataFrame([good]))
    with pytest.raises(BoundsError):
        client.trades(a, "2000-01-01", "2024-01-01")
    with pytest.raises(BoundsError):
        client.trade_stats([f"a{i}" for i in range(101)], "2024-01-01", "2024-01-02")
    with pytest.raises(BoundsError):
        client.trades(a, "2024-02-01", "2024-01-01")


def test_positions_in_redis(chdb_dsn: str, qp_home, redis_db: str) -> None:
    with Client(clickhouse_dsn=chdb_dsn, redis_url=redis_db) as qp:
        qp.warm.create_account("redis-acc", initial_cash=10)
        qp.record_trades(pd.DataFrame([trade("redis-acc", "r1", "600000.SH", "buy", 1, 10.0, "2024-01-02")]))
        qp.record_trades(pd.DataFrame([trade("redis-acc", "r2", "600000.SH", "buy", 1, 12.0, "2024-01-03")]))
        p = qp.positions("redis-acc")["600000.SH"]
        assert (p.entry_price, p.max_price, p.min_price) == (10.0, 12.0, 10.0)


def test_the_hot_position_keeps_the_units_held(client: Client, accounts) -> None:
    a, b = accounts
    client.record_trades(batch(a, b))
    assert client.positions(a)["600000.SH"].quantity == 150
    assert client.positions(a)["000001.SZ"].quantity == 200
    # A position whose units are unknown (as after `migrate import`): the cold history decides.
    client.trading.hot.open_position(a, "600000.SH", 10.0)
    assert client.positions(a)["600000.SH"].quantity is None
    client.record_trades(pd.DataFrame([trade(a, "t20", "600000.SH", "sell", 100, 11.0, "2024-03-04 02:00")]))
    assert client.positions(a)["600000.SH"].quantity == 50
    client.record_trades(pd.DataFrame([trade(a, "t21", "600000.SH", "sell", 50, 11.0, "2024-03-05 02:00")]))
    assert "600000.SH" not in client.positions(a)
    # A sell of a position the hot tier lost: the history says it is still held, so it is tracked again.
    client.trading.hot.close_position(a, "000001.SZ")
    client.record_trades(pd.DataFrame([trade(a, "t22", "000001.SZ", "sell", 50, 6.0, "2024-03-05 02:00")]))
    p = client.positions(a)["000001.SZ"]
    assert (p.quantity, p.entry_price, p.max_price, p.min_price) == (150, 6.0, 6.0, 6.0)


def test_trades_are_recorded_through_a_hot_tier_outage(chdb_dsn: str, qp_home) -> None:
    with Client(clickhouse_dsn=chdb_dsn, redis_url="redis://127.0.0.1:1/0") as qp:
        qp.warm.create_account("down-acc", initial_cash=10)
        first = qp.record_trades(
            pd.DataFrame([trade("down-acc", "d1", "600000.SH", "buy", 5, 10.0, "2024-01-02")])
        )
        second = qp.record_trades(
            pd.DataFrame([trade("down-acc", "d2", "600000.SH", "sell", 5, 11.0, "2024-01-03")])
        )
        assert (first.recorded, second.recorded) == (1, 1)
        assert second.positions_closed == 0  # the cache writes are skipped while it is down
        assert qp.positions("down-acc") == {}
        assert len(qp.trades("down-acc", "2024-01-01", "2024-01-31")) == 2


def test_positions_in_redis_keep_their_quantity(chdb_dsn: str, qp_home, redis_db: str) -> None:
    with Client(clickhouse_dsn=chdb_dsn, redis_url=redis_db) as qp:
        qp.warm.create_account("redis-qty", initial_cash=10)
        qp.record_trades(pd.DataFrame([trade("redis-qty", "q1", "600000.SH", "buy", 3, 10.0, "2024-01-02")]))
        qp.record_trades(pd.DataFrame([trade("redis-qty", "q2", "600000.SH", "sell", 1, 12.0, "2024-01-03")]))
        assert qp.positions("redis-qty")["600000.SH"].quantity == 2
        assert qp.trading.hot.set_position_quantities("redis-qty", {"600000.SH": 7, "NOPE.SH": 1}) == 1
        assert qp.trading.hot.get_position("redis-qty", "600000.SH").quantity == 7
        qp.record_trades(pd.DataFrame([trade("redis-qty", "q3", "600000.SH", "sell", 7, 12.0, "2024-01-04")]))
        assert qp.positions("redis-qty") == {}
