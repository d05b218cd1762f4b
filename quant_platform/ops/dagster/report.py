"""The daily report after the close: `daily_report_sensor` -> one `daily_report` run per scheduled day.

When a `market_data_daily` run that the `daily_after_close` schedule launched ends (succeeded, or
failed, e.g. blocked by a quality gate), the sensor requests one `daily_report` run for its day
(`run_key = daily-report-<day>`, so a day is reported once). The run writes
`$QP_HOME/reports/<day>.md` and `.json` (`ops/report.py`) and, with `QP_NOTIFY_URLS`, sends a short
summary. It is a run, not sensor work, because the report reads the cold store: the run queues
behind other runs that hold the embedded store (tag `quant_platform/embedded_store`, pool `cold_store`).
"""

import datetime as dt
import time

import dagster as dg

from quant_platform.conventions import COLD_POOL, EMBEDDED_TAG
from quant_platform.ops import notify, report
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.settings import settings

SCHEDULE = "daily_after_close"
WATCHED_JOB = "market_data_daily"
SCHEDULE_TAG = "dagster/schedule_name"  # set by Dagster on runs a schedule launched


@dg.op(pool=COLD_POOL, config_schema={"date": str})
def write_daily_report(
    context: dg.OpExecutionContext, clickhouse: ClickHouseResource, warehouse: WarehouseResource
) -> str:
    day = dt.date.fromisoformat(context.op_config["date"])
    with clickhouse.open() as cold, warehouse.open() as warm:
        data = report.daily(day, cold, warm, context.instance)
    folder = settings().home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    markdown = folder / f"{day.isoformat()}.md"
    markdown.write_text(report.to_markdown(data))
    (folder / f"{day.isoformat()}.json").write_text(report.to_json(data))
    context.log.info(f"daily report of {day} written to {markdown}")
    urls = settings().notify_urls
    if urls:
        title = f"quant-platform: daily report {day}"
        notify.send(
            urls, notify.Notice("daily_report", title, f"{report.summary(data)}\nfull report: {markdown}")
        )
    return str(markdown)


@dg.job(
    name="daily_report",
    tags={EMBEDDED_TAG: "true"},
    description="Writes $QP_HOME/reports/<day>.md and .json and sends a summary to QP_NOTIFY_URLS.",
)
def daily_report_job() -> None:
    write_daily_report()


def report_requests(instance: dg.DagsterInstance, *, now: float | None = None) -> list[dg.RunRequest]:
    """One request per day whose scheduled market-data run ended in the last two days."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=WATCHED_JOB,
            statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
            tags={SCHEDULE_TAG: SCHEDULE},
            updated_after=dt.datetime.fromtimestamp((now or time.time()) - 2 * 86400, dt.UTC),
        ),
        limit=20,
    )
    days = sorted({r.tags["dagster/partition"] for r in runs if "dagster/partition" in r.tags})
    return [
        dg.RunRequest(
            run_key=f"daily-report-{day}",
            run_config={"ops": {"write_daily_report": {"config": {"date": day}}}},
        )
        for day in days
    ]


@dg.sensor(
    name="daily_report_sensor",
    job=daily_report_job,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After the daily_after_close run of a day ends, one daily_report run for that day.",
)
def daily_report_sensor(context: dg.SensorEvaluationContext):
    requests = report_requests(context.instance)
    return requests or dg.SkipReason("no scheduled market-data run ended in the last two days")
