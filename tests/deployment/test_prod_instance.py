"""The prod Dagster instance (dagster.prod.yaml, fixture in conftest.py) on the real PostgreSQL records
materializations."""

import uuid

import dagster as dg
import sqlalchemy as sa

PG = "postgresql://postgres@127.0.0.1:5432/qp_dagster_test"


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
