"""The daily report: what one trading day produced and what went wrong, as JSON or Markdown.

Sections: rows per table, quarantine by rule, blocking checks that failed (from the verdicts the
instance recorded, `checks/verdicts.py`), Dagster runs of the day by status, backtests and grid
searches created that day (warm tier), and the collector's ticks of the day. Everything is read,
nothing recomputed. `quant-platform report daily --date D [--format md|json] [--out FILE]`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

TABLES = (
    "raw_quotes",
    "bars_1m",
    "bars_5m",
    "bars_15m",
    "klines_daily",
    "qa_metrics",
    "option_quotes",
    "option_daily",
    "option_greeks",
)
QUARANTINED = ("raw_quotes", "bars_1m", "bars_5m", "bars_15m", "klines_daily", "option_quotes")


def daily(day: dt.date, cold, warm, instance) -> dict:
    """The report of `day` from the open stores and the Dagster instance (None: section skipped)."""
    report: dict = {
        "date": day.isoformat(),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if cold is not None:
        cold.ensure_schema()
        report["tables"] = {t: int(cold.count_by_day(t, [day]).get(day, 0)) for t in TABLES}
        quarantine = {}
        for table in QUARANTINED:
            counts = cold.quarantine_counts(table, day, day)
            if len(counts):
                quarantine[table] = {str(r["rule"]): int(r["rows"]) for r in counts.to_dict("records")}
        report["quarantine"] = quarantine
        report["collector"] = {"crypto_ticks": int(cold.count_by_day("crypto_ticks", [day]).get(day, 0))}
    if instance is not None:
        from quant_platform.checks.verdicts import blocking_failures, check_verdicts

        verdicts = check_verdicts(instance, [day])
        report["checks"] = {
            "evaluated": int(len(verdicts)),
            "blocked": [
                {"table": r["table_name"], "run_id": r["run_id"]}
                for r in blocking_failures(verdicts).to_dict("records")
            ],
        }
        report["runs"] = _runs_of(instance, day)
    if warm is not None:
        runs = [r for r in warm.list_runs(limit=1000) if r.created_at.date() == day]
        report["backtests"] = {
            "count": len(runs),
            "by_status": dict(Counter(r.status.value for r in runs)),
            "failed": [
                {"run_id": r.id, "strategy": r.strategy, "error": r.error}
                for r in runs
                if r.status.value == "failed"
            ],
        }
        grids = [g for g in warm.list_grid_requests(limit=1000) if g.created_at.date() == day]
        report["grids"] = [
            {
                "id": g.id,
                "strategy": g.body.get("strategy"),
                "status": g.status.value,
                "best_params": g.best_params,
            }
            for g in grids
        ]
    return report


def _runs_of(instance, day: dt.date) -> dict:
    """Runs whose partition (or range) covers `day`, and unpartitioned runs created on `day`."""
    import dagster as dg

    from quant_platform.conventions import run_partition_keys

    wanted = day.isoformat()
    chosen = []
    for r in instance.get_run_records(limit=5000):
        keys = run_partition_keys(r.dagster_run.tags)
        if keys is not None:
            if keys[0] <= wanted <= keys[1]:
                chosen.append(r)
        elif r.create_timestamp.astimezone(dt.UTC).date() == day:
            chosen.append(r)
    by = Counter((r.dagster_run.job_name, r.dagster_run.status.value) for r in chosen)
    return {
        "count": len(chosen),
        "by_job_and_status": [{"job": j, "status": s, "runs": n} for (j, s), n in sorted(by.items())],
        "failed": [
            r.dagster_run.run_id for r in chosen if r.dagster_run.status == dg.DagsterRunStatus.FAILURE
        ],
    }


def summary(report: dict) -> str:
    """A few lines for a notification: rows, quarantine, blocked checks, failed runs, research."""
    lines = []
    if "tables" in report:
        lines.append("rows: " + ", ".join(f"{t} {n:,}" for t, n in report["tables"].items() if n))
        quarantined = sum(sum(rules.values()) for rules in report["quarantine"].values())
        lines.append(f"quarantined rows: {quarantined:,}")
    if "checks" in report:
        blocked = ", ".join(b["table"] for b in report["checks"]["blocked"]) or "none"
        lines.append(f"blocked checks: {blocked}")
        lines.append(f"runs: {report['runs']['count']}, failed {len(report['runs']['failed'])}")
    if "backtests" in report:
        lines.append(f"backtests: {report['backtests']['count']}, grid searches: {len(report['grids'])}")
    return "\n".join(lines)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=str)


def to_markdown(report: dict) -> str:
    lines = [f"# quant-platform daily report {report['date']}", "", f"generated {report['generated_at']}", ""]
    if "tables" in report:
        lines += ["## Rows per table", "", "| table | rows |", "|---|---:|"]
        lines += [f"| {t} | {n:,} |" for t, n in report["tables"].items()]
        lines += ["", "## Quarantine by rule", ""]
        if report["quarantine"]:
            lines += ["| table | rule | rows |", "|---|---|---:|"]
            for table, rules in report["quarantine"].items():
                lines += [f"| {table} | {rule} | {rows:,} |" for rule, rows in rules.items()]
        else:
            lines.append("no quarantined rows")
    if "checks" in report:
        checks = report["checks"]
        lines += [
            "",
            "## Quality checks",
            "",
            f"{checks['evaluated']} table verdict(s) recorded for the day.",
        ]
        if checks["blocked"]:
            lines += [f"- **blocked**: {b['table']} (run {b['run_id']})" for b in checks["blocked"]]
        else:
            lines.append("No blocking check failed.")
        runs = report["runs"]
        lines += [
            "",
            "## Dagster runs",
            "",
            f"{runs['count']} run(s) of this day (partition covers it, or created on it).",
        ]
        if runs["by_job_and_status"]:
            lines += ["", "| job | status | runs |", "|---|---|---:|"]
            lines += [f"| {r['job']} | {r['status']} | {r['runs']} |" for r in runs["by_job_and_status"]]
    if "backtests" in report:
        bt = report["backtests"]
        status = ", ".join(f"{k} {v}" for k, v in bt["by_status"].items()) or "none"
        lines += ["", "## Backtests and grid searches", "", f"backtests: {bt['count']} ({status})"]
        lines += [f"- failed {f['run_id']} ({f['strategy']}): {f['error']}" for f in bt["failed"]]
        lines.append(f"grid searches: {len(report['grids'])}")
        lines += [
            f"- {g['id']} {g['strategy']}: {g['status']} {g['best_params'] or ''}".rstrip()
            for g in report["grids"]
        ]
    if "collector" in report:
        lines += ["", "## Collector", "", f"crypto ticks written: {report['collector']['crypto_ticks']:,}"]
    return "\n".join(lines) + "\n"
