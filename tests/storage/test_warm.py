"""Warm tier against real SQLite files and a real MariaDB/MySQL server; every test runs on both."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm import (
    AlreadyExists,
    IdempotencyConflict,
    IllegalTransition,
    NotFound,
    Status,
    StoreUnavailable,
    WarmStore,
    body_hash,
    is_transient,
)

TABLES = {"accounts", "strategies", "strategy_params", "backtests", "backtest_runs", "grid_requests"}


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def table_names(store: WarmStore) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


# ------------------------------------------------------------------------------------ migrations


def test_migrations_build_the_model_schema_and_roll_back(fresh_warm_url: str) -> None:
    store = WarmStore(fresh_warm_url)
    assert store.schema_version() is None
    head = WarmStore.head_version()
    assert head is not None

    assert store.migrate() == head
    assert store.migrate() == head  # idempotent
    assert table_names(store) >= TABLES

    # The migrated database matches the models exactly (columns, types, indexes, constraints).
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": m.VERSION_TABLE})
        assert compare_metadata(ctx, m.Base.metadata) == []

    assert store.downgrade("base") is None
    assert not TABLES & table_names(store)
    assert store.migrate() == head

    ping = store.ping()
    assert ping.backend == store.backend and ping.up_to_date and ping.latency_ms >= 0
    assert ping.server_version
    store.close()


def test_concurrent_migrations_are_serialized(fresh_warm_url: str) -> None:
    stores = [WarmStore(fresh_warm_url) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        versions = list(pool.map(lambda s: s.migrate(), stores))
    assert versions == [WarmStore.head_version()] * 4
    for s in stores:
        s.close()


# -------------------------------------------------------------------------------------- accounts


def test_accounts(warm: WarmStore) -> None:
    name = uniq("acc")
    acc = warm.create_account(
        name, broker="sim", initial_cash=1e6, meta={"owner": "desk-1", "nan": float("nan")}
    )
    assert acc.name == name and acc.initial_cash == 1e6 and acc.currency == "CNY"
    assert acc.meta == {"owner": "desk-1", "nan": None}  # NaN is not JSON; stored as null on both engines
    assert acc.created_at.tzinfo is dt.UTC
    assert warm.get_account(name) == acc
    with pytest.raises(AlreadyExists):
        warm.create_account(name)
    assert warm.create_account(name, exist_ok=True) == acc
    assert name in {a.name for a in warm.list_accounts()}
    with pytest.raises(NotFound):
        warm.get_account(uniq("missing"))
    # Case-sensitive on both engines (binary collation on MySQL).
    upper = name.upper()
    assert warm.create_account(upper).id != acc.id
    for bad in ("", " padded", "x" * 129):
        with pytest.raises(ValueError):
            warm.create_account(bad)


# ------------------------------------------------------------------------- strategies and params


def test_parameter_versions_have_exactly_one_active(warm: WarmStore) -> None:
    name = uniq("strat")
    st = warm.create_strategy(name, "mean reversion")
    assert st.active_version is None
    with pytest.raises(NotFound):
        warm.get_params(name)

    v1 = warm.add_params(name, {"window": 20, "risk": {"stop": 0.05, "take": 0.1}}, note="first")
    assert (v1.version, v1.active) == (1, True)  # the first version activates itself
    v2 = warm.add_params(name, {"window": 30, "risk": {"stop": 0.05}, "universe": "csi300"})
    assert (v2.version, v2.active) == (2, False)
    assert warm.get_params(name).version == 1

    assert warm.activate(name, 2).active
    assert warm.activate(name, 2).active  # no-op when already active
    versions = warm.list_param_versions(name)
    assert [(v.version, v.active) for v in versions] == [(1, False), (2, True)]
    assert warm.get_strategy(name).active_version == 2
    assert warm.get_params(name).params["universe"] == "csi300"

    v3 = warm.add_params(name, {"window": 40}, activate=True)
    assert [v.version for v in warm.list_param_versions(name) if v.active] == [v3.version]

    with pytest.raises(NotFound):
        warm.activate(name, 99)
    with pytest.raises(NotFound):
        warm.add_params(uniq("nope"), {"a": 1})


def test_diff_params(warm: WarmStore) -> None:
    name = uniq("strat")
    warm.create_strategy(name)
    warm.add_params(name, {"window": 20, "risk": {"stop": 0.05, "take": 0.1}, "legacy": True})
    warm.add_params(name, {"window": 30, "risk": {"stop": 0.05, "trail": 0.02}, "universe": "csi300"})
    diff = warm.diff_params(name, 1, 2)
    assert diff.added == {"risk.trail": 0.02, "universe": "csi300"}
    assert diff.removed == {"risk.take": 0.1, "legacy": True}
    assert diff.changed == {"window": (20, 30)}
    assert not warm.diff_params(name, 2, 2)
    with pytest.raises(NotFound):
        warm.diff_params(name, 1, 7)


def test_database_constraint_rejects_a_second_active_version(warm: WarmStore) -> None:
    """Even code that bypasses the store cannot create two active versions.

    MariaDB reports CHECK violations as OperationalError (4025), SQLite as IntegrityError.
    """
    violation = (sa.exc.IntegrityError, sa.exc.OperationalError)
    name = uniq("strat")
    st = warm.create_strategy(name)
    warm.add_params(name, {"a": 1})
    warm.add_params(name, {"a": 2})
    with pytest.raises(sa.exc.IntegrityError), warm.engine.begin() as conn:  # the unique index
        conn.execute(
            sa.update(m.StrategyParamsRow.__table__)
            .where(m.StrategyParamsRow.strategy_id == st.id, m.StrategyParamsRow.version == 2)
            .values(is_active=True)
        )
    with pytest.raises(violation), warm.engine.begin() as conn:  # the CHECK: FALSE is not allowed either
        conn.execute(
            sa.update(m.StrategyParamsRow.__table__)
            .where(m.StrategyParamsRow.strategy_id == st.id, m.StrategyParamsRow.version == 2)
            .values(is_active=False)
        )


def test_concurrent_activations_and_additions_stay_consistent(migrated_url: str) -> None:
    setup = WarmStore(migrated_url)
    name = uniq("strat")
    setup.create_strategy(name)
    for i in range(5):
        setup.add_params(name, {"i": i})

    stores = [WarmStore(migrated_url, retry_initial=0.01) for _ in range(4)]

    def work(k: int) -> None:
        s = stores[k]
        for j in range(6):
            s.activate(name, (k + j) % 5 + 1)
            if j % 3 == 0:
                s.add_params(name, {"worker": k, "j": j})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))

    versions = setup.list_param_versions(name)
    assert [v.version for v in versions] == list(range(1, 5 + 4 * 2 + 1))  # contiguous, no duplicates
    assert sum(v.active for v in versions) == 1
    for s in [*stores, setup]:
        s.close()


# -------------------------------------------------------------------------------- backtest runs


def _strategy_with_params(warm: WarmStore) -> str:
    name = uniq("strat")
    warm.create_strategy(name)
    warm.add_params(name, {"window": 20})
    return name


def test_run_lifecycle_records_everything(warm: WarmStore) -> None:
    name = _strategy_with_params(warm)
    bt = warm.create_backtest("csi300 2020-2024", name, {"start": "2020-01-01", "capital": 1_000_000})
    assert warm.get_backtest(bt.id) == bt
    assert bt in warm.list_backtests(name)

    run = warm.create_run(name, backtest_id=bt.id, code_version="abc123")
    assert run.status is Status.QUEUED and run.params == {"window": 20} and run.param_version == 1
    run = warm.start_run(run.id, data_version="d" * 64)
    assert run.status is Status.RUNNING and run.started_at is not None and run.data_version == "d" * 64
    run = warm.finish_run(
        run.id, stats={"sharpe": 1.25, "max_dd": -0.1, "undefined": float("inf")}, result_hash="r1"
    )
    assert run.status is Status.SUCCEEDED
    assert run.stats == {"sharpe": 1.25, "max_dd": -0.1, "undefined": None}
    assert run.result_hash == "r1" and run.code_version == "abc123" and run.backtest_id == bt.id
    assert run.created_at <= run.started_at <= run.finished_at
    assert run.finished_at.tzinfo is dt.UTC
    assert warm.get_run(run.id) == run

    explicit = warm.create_run(name, {"window": 5}, run_id="dagster-" + uuid.uuid4().hex)
    assert explicit.params == {"window": 5} and explicit.param_version is None
    failed = warm.fail_run(explicit.id, "ValueError: boom")
    assert failed.status is Status.FAILED and failed.error == "ValueError: boom" and failed.started_at is None

    assert {r.id for r in warm.list_runs(strategy=name)} == {run.id, explicit.id}
    assert [r.id for r in warm.list_runs(strategy=name, status="failed")] == [explicit.id]
    assert [r.id for r in warm.list_runs(backtest_id=bt.id)] == [run.id]

    with pytest.raises(AlreadyExists):
        warm.create_run(name, {"window": 5}, run_id=explicit.id)
    with pytest.raises(ValueError):
        warm.create_run(name, {}, run_id="bad id with spaces")
    with pytest.raises(NotFound):
        warm.create_run(uniq("nope"), {})
    with pytest.raises(NotFound):
        warm.create_run(name, {}, backtest_id=10**9)
    with pytest.raises(NotFound):
        warm.get_run("does-not-exist")


_TO_STATE = {
    Status.RUNNING: lambda w, rid: w.start_run(rid),
    Status.SUCCEEDED: lambda w, rid: w.finish_run(rid, stats={}),
    Status.FAILED: lambda w, rid: w.fail_run(rid, "err"),
    Status.CANCELLED: lambda w, rid: w.cancel_run(rid),
}
_PATH = {
    Status.QUEUED: [],
    Status.RUNNING: [Status.RUNNING],
    Status.SUCCEEDED: [Status.RUNNING, Status.SUCCEEDED],
    Status.FAILED: [Status.RUNNING, Status.FAILED],
    Status.CANCELLED: [Status.CANCELLED],
}
_ALLOWED = {
    (Status.QUEUED, Status.RUNNING),
    (Status.QUEUED, Status.FAILED),
    (Status.QUEUED, Status.CANCELLED),
    (Status.RUNNING, Status.SUCCEEDED),
    (Status.RUNNING, Status.FAILED),
    (Status.RUNNING, Status.CANCELLED),
    (Status.CANCELLED, Status.CANCELLED),  # cancel is idempotent
}


def test_run_transition_matrix(warm: WarmStore) -> None:
    name = _strategy_with_params(warm)
    for start, path in _PATH.items():
        for target, move in _TO_STATE.items():
            rid = warm.create_run(name).id
            for step in path:
                _TO_STATE[step](warm, rid)
            assert warm.get_run(rid).status is start
            if (start, target) in _ALLOWED:
                assert move(warm, rid).status is target
            else:
                with pytest.raises(IllegalTransition, match=f"from {start} to {target}"):
                    move(warm, rid)
                assert warm.get_run(rid).status is start  # nothing changed


def test_cancel_run_is_idempotent(warm: WarmStore) -> None:
    rid = warm.create_run(_strategy_with_params(warm)).id
    first = warm.cancel_run(rid)
    again = warm.cancel_run(rid)
    assert first == again and first.status is Status.CANCELLED


# -------------------------------------------------------------------------------- grid requests


def test_grid_request_idempotency(warm: WarmStore) -> None:
    key = uniq("idem")
    body = {"strategy": "s", "grid": {"window": [10, 20, 30]}, "metric": "sharpe"}
    first = warm.submit_grid_request(body, key)
    assert first.status is Status.QUEUED and first.progress == 0 and first.body == body
    assert first.body_hash == body_hash(body)

    reordered = {"metric": "sharpe", "grid": {"window": [10, 20, 30]}, "strategy": "s"}
    assert warm.submit_grid_request(reordered, key) == first  # same key, same body: the existing request
    with pytest.raises(IdempotencyConflict, match=first.id):
        warm.submit_grid_request({**body, "metric": "sortino"}, key)
    assert warm.find_grid_request(key) == first
    assert warm.find_grid_request(uniq("other")) is None
    with pytest.raises(ValueError):
        warm.submit_grid_request(body, "")


def test_concurrent_submits_with_one_key_create_one_request(migrated_url: str) -> None:
    stores = [WarmStore(migrated_url, retry_initial=0.01) for _ in range(4)]
    key, body = uniq("idem"), {"grid": {"a": [1, 2]}}
    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(lambda s: s.submit_grid_request(body, key).id, stores * 3))
    assert len(ids) == 1
    for s in stores:
        s.close()


def test_grid_request_lifecycle(warm: WarmStore) -> None:
    warm.claim_queued_grid_requests(10_000)  # drain leftovers of other tests sharing this database
    reqs = [warm.submit_grid_request({"n": i}, uniq("idem")) for i in range(3)]

    claimed = warm.claim_queued_grid_requests(2)
    assert [r.id for r in claimed] == [r.id for r in reqs[:2]]  # oldest first
    assert all(r.status is Status.RUNNING and r.started_at is not None for r in claimed)
    assert [r.id for r in warm.claim_queued_grid_requests(5)] == [reqs[2].id]
    assert warm.claim_queued_grid_requests(5) == []

    a, b, c = (r.id for r in reqs)
    upd = warm.update_grid_progress(a, 42.5, best_params={"window": 20})
    assert (upd.progress, upd.best_params) == (42.5, {"window": 20})
    for bad in (-1, 100.5, float("nan")):
        with pytest.raises(ValueError):
            warm.update_grid_progress(a, bad)
    done = warm.finish_grid_request(a, best_params={"window": 30})
    assert (done.status, done.progress, done.best_params) == (Status.SUCCEEDED, 100.0, {"window": 30})
    assert done.finished_at is not None
    with pytest.raises(IllegalTransition):
        warm.update_grid_progress(a, 50)
    with pytest.raises(IllegalTransition):
        warm.cancel_grid_request(a)

    failed = warm.fail_grid_request(b, "worker died")
    assert (failed.status, failed.error) == (Status.FAILED, "worker died")

    cancelled = warm.cancel_grid_request(c)
    assert cancelled.status is Status.CANCELLED
    assert warm.cancel_grid_request(c) == cancelled  # idempotent
    # A worker reporting progress on a cancelled request learns about it from the result.
    assert warm.update_grid_progress(c, 60).status is Status.CANCELLED
    assert warm.get_grid_request(c).progress == 0
    with pytest.raises(IllegalTransition):
        warm.finish_grid_request(c, best_params={})

    queued = warm.submit_grid_request({"n": 99}, uniq("idem"))
    with pytest.raises(IllegalTransition, match="only be reported while running"):
        warm.update_grid_progress(queued.id, 10)
    assert warm.cancel_grid_request(queued.id).status is Status.CANCELLED
    assert queued.id in {r.id for r in warm.list_grid_requests(status="cancelled")}

    run = warm.create_run(_strategy_with_params(warm), {"x": 1}, grid_request_id=a)
    assert [r.id for r in warm.list_runs(grid_request_id=a)] == [run.id]


def test_concurrent_claimers_never_share_a_request(migrated_url: str) -> None:
    setup = WarmStore(migrated_url)
    setup.claim_queued_grid_requests(10_000)
    submitted = {setup.submit_grid_request({"n": i}, uniq("idem")).id for i in range(24)}
    stores = [WarmStore(migrated_url, retry_initial=0.01) for _ in range(4)]

    def claim_all(s: WarmStore) -> list[str]:
        got: list[str] = []
        while batch := s.claim_queued_grid_requests(3):
            got += [r.id for r in batch]
        return got

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(claim_all, stores))
    flat = [rid for got in results for rid in got]
    assert len(flat) == len(set(flat)) and set(flat) == submitted
    for s in [*stores, setup]:
        s.close()


# ----------------------------------------------------------------------------- hostile values


EVIL = [
    "x'); DROP TABLE strategies; --",
    'Robert"; DELETE FROM backtest_runs; #',
    "' OR '1'='1",
    "back\\slash \\' \\\" %s %(name)s ? :param",
    "unicode 策略 🚀 \u00e9",
]


@pytest.mark.parametrize("evil", EVIL)
def test_injection_attempts_are_stored_as_plain_values(warm: WarmStore, evil: str) -> None:
    name = f"{evil} {uuid.uuid4().hex[:6]}"
    warm.create_strategy(name, description=evil)
    warm.add_params(name, {evil: evil, "nested": {evil: [evil]}}, note=evil)
    assert warm.get_strategy(name).description == evil
    assert warm.get_params(name).params == {evil: evil, "nested": {evil: [evil]}}
    run = warm.create_run(name, {"q": evil})
    warm.fail_run(run.id, evil)
    assert warm.get_run(run.id).error == evil
    key = f"{evil}-{uuid.uuid4().hex[:6]}"
    req = warm.submit_grid_request({"q": evil}, key)
    assert warm.find_grid_request(key) == req
    assert warm.find_grid_request("' OR '1'='1") is None
    acc = warm.create_account(name, meta={"note": evil})
    assert warm.get_account(name) == acc
    assert table_names(warm) >= TABLES
    assert [s.name for s in warm.list_strategies() if s.name == name] == [name]


# ------------------------------------------------------------------------ failures and retries


def test_unreachable_database_raises_store_unavailable_with_masked_password() -> None:
    store = WarmStore("mysql+pymysql://root:s3cret@127.0.0.1:1/qp", attempts=2, retry_initial=0.01)
    t0 = time.perf_counter()
    with pytest.raises(StoreUnavailable) as info:
        store.get_account("x")
    assert time.perf_counter() - t0 < 5
    message = str(info.value)
    assert message.startswith("warm store mysql+pymysql://root:***@127.0.0.1:1/qp: ")
    assert "s3cret" not in message
    assert is_transient(info.value.__cause__)


def test_missing_schema_says_so(tmp_path) -> None:
    store = WarmStore(f"sqlite:///{tmp_path / 'empty.sqlite'}", attempts=1)
    with pytest.raises(StoreUnavailable, match=r"run WarmStore.migrate\(\)"):
        store.list_strategies()


def test_unopenable_sqlite_file_raises_store_unavailable(tmp_path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    store = WarmStore(f"sqlite:///{tmp_path / 'dir.sqlite'}", attempts=1)
    with pytest.raises(StoreUnavailable, match="warm store sqlite:///.*dir.sqlite"):
        store.migrate()


def _hold_lock(store: WarmStore, url: str, request_id: str, seconds: float, ready: threading.Event) -> None:
    """Hold a write lock from a connection outside the store, like a slow concurrent writer."""
    if store.backend == "sqlite":
        conn = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT id FROM grid_requests WHERE id = :id FOR UPDATE"), {"id": request_id})
        ready.set()
        time.sleep(seconds)
        conn.rollback()
    engine.dispose()


def test_lock_timeouts_are_retried_until_the_lock_is_released(migrated_url: str, caplog) -> None:
    store = WarmStore(migrated_url, lock_timeout=0.3, attempts=6, retry_initial=0.2, retry_max=1.0)
    req = store.submit_grid_request({"lock": True}, uniq("idem"))
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(store, migrated_url, req.id, 1.5, ready))
    holder.start()
    assert ready.wait(10)
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="quant_platform.storage.warm"):
        assert store.cancel_grid_request(req.id).status is Status.CANCELLED
    elapsed = time.perf_counter() - t0
    holder.join()
    assert elapsed > 0.5  # it really waited for the other writer
    assert "transient error, retry" in caplog.text
    store.close()


def test_rejects_unsupported_urls() -> None:
    with pytest.raises(ValueError, match="sqlite:/// and mysql"):
        WarmStore("postgresql://localhost/qp")
    assert WarmStore("mysql://root@127.0.0.1/qp").url.drivername == "mysql+pymysql"
