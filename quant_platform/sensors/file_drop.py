"""`file_drop_sensor`: files dropped into `QP_DROP_DIR` launch ingestion runs for their trading days.

Each tick does two idempotent passes over the drop folder (see `sources.files` for its layout):

1. Reconcile `staged/`: a staged file whose every day has a successful run (found by the run tag
   `quant_platform/drop_file=<id>`) is archived. A day without any run yet (a tick that crashed
   after staging, or a run request the daemon has not launched) is requested again with the same
   run key, which Dagster launches at most once. A failed run leaves the file staged; re-executing
   it from the UI (re-executions keep the tags) lets the next tick archive the file.
2. Pick up new top-level files older than the settle time. A file is moved to `rejected/` with
   `<name>.reason.txt` only when it cannot be parsed at all (see `sources.files`), when no row of it
   falls on a trading day that is a partition, or when reading or staging it raises anything else
   (the reason names the exception). Bad values do not reject a file: it is moved to `staged/` and
   one run is requested per trading day of it that is a partition, with
   `run_key = "<name>@<content hash>/<day>"`, so each file is ingested once per day; the row rules
   of the ingesting assets quarantine its bad rows. Rows of other days (holidays, days outside the
   partitions) get no run of their own: they are quarantined (`trade_date_mismatch`) under the
   nearest run day, and the manifest and the log say how many went where.

One file can never stop the sensor: any exception while reading, staging or rejecting a file is
caught, logged and the tick goes on with the other files; a file that cannot even be moved aside is
skipped with a warning (and tried again next tick).

Archiving from the sensor instead of from the ingesting asset or a run-status sensor is deliberate:
it needs no event to be delivered exactly once (a missed tick is caught up by the next one), it
works when a file spans several days and runs, and the staged file stays readable by the
`FileDropSource` until all its runs are done (the source reads `staged/` and `archive/`).

Runs are tagged `quant_platform/market_source=files`, which makes the `market` resource from
`resources.sources.market_resource_from_env()` read the drop folder for them.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import dagster as dg

from quant_platform.conventions import DROP_FILE_TAG, DROP_NAME_TAG, MARKET_SOURCE_TAG
from quant_platform.core.calendar import get_calendar
from quant_platform.sources.files import DropFileError, DropFolder, Manifest, content_id, read_drop_file

log = logging.getLogger(__name__)


def run_key(manifest: Manifest, day: str) -> str:
    return f"{manifest.name}@{manifest.file_id}/{day}"


def _request(manifest: Manifest, day: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key(manifest, day),
        partition_key=day,
        tags={DROP_FILE_TAG: manifest.file_id, DROP_NAME_TAG: manifest.name, MARKET_SOURCE_TAG: "files"},
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DropFileError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _run_days(
    name: str, days: tuple[dt.date, ...], calendar: str, partitions_def: dg.PartitionsDefinition | None
) -> list[dt.date]:
    """The days of a file that get runs: trading days that are partitions. DropFileError when none."""
    cal = get_calendar(calendar)
    runs, why = [], []
    for day in days:
        if not cal.is_session(day):
            why.append(f"{day} is not a {calendar} trading day")
        elif partitions_def is not None and not partitions_def.has_partition_key(day.isoformat()):
            why.append(f"{day} is not a partition of the ingestion job")
        else:
            runs.append(day)
    if not runs:
        listed = "; ".join(why[:5]) + (f"; and {len(why) - 5} more days" if len(why) > 5 else "")
        raise DropFileError(
            f"{name}: no row falls on a trading day that is a partition of the ingestion job"
            + (f" ({listed})" if listed else " (no row has a readable ts or trade_date)")
        )
    return runs


def _admit(
    folder: DropFolder,
    path: Path,
    calendar: str,
    partitions_def: dg.PartitionsDefinition | None,
) -> Manifest:
    """Parse and stage one new file; raises whatever goes wrong (the caller rejects the file)."""
    file_id = content_id(path)
    parsed = read_drop_file(path, calendar)
    runs = _run_days(path.name, parsed.days, calendar, partitions_def)
    return folder.stage(path, parsed, file_id, runs)


def _staged_note(manifest: Manifest) -> str:
    text = f"staged {manifest.name} ({manifest.kind}, {manifest.rows} rows, days {list(manifest.days)})"
    if manifest.outside_days:
        where = ", ".join(
            f"{day}: {v['rows']} rows -> {v['quarantined_under']}" for day, v in manifest.outside_days.items()
        )
        text += f"; rows of days without a run are quarantined (trade_date_mismatch) under: {where}"
    if manifest.undated_rows:
        text += f"; {manifest.undated_rows} rows without a readable day: judged under {manifest.days[0]}"
    if manifest.unmapped_rows:
        text += f"; {manifest.unmapped_rows} unmappable lines quarantined under {manifest.days[0]}"
    return text


def evaluate_drop_folder(
    context: dg.SensorEvaluationContext,
    folder: DropFolder,
    *,
    calendar: str = "XSHG",
    min_age_seconds: float = 5.0,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.SensorResult:
    """One tick of the file-drop sensor (separate from the decorator so tests and other sensors can
    call it with their own folder and job)."""
    folder.ensure()
    requests: list[dg.RunRequest] = []
    notes: list[str] = []

    for manifest in folder.manifests():
        runs = context.instance.get_runs(filters=dg.RunsFilter(tags={DROP_FILE_TAG: manifest.file_id}))
        by_day: dict[str, list[dg.DagsterRunStatus]] = {}
        for run in runs:
            if run.tags.get(DROP_FILE_TAG) == manifest.file_id:
                by_day.setdefault(run.tags.get("dagster/partition", ""), []).append(run.status)
        if all(dg.DagsterRunStatus.SUCCESS in by_day.get(day, []) for day in manifest.days):
            try:
                folder.archive(manifest)
            except Exception as exc:  # noqa: BLE001 - one file never stops the tick
                context.log.warning(f"cannot archive {manifest.name}: {_reason(exc)}; retried next tick")
                continue
            notes.append(f"archived {manifest.name}")
            continue
        for day in manifest.days:
            if day not in by_day:
                requests.append(_request(manifest, day))
            elif all(s == dg.DagsterRunStatus.FAILURE for s in by_day[day]):
                notes.append(f"{manifest.name}: run for {day} failed; re-execute it to ingest the file")

    for path in folder.incoming(min_age_seconds):
        try:
            manifest = _admit(folder, path, calendar, partitions_def)
        except Exception as exc:  # noqa: BLE001 - whatever one file does, the tick goes on
            reason = _reason(exc)
            try:
                target = folder.reject(path, reason)
            except Exception as move_exc:  # noqa: BLE001
                context.log.warning(
                    f"cannot move {path.name} to rejected/ ({_reason(move_exc)}) after: {reason}; "
                    "skipped, tried again next tick"
                )
                notes.append(f"skipped {path.name}")
                continue
            context.log.warning(f"rejected {path.name} -> {target}: {reason}")
            notes.append(f"rejected {path.name}")
            continue
        context.log.info(_staged_note(manifest))
        requests.extend(_request(manifest, day) for day in manifest.days)

    skip = None if requests else ("; ".join(notes) or f"no new files in {folder.root}")
    return dg.SensorResult(run_requests=requests, skip_reason=skip)


def build_file_drop_sensor(
    job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition | None = None,
    *,
    name: str = "file_drop_sensor",
    drop_dir: str | Path | None = None,
    calendar: str | None = None,
    min_age_seconds: float = 5.0,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """A file-drop sensor for `job` (default: the daily market-data job) over `drop_dir` (default
    `QP_DROP_DIR`, resolved at each tick)."""
    from quant_platform.jobs import market_data_job
    from quant_platform.partitions import calendar_name, daily_partitions

    target = job if job is not None else market_data_job

    @dg.sensor(
        name=name,
        job=target,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Ingests CSV/Parquet files dropped into QP_DROP_DIR: one run per trading day of each "
        "file; its bad rows are quarantined by the row rules, unparseable files go to rejected/ with a "
        "reason, ingested ones to archive/.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return evaluate_drop_folder(
            context,
            DropFolder(drop_dir),
            calendar=calendar or calendar_name(),
            min_age_seconds=min_age_seconds,
            partitions_def=daily_partitions,
        )

    return _sensor


def _drop_status() -> dg.DefaultSensorStatus:
    """RUNNING when a drop folder is configured (QP_DROP_DIR set): dropping a file is the whole gesture."""
    from quant_platform.settings import settings

    given = "QP_DROP_DIR" in settings().given
    return dg.DefaultSensorStatus.RUNNING if given else dg.DefaultSensorStatus.STOPPED


file_drop_sensor = build_file_drop_sensor(default_status=_drop_status())

__all__ = ["DROP_FILE_TAG", "build_file_drop_sensor", "evaluate_drop_folder", "file_drop_sensor"]
