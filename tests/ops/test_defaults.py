"""Automation on by default where a user expects it (issue 14, item 5)."""

import dagster as dg

from quant_platform.schedules import daily_after_close
from quant_platform.sensors.file_drop import _drop_status


def test_after_close_schedule_runs_with_the_daemon():
    assert daily_after_close.default_status == dg.DefaultScheduleStatus.RUNNING


def test_file_drop_sensor_runs_when_a_drop_folder_is_configured(monkeypatch, tmp_path):
    monkeypatch.delenv("QP_DROP_DIR", raising=False)
    assert _drop_status() == dg.DefaultSensorStatus.STOPPED
    monkeypatch.setenv("QP_DROP_DIR", str(tmp_path))
    assert _drop_status() == dg.DefaultSensorStatus.RUNNING
