"""Server passwords given in the environment never reach the Dagster instance, in either deployment.

A real MariaDB user and a real Redis ACL user with passwords serve the warm and hot tiers of a
`quant-platform run`; afterwards nothing the instance stored (files, run configs, tags, job and
execution-plan snapshots, event logs) contains either password.
"""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
import redis
import sqlalchemy as sa
from typer.testing import CliRunner

from quant_platform.cli import app


@pytest.fixture
def secret_servers(mysql_database_factory, redis_db, monkeypatch):
    """A MariaDB user and a Redis user, each with a fresh password, pointed at by QP_* variables."""
    password = f"pw-{uuid.uuid4().hex}"
    user = f"qp_{uuid.uuid4().hex[:8]}"
    db_url = sa.make_url(mysql_database_factory())
    root = sa.create_engine(db_url.set(database=None), poolclass=sa.pool.NullPool)
    with root.begin() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
        conn.exec_driver_sql(f"GRANT ALL ON `{db_url.database}`.* TO '{user}'@'%%'")
    admin = redis.Redis.from_url(redis_db)
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"])
    warm_url = db_url.set(username=user, password=password).render_as_string(hide_password=False)
    monkeypatch.setenv("QP_WAREHOUSE_URL", warm_url)
    monkeypatch.setenv("QP_REDIS_URL", f"redis://{user}:{password}@{redis_db.split('://', 1)[1]}")
    yield password
    admin.acl_deluser(user)
    admin.close()
    with root.begin() as conn:
        conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")


def _stored_text(instance: dg.DagsterInstance) -> str:
    """Everything the instance holds about its runs, decompressed and serialized."""
    from dagster._serdes import serialize_value

    parts = []
    for run in instance.get_runs():
        parts.append(serialize_value(run))
        parts.append(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
        if run.execution_plan_snapshot_id:
            parts.append(
                serialize_value(instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id))
            )
        parts.extend(serialize_value(record) for record in instance.all_logs(run.run_id))
    return "\n".join(parts)


def test_no_server_password_in_the_dagster_instance(qp_home, secret_servers):
    password = secret_servers
    result = CliRunner().invoke(
        app, ["run", "--start", "2024-08-01", "--end", "2024-08-02", "--symbols", "3", "--no-options"]
    )
    assert result.exit_code == 0, result.output
    assert password not in result.output
    instance = dg.DagsterInstance.get()
    runs = instance.get_runs()
    assert len(runs) == 2 and all(r.is_success for r in runs)  # the range, then the backtests
    assert password not in _stored_text(instance)
    stored = [p for p in (qp_home / "dagster").rglob("*") if p.is_file()]
    assert stored and not [p for p in stored if password.encode() in p.read_bytes()]
