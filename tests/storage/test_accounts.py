"""Accounts, capital history and strategy allocations in the warm tier, on SQLite and MariaDB."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from quant_platform.storage.warm import (
    ACCOUNT_TRANSITIONS,
    AccountNotActive,
    AccountStatus,
    CapitalExceeded,
    IllegalTransition,
    NotFound,
    WarmStore,
)


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_account_starts_active_with_its_initial_capital_in_the_history(warm: WarmStore) -> None:
    name = uniq("acc")
    acc = warm.create_account(name, broker="ib", initial_cash=1_000_000)
    assert (acc.status, acc.current_capital, acc.initial_cash, acc.allocated_capital) == (
        "active",
        1_000_000,
        1_000_000,
        0,
    )
    assert [(c.previous, c.capital, c.reason) for c in warm.capital_history(name)] == [
        (0, 1_000_000, "initial")
    ]
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            warm.create_account(uniq("acc"), initial_cash=bad)


def test_capital_updates_are_recorded(warm: WarmStore) -> None:
    name = uniq("acc")
    warm.create_account(name, initial_cash=100)
    assert warm.update_capital(name, delta=50, reason="deposit").current_capital == 150
    assert warm.update_capital(name, capital=120, reason="fees").current_capital == 120
    assert warm.update_capital(name, capital=120).current_capital == 120  # unchanged: no entry
    history = warm.capital_history(name)
    assert [(c.previous, c.capital, c.reason) for c in history] == [
        (0, 100, "initial"),
        (100, 150, "deposit"),
        (150, 120, "fees"),
    ]
    assert history[1].delta == 50
    with pytest.raises(ValueError):
        warm.update_capital(name, delta=-1000)  # negative capital
    with pytest.raises(ValueError):
        warm.update_capital(name, capital=1, delta=1)
    with pytest.raises(NotFound):
        warm.update_capital(uniq("missing"), capital=1)


def test_status_moves_only_along_the_allowed_transitions(warm: WarmStore) -> None:
    name = uniq("acc")
    warm.create_account(name)
    assert warm.set_account_status(name, "suspended").status == "suspended"
    assert warm.set_account_status(name, "suspended").status == "suspended"  # no-op
    assert warm.set_account_status(name, "active").status == "active"
    assert warm.set_account_status(name, "inactive").status == "inactive"
    with pytest.raises(IllegalTransition, match="from inactive to suspended"):
        warm.set_account_status(name, "suspended")
    with pytest.raises(IllegalTransition, match="unknown status"):
        warm.set_account_status(name, "closed")
    assert name in {a.name for a in warm.list_accounts(status="inactive")}
    assert name not in {a.name for a in warm.list_accounts(status="active")}
    assert set(ACCOUNT_TRANSITIONS) == set(AccountStatus)


def test_allocations_never_exceed_current_capital(warm: WarmStore) -> None:
    name, s1, s2 = uniq("acc"), uniq("st"), uniq("st")
    warm.create_account(name, initial_cash=1000)
    warm.create_strategy(s1)
    warm.create_strategy(s2)
    a = warm.allocate(name, s1, 600, risk_limit=0.05)
    assert (a.allocated_capital, a.risk_limit) == (600, 0.05)
    with pytest.raises(CapitalExceeded, match="400.00 free"):
        warm.allocate(name, s2, 401)
    warm.allocate(name, s2, 400)
    assert warm.get_account(name).allocated_capital == 1000
    assert warm.get_account(name).free_capital == 0
    warm.allocate(name, s1, 500)  # replacing an allocation counts only the new amount
    assert [(x.strategy, x.allocated_capital) for x in warm.allocations(name)] == sorted(
        [(s1, 500.0), (s2, 400.0)]
    )
    with pytest.raises(CapitalExceeded):
        warm.update_capital(name, capital=899)  # below what is allocated
    assert warm.update_capital(name, capital=900).current_capital == 900
    with pytest.raises(ValueError):
        warm.allocate(name, s1, 10, risk_limit=0)
    with pytest.raises(NotFound):
        warm.allocate(name, uniq("missing"), 10)
    assert warm.deallocate(name, s2) and not warm.deallocate(name, s2)
    warm.set_account_status(name, "suspended")
    with pytest.raises(AccountNotActive):
        warm.allocate(name, s2, 10)


def test_concurrent_allocations_cannot_both_fit(migrated_url: str) -> None:
    setup = WarmStore(migrated_url)
    name = uniq("acc")
    setup.create_account(name, initial_cash=100)
    strategies = [uniq("st") for _ in range(6)]
    for st in strategies:
        setup.create_strategy(st)
    stores = [WarmStore(migrated_url, retry_initial=0.01) for _ in strategies]

    def attempt(i: int) -> bool:
        try:
            stores[i].allocate(name, strategies[i], 40)
            return True
        except CapitalExceeded:
            return False

    with ThreadPoolExecutor(len(strategies)) as pool:
        results = list(pool.map(attempt, range(len(strategies))))
    assert sum(results) == 2
    assert setup.get_account(name).allocated_capital == 80
    for s in [*stores, setup]:
        s.close()


def test_migration_0003_keeps_existing_accounts(fresh_warm_url: str) -> None:
    store = WarmStore(fresh_warm_url)
    store.migrate("0002")
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO accounts (name, broker, currency, initial_cash, meta, created_at) "
                "VALUES ('old', NULL, 'CNY', 5000, '{}', '2024-01-01 00:00:00')"
            )
        )
    store.migrate()
    acc = store.get_account("old")
    assert (acc.status, acc.current_capital) == ("active", 5000)
    assert store.downgrade("0002") == "0002"
    store.close()
