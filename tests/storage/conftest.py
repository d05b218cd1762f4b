"""Fixtures for the warm and hot tiers, against real services.

MariaDB/MySQL: `QP_TEST_MYSQL_URL` (server URL without a database, default root on 127.0.0.1:3306).
Each test session creates its own database, `qp_test_warm_<random>`, and drops it at the end, so
parallel sessions never see each other's rows.
Redis: `QP_TEST_REDIS_URL` (default db 13 on 127.0.0.1:6379). Every test gets its own key prefix,
whose keys are deleted afterwards.
If a service is unreachable its tests are skipped. Set `QP_TEST_REQUIRE_SERVICES=1` to make that a
failure instead (CI).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from quant_platform.storage.hot import MemoryHotStore, RedisHotStore
from quant_platform.storage.warm import WarmStore

MYSQL_SERVER_URL = os.environ.get("QP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("QP_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
REQUIRE_SERVICES = os.environ.get("QP_TEST_REQUIRE_SERVICES") == "1"


def _unreachable(service: str, err: Exception) -> None:
    message = f"{service} not reachable for storage tests: {err}"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def _server_engine() -> sa.Engine:
    return sa.create_engine(MYSQL_SERVER_URL, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})


def _create_database(name: str) -> str:
    # Identifiers cannot be bound parameters; `name` is built from a uuid only.
    with _server_engine().begin() as conn:
        conn.exec_driver_sql(
            f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        )
    return sa.make_url(MYSQL_SERVER_URL).set(database=name).render_as_string(hide_password=False)


def _drop_database(name: str) -> None:
    with _server_engine().begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="session")
def mysql_database_factory() -> Iterator[Callable[[], str]]:
    """Creates fresh, empty MySQL databases (URL returned) and drops them all at session end."""
    created: list[str] = []

    def make() -> str:
        name = f"qp_test_warm_{uuid.uuid4().hex[:10]}"
        try:
            url = _create_database(name)
        except sa.exc.OperationalError as err:
            _unreachable("MySQL/MariaDB", err)
        created.append(name)
        return url

    yield make
    for name in created:
        _drop_database(name)


@pytest.fixture(scope="session")
def mysql_url(mysql_database_factory: Callable[[], str]) -> str:
    """One migrated database shared by the session's warm tests (they use unique names)."""
    url = mysql_database_factory()
    store = WarmStore(url)
    store.migrate()
    store.close()
    return url


@pytest.fixture(params=["sqlite", "mysql"])
def warm_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warm.sqlite'}"
    return request.getfixturevalue("mysql_url")


@pytest.fixture
def warm(warm_url: str) -> Iterator[WarmStore]:
    store = WarmStore(warm_url, retry_initial=0.01)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def migrated_url(warm: WarmStore) -> str:
    """URL of the (migrated) database behind `warm`, for tests that open several stores on it."""
    return warm.url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "mysql"])
def fresh_warm_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty, never-migrated database on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    return request.getfixturevalue("mysql_database_factory")()


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as err:
        _unreachable("Redis", err)
    finally:
        client.close()
    return REDIS_URL


def make_hot_store(kind: str, request: pytest.FixtureRequest, **options) -> MemoryHotStore | RedisHotStore:
    """A hot store of `kind` ("memory" or "redis"); Redis keys are cleaned up after the test."""
    if kind == "memory":
        return MemoryHotStore(**options)
    url = request.getfixturevalue("redis_url")
    store = RedisHotStore(url, prefix=f"qptest:{uuid.uuid4().hex[:12]}:", **options)

    def cleanup() -> None:
        store.delete_prefix()
        store.close()

    request.addfinalizer(cleanup)
    return store


@pytest.fixture
def hot_factory(request: pytest.FixtureRequest) -> Callable[..., MemoryHotStore | RedisHotStore]:
    """`hot_factory("redis", session_ttl=0.3)`: stores with custom options, cleaned up like `hot`."""
    return lambda kind, **options: make_hot_store(kind, request, **options)


@pytest.fixture(params=["memory", "redis"])
def hot_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def hot(hot_kind: str, request: pytest.FixtureRequest) -> MemoryHotStore | RedisHotStore:
    return make_hot_store(hot_kind, request)
