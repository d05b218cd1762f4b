"""Which trading days passed their blocking quality checks, from the checks recorded in Dagster.

A check evaluation covers the days of the run that produced it (one partition or a range); the
newest evaluation of a day wins, as a re-materialization replaces the day's data.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from quant_platform.checks.asset_checks import QUALITY_CHECKS, run_days


def check_verdicts(instance: dg.DagsterInstance, days: list[dt.date], history: int = 1000) -> pd.DataFrame:
    """One row per (day, table): passed, severity, run_id; days never checked are absent."""
    wanted = set(days)
    rows: dict[tuple[dt.date, str], dict] = {}
    for checks_def in QUALITY_CHECKS:
        for key in checks_def.check_keys:
            records = instance.event_log_storage.get_asset_check_execution_history(key, limit=history)
            for record in reversed(records):  # oldest first, so newer verdicts overwrite older ones
                evaluation = record.event.dagster_event.event_specific_data if record.event else None
                if evaluation is None or not hasattr(evaluation, "passed"):
                    continue
                run = instance.get_run_by_id(record.run_id)
                if run is None:
                    continue
                try:
                    covered = run_days(run.tags)
                except dg.Failure:
                    continue
                for day in wanted.intersection(covered):
                    rows[(day, key.asset_key.to_user_string())] = {
                        "trade_date": day,
                        "table_name": key.asset_key.to_user_string(),
                        "passed": bool(evaluation.passed),
                        "severity": evaluation.severity.value,
                        "run_id": record.run_id,
                    }
    columns = ["trade_date", "table_name", "passed", "severity", "run_id"]
    return pd.DataFrame(list(rows.values()), columns=columns).sort_values(["trade_date", "table_name"])


def blocking_failures(verdicts: pd.DataFrame) -> pd.DataFrame:
    return verdicts[(~verdicts["passed"]) & (verdicts["severity"] == "ERROR")]
