"""Snapshot of every definition's identity: moving code between modules must not change what Dagster sees.

Regenerate deliberately with `QP_UPDATE_SNAPSHOT=1 pytest tests/test_definitions_snapshot.py` and
review the diff: a changed key, group, partitioning or dependency is a change users see in the UI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def _partitions(partitions: dg.PartitionsDefinition | None) -> str | None:
    if isinstance(partitions, dg.TimeWindowPartitionsDefinition):
        return f"{partitions.cron_schedule} {partitions.timezone} from {partitions.start:%Y-%m-%d}"
    return type(partitions).__name__ if partitions is not None else None


def describe(defs: dg.Definitions) -> dict:
    """Keys, groups, partitions and dependencies of assets, checks, jobs, schedules and sensors."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": _partitions(node.partitions_def),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "kinds": sorted(node.kinds),
            "backfill_policy": str(node.backfill_policy.policy_type) if node.backfill_policy else None,
            "has_automation": node.automation_condition is not None,
        }
    checks = sorted(
        f"{check.asset_key.to_user_string()}:{check.name}:{'blocking' if check.blocking else 'advisory'}"
        for check in (graph.get_check_spec(k) for k in graph.asset_check_keys)
    )
    repo = defs.get_repository_def()
    jobs = {}
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__ASSET_JOB"):
            continue
        jobs[job.name] = {
            "partitions": _partitions(job.partitions_def),
            "assets": sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys),
            "ops": sorted({op.name for op in job.graph.iterate_op_defs()}),
        }
    schedules = {
        s.name: {
            "job": s.job_name,
            "cron": s.cron_schedule,
            "timezone": s.execution_timezone,
            "default_status": s.default_status.value,
        }
        for s in sorted(repo.schedule_defs, key=lambda s: s.name)
    }
    sensors = {
        s.name: {
            "type": type(s).__name__,
            "jobs": sorted(j.name for j in s.jobs) if s.has_jobs else [],
            "default_status": s.default_status.value,
        }
        for s in sorted(repo.sensor_defs, key=lambda s: s.name)
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_definitions_match_snapshot(qp_home):
    from quant_platform.definitions import build_definitions

    current = describe(build_definitions(kind="local"))
    if os.environ.get("QP_UPDATE_SNAPSHOT") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())
    assert {"raw_quotes", "klines_daily", "grid_search_results"} <= set(current["assets"])
