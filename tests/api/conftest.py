"""Fixtures of the HTTP API tests: the app under uvicorn on 127.0.0.1 (a free port, in a thread), users
of every role with API keys, and an httpx client per user.

`api` starts a server over the stores of the current environment (the isolated `qp_home`, SQLite);
`api_mysql` over MariaDB + Redis (`mysql_url`, `redis_db` from tests/conftest.py); `api_redis` over
SQLite + the test Redis, so run events reach the API. A test can stop and
start the server again (`server.restart()`), over the same stores.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn

from quant_platform.api.app import create_app
from quant_platform.core.identity import ROLES
from quant_platform.settings import Settings
from quant_platform.storage.warm import WarmStore
from tests.grid.conftest import klines_template  # noqa: F401 - materialized klines, shared fixture

PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving `create_app(settings)` in a daemon thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Server:
        app = create_app(self.settings)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=20)
            self._server = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Api:
    server: Server
    warm: WarmStore
    keys: dict[str, str] = field(default_factory=dict)  # username -> API key

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, username: str | None = None, token: str | None = None) -> httpx.Client:
        secret = token or (self.keys[username] if username else None)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def add_user(self, username: str, role: str) -> str:
        self.warm.create_user(username, role, email=f"{username}@example.com", password=PASSWORD)
        _, key = self.warm.create_api_key(username, "tests")
        self.keys[username] = key
        return key


def start_api(settings: Settings) -> Iterator[Api]:
    warm = WarmStore(settings.stores.warehouse_url)
    warm.migrate()
    server = Server(settings).start()
    api = Api(server, warm)
    for role in ROLES:  # one user per role, named after it; `other` is a second trader
        api.add_user(role, role)
    api.add_user("other", "trader")
    try:
        yield api
    finally:
        server.stop()
        warm.close()


@pytest.fixture
def api_settings(qp_home, monkeypatch) -> Settings:
    monkeypatch.setenv("QP_API_RATE_LIMIT", "1000/minute")
    return Settings.from_env()


@pytest.fixture
def api(api_settings) -> Iterator[Api]:
    yield from start_api(api_settings)


@pytest.fixture
def api_mysql(qp_home, monkeypatch, mysql_database_factory, redis_db) -> Iterator[Api]:
    url = mysql_database_factory()
    monkeypatch.setenv("QP_WAREHOUSE_URL", url)
    monkeypatch.setenv("QP_REDIS_URL", redis_db)
    monkeypatch.setenv("QP_API_RATE_LIMIT", "1000/minute")
    yield from start_api(Settings.from_env())


@pytest.fixture
def api_redis(qp_home, monkeypatch, redis_url) -> Iterator[Api]:
    """SQLite warm tier, Redis hot tier (the test database): run events cross processes."""
    monkeypatch.setenv("QP_REDIS_URL", redis_url)
    monkeypatch.setenv("QP_API_RATE_LIMIT", "1000/minute")
    yield from start_api(Settings.from_env())


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory) -> Iterator[Api]:
    """One server for a module's tests that only read or add their own rows (faster than `api`)."""
    home = tmp_path_factory.mktemp("qp_shared")
    (home / "dagster").mkdir()
    env = {
        "QP_HOME": str(home),
        "QP_DEPLOYMENT": "local",
        "DAGSTER_HOME": str(home / "dagster"),
        "QP_API_RATE_LIMIT": "100000/minute",
    }
    yield from start_api(Settings.from_env(env))
