"""The prod Dagster instance (dagster.prod.yaml) on the real PostgreSQL records materializations."""

import shutil
import uuid
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
PG = "postgresql://postgres@127.0.0.1:5432/qp_dagster_test"


@pytest.fixture
def prod_instance(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.prod.yaml", home / "dagster.yaml")
    for key, value in {
        "QP_DAGSTER_PG_HOST": "127.0.0.1",
        "QP_DAGSTER_PG_PORT": "5432",
        "QP_DAGSTER_PG_USER": "postgres",
        "QP_DAGSTER_PG_PASSWORD": "",
        "QP_DAGSTER_PG_DB": "qp_dagster_test",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_materialization_is_recorded_in_postgres(prod_instance):
    marker = f"probe_{uuid.uuid4().hex[:8]}"

    @dg.asset(name=marker)
    def probe() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows": 3})

    assert type(prod_instance.run_storage).__name__ == "PostgresRunStorage"
    result = dg.materialize([probe], instance=prod_instance)
    assert result.success
    event = prod_instance.get_latest_materialization_event(dg.AssetKey(marker))
    assert event is not None and event.asset_materialization.metadata["rows"].value == 3
    # and it is really in PostgreSQL, not in a local file
    with sa.create_engine(PG).connect() as conn:
        n = conn.execute(
            sa.text("SELECT count(*) FROM event_logs WHERE asset_key LIKE :k"), {"k": f"%{marker}%"}
        ).scalar()
    assert n >= 1
