"""Both instance files turn on run monitoring: the daemon ends runs stuck starting or cancelling and
frees the pool slots of ended runs, and never tries to resume a run (ours cannot be resumed)."""

import dagster as dg


def _assert_monitors_runs(instance: dg.DagsterInstance) -> None:
    assert instance.run_monitoring_enabled
    assert "MONITORING" in instance.get_required_daemon_types()
    assert instance.run_monitoring_max_resume_run_attempts == 0
    assert instance.run_monitoring_start_timeout_seconds > 0
    assert instance.run_monitoring_cancel_timeout_seconds > 0
    assert 0 < instance.run_monitoring_poll_interval_seconds <= 120
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


def test_local_instance_monitors_runs(local_instance):
    assert type(local_instance.run_storage).__name__ == "SqliteRunStorage"
    _assert_monitors_runs(local_instance)


def test_prod_instance_monitors_runs(prod_instance):
    assert type(prod_instance.run_storage).__name__ == "PostgresRunStorage"
    _assert_monitors_runs(prod_instance)
