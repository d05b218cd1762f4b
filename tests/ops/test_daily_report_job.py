"""After the scheduled market-data run of a day ends, one daily_report run writes the day's report
files and sends its summary."""

from __future__ import annotations

import json

import dagster as dg

from quant_platform.ops.dagster.report import report_requests
from tests.ops.test_notify import Receiver


@dg.op
def nothing() -> None:
    return None


@dg.job(name="market_data_daily")
def fake_market_data() -> None:
    nothing()


def test_scheduled_day_gets_one_report(qp_home, monkeypatch):
    from quant_platform.definitions import build_definitions

    receiver = Receiver()
    monkeypatch.setenv("QP_NOTIFY_URLS", receiver.url)
    try:
        instance = dg.DagsterInstance.get()
        fake_market_data.execute_in_process(instance=instance)  # not scheduled: no report
        assert report_requests(instance) == []
        tags = {"dagster/schedule_name": "daily_after_close", "dagster/partition": "2024-01-03"}
        fake_market_data.execute_in_process(instance=instance, tags=tags)
        (request,) = report_requests(instance)
        assert request.run_key == "daily-report-2024-01-03"
        job = build_definitions(kind="local").resolve_job_def("daily_report")
        assert job.execute_in_process(run_config=request.run_config, instance=instance).success
        data = json.loads((qp_home / "reports" / "2024-01-03.json").read_text())
        assert data["date"] == "2024-01-03" and (qp_home / "reports" / "2024-01-03.md").exists()
        assert len(receiver.messages) == 1 and "daily report 2024-01-03" in receiver.messages[0]["title"]
        assert "blocked checks: none" in receiver.messages[0]["message"]
    finally:
        receiver.close()
