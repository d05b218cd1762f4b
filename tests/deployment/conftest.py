"""Dagster instances built from the repository's instance files, each in its own DAGSTER_HOME."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _instance_from(config: Path, home: Path, monkeypatch):
    home.mkdir()
    shutil.copy(config, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.get()


@pytest.fixture
def prod_instance(tmp_path, monkeypatch):
    """dagster.prod.yaml on the real PostgreSQL (database qp_dagster_test)."""
    for key, value in {
        "QP_DAGSTER_PG_HOST": "127.0.0.1",
        "QP_DAGSTER_PG_PORT": "5432",
        "QP_DAGSTER_PG_USER": "postgres",
        "QP_DAGSTER_PG_PASSWORD": "",
        "QP_DAGSTER_PG_DB": "qp_dagster_test",
    }.items():
        monkeypatch.setenv(key, value)
    with _instance_from(ROOT / "dagster.prod.yaml", tmp_path / "dagster_home", monkeypatch) as instance:
        yield instance


@pytest.fixture
def local_instance(tmp_path, monkeypatch):
    """dagster.yaml, the local deployment's instance (SQLite under DAGSTER_HOME)."""
    with _instance_from(ROOT / "dagster.yaml", tmp_path / "dagster_home", monkeypatch) as instance:
        yield instance
