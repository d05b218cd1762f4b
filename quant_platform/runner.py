"""Materialize the asset graph for a range of trading days, in chunks of single runs.

Used by `quant-platform run` (and so `make run`). Each chunk is one Dagster run over a partition
range (the assets' single-run backfill policy), recorded in the instance so it shows in the UI.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from quant_platform.conventions import EMBEDDED_TAG, partition_range_tags, process_tags
from quant_platform.core.calendar import get_calendar
from quant_platform.core.limits import check_range_length, check_window
from quant_platform.partitions import calendar_name, daily_partitions


@dataclass
class RangeRunResult:
    days: list[dt.date]
    run_ids: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failed


def trading_days(start: str | dt.date, end: str | dt.date, *, max_days: int | None = None) -> list[dt.date]:
    """Trading days in [start, end] that are partitions; a clear ValueError when there are none, when
    the range leaves the partitions, or when it is longer than `max_days` trading days."""
    try:
        s, e = check_window(start, end, calendar_name())
    except ValueError as exc:
        raise ValueError(f"--start/--end: {exc}") from None
    keys = set(daily_partitions.get_partition_keys())
    days = [d for d in get_calendar(calendar_name()).sessions(s, e) if d.isoformat() in keys]
    if not days:
        first, last = daily_partitions.get_first_partition_key(), daily_partitions.get_last_partition_key()
        raise ValueError(
            f"no {calendar_name()} trading days between {s} and {e} (partitions: {first} .. {last})"
        )
    if max_days is not None:
        check_range_length(days, max_days)
    return days


def chunks(days: list[dt.date], size: int) -> list[list[dt.date]]:
    return [days[i : i + size] for i in range(0, len(days), size)]


def run_range(
    definitions: dg.Definitions,
    days: list[dt.date],
    job_name: str = "market_data_daily",
    chunk_size: int = 20,
    instance: dg.DagsterInstance | None = None,
    on_chunk: Callable[[list[dt.date], dg.ExecuteInProcessResult], None] | None = None,
    log_level: str = "WARNING",
) -> RangeRunResult:
    """Run `job_name` over `days`, `chunk_size` trading days per run; stops at the first failed run."""
    job = definitions.resolve_job_def(job_name)
    result = RangeRunResult(days=days)
    for part in chunks(days, max(1, chunk_size)):
        tags = {**partition_range_tags(part[0], part[-1]), EMBEDDED_TAG: "true", **process_tags()}
        res = job.execute_in_process(
            run_config=_quiet(log_level), instance=instance, tags=tags, raise_on_error=False
        )
        result.run_ids.append(res.run_id)
        if on_chunk:
            on_chunk(part, res)
        if not res.success:
            result.failed.append(res.run_id)
            break
    return result


def run_job(
    definitions: dg.Definitions,
    job_name: str,
    instance: dg.DagsterInstance | None,
    log_level: str = "WARNING",
) -> dg.ExecuteInProcessResult:
    """One run of an unpartitioned job (e.g. the backtests), recorded in `instance`."""
    return definitions.resolve_job_def(job_name).execute_in_process(
        run_config=_quiet(log_level),
        instance=instance,
        tags={EMBEDDED_TAG: "true", **process_tags()},
        raise_on_error=False,
    )


def first_error(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The first step failure of a run (`step: error`), or its run failure: what went wrong first,
    not a follow-on error of a later step or of whoever read the half-written result."""
    wanted = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    for record in instance.get_records_for_run(run_id, of_type=wanted, limit=1000).records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        error = getattr(event.event_specific_data, "error", None)
        text = error.message.strip().splitlines()[0] if error is not None and error.message else event.message
        return f"{event.step_key}: {text}" if event.step_key else (text or "")
    return None


def _quiet(log_level: str) -> dict:
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}
