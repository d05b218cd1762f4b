"""A Client over embedded ClickHouse (chdb), the warm tier on SQLite or MariaDB and the hot tier in
memory or Redis, with two accounts created."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pandas as pd
import pytest

from quant_platform.client import Client


@pytest.fixture(params=["sqlite", "mysql"])
def warm_url(request: pytest.FixtureRequest, qp_home) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{qp_home / 'warm.sqlite'}"
    return request.getfixturevalue("mysql_url")


@pytest.fixture
def client(chdb_dsn: str, warm_url: str) -> Iterator[Client]:
    with Client(clickhouse_dsn=chdb_dsn, warehouse_url=warm_url, redis_url="memory://") as qp:
        yield qp


@pytest.fixture
def accounts(client: Client) -> tuple[str, str]:
    names = (f"acc-{uuid.uuid4().hex[:8]}", f"acc-{uuid.uuid4().hex[:8]}")
    for n in names:
        client.warm.create_account(n, broker="sim", initial_cash=1_000_000)
    return names


def trade(account: str, tid: str, symbol: str, side: str, qty: float, price: float, ts: str, **extra) -> dict:
    return {
        "trade_id": tid,
        "account": account,
        "symbol": symbol,
        "side": side,
        "quantity": qty,
        "price": price,
        "ts": pd.Timestamp(ts, tz="UTC"),
        "strategy": extra.get("strategy", "s1"),
        "commission": extra.get("commission", 1.0),
        "realized_pnl": extra.get("realized_pnl", 0.0),
    }
