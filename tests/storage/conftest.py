"""Fixtures for the warm and hot tiers, against real services.

The services themselves (`mysql_url`, `mysql_database_factory`, `redis_url`) come from
tests/conftest.py. Every Redis test gets its own key prefix, whose keys are deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from quant_platform.storage.hot import MemoryHotStore, RedisHotStore
from quant_platform.storage.warm import WarmStore


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
