"""Shared fixtures: an isolated QP_HOME per test, and the real services on loopback.

Services: MariaDB/MySQL (`QP_TEST_MYSQL_URL`, server URL without a database, default root on
127.0.0.1:3306), Redis (`QP_TEST_REDIS_URL`, default db 13 on 127.0.0.1:6379) and PostgreSQL (the
prod Dagster instance). A test that uses one of the service fixtures below is marked `services`
(`pytest -m "not services"` runs the rest). An unreachable service skips its tests, unless
`QP_TEST_REQUIRE_SERVICES=1` (CI), where it fails them.

Each test session creates its own MySQL databases (`qp_test_<random>`) and drops them at the end,
and Redis tests use their own key prefix or database, so parallel sessions never see each other.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

MYSQL_SERVER_URL = os.environ.get("QP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("QP_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
REQUIRE_SERVICES = os.environ.get("QP_TEST_REQUIRE_SERVICES") == "1"
# Fixtures that talk to a service: tests using them are marked `services`.
SERVICE_FIXTURES = frozenset(
    {"mysql_database_factory", "mysql_url", "redis_url", "redis_db", "prod_instance"}
)


# Parametrized fixtures (`warm_url`, `hot_kind`, ...) reach a service through these parameter values.
SERVICE_PARAMS = frozenset({"mysql", "redis"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        uses_param = any(isinstance(v, str) and v in SERVICE_PARAMS for v in params.values())
        if uses_param or SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def unreachable(service: str, err: Exception) -> None:
    """Skip (or, with QP_TEST_REQUIRE_SERVICES=1, fail) a test whose service is down."""
    message = f"{service} not reachable: {err}"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def qp_home(tmp_path, monkeypatch):
    """An isolated QP_HOME with the local deployment; chdb, SQLite and Dagster storage live under it."""
    home = tmp_path / "qp"
    home.mkdir()
    monkeypatch.setenv("QP_HOME", str(home))
    monkeypatch.setenv("QP_DEPLOYMENT", "local")
    monkeypatch.delenv("QP_CLICKHOUSE_DSN", raising=False)
    monkeypatch.delenv("QP_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("QP_REDIS_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    (home / "dagster").mkdir()
    return home


@pytest.fixture
def chdb_dsn(qp_home) -> str:
    return f"chdb://{qp_home / 'chdb'}"


# ------------------------------------------------------------------------------------ MySQL / MariaDB


def _server_engine():
    import sqlalchemy as sa

    return sa.create_engine(MYSQL_SERVER_URL, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})


@pytest.fixture(scope="session")
def mysql_database_factory() -> Iterator[Callable[[], str]]:
    """Creates fresh, empty MySQL databases (URL returned) and drops them all at session end."""
    import sqlalchemy as sa

    created: list[str] = []

    def make() -> str:
        name = f"qp_test_{uuid.uuid4().hex[:10]}"  # identifiers cannot be bound: built from a uuid only
        try:
            with _server_engine().begin() as conn:
                conn.exec_driver_sql(
                    f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
        except sa.exc.OperationalError as err:
            unreachable("MySQL/MariaDB", err)
        created.append(name)
        return sa.make_url(MYSQL_SERVER_URL).set(database=name).render_as_string(hide_password=False)

    yield make
    for name in created:
        with _server_engine().begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="session")
def mysql_url(mysql_database_factory: Callable[[], str]) -> str:
    """One migrated database shared by the session's tests (they use unique names)."""
    from quant_platform.storage.warm import WarmStore

    url = mysql_database_factory()
    store = WarmStore(url)
    store.migrate()
    store.close()
    return url


# ---------------------------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis database; tests keep to their own key prefixes in it."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as err:
        unreachable("Redis", err)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """A whole Redis database (14) emptied before and after the test, for code that owns its keys."""
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/14"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()
