"""Shared fixtures: every test that writes data gets its own QP_HOME (embedded stores in a temp dir)."""

from __future__ import annotations

import pytest


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
