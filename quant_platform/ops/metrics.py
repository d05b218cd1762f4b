"""Pipeline metrics in Prometheus format, read from the Dagster instance's records at each scrape.

Nothing is recomputed from the data: rows come from the `dagster/row_count` of materializations,
quarantined shares and outcomes from the recorded check evaluations, durations from step events,
runs from the run storage, queue depths from the warm tier. Names follow `qp_<area>_<what>_<unit>`
like the collector's own endpoint (`collector/metrics.py`):

- `qp_pipeline_rows_written{asset, partition}`: rows of the newest materialization of a partition;
- `qp_pipeline_quarantined_ratio{asset, partition}`: share judged by the newest quality check;
- `qp_pipeline_step_duration_seconds{job, step}`: the step in its newest successful run;
- `qp_pipeline_check_evaluations_total{asset, check, outcome}`: passed, warned, blocked;
- `qp_pipeline_runs{job, status}`, `qp_pipeline_queue_depth{queue}` (grid, backtest, dagster_runs);
- `qp_store_up{tier}`, `qp_store_probe_latency_seconds{tier}`: warm and hot tier probes (never the
  embedded cold store, which allows one process);
- `qp_pipeline_scrape_duration_seconds`: how long reading all of the above took.

`PipelineCollector` is a prometheus_client custom collector; `registry()` wraps one, served by
`quant-platform metrics` and at `/metrics` of `quant-platform serve`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger("quant_platform.ops.metrics")

RECENT_RUNS = 50  # step durations come from the newest runs
MATERIALIZATIONS = 200  # per asset
CHECK_HISTORY = 500  # per check
MAX_RUNS = 20_000


def _partition(tags, fallback: str | None) -> str:
    from quant_platform.ops.logs import _partition_of

    return _partition_of(tags or {}) or fallback or ""


class PipelineCollector(Collector):
    """Reads the instance (and, when given, the warm / hot tiers) on each `collect()`."""

    def __init__(
        self,
        instance: Callable[[], object],
        warehouse_url: str | None = None,
        redis_url: str | None = None,
    ) -> None:
        self._instance = instance
        self._warehouse_url, self._redis_url = warehouse_url, redis_url
        self._cached = None

    def instance(self):
        if self._cached is None:
            self._cached = self._instance()
        return self._cached

    def collect(self) -> Iterator:
        started = time.perf_counter()
        instance = self.instance()
        for part in (self._rows, self._checks, self._steps, self._runs, self._queues, self._stores):
            try:
                yield from part(instance)
            except Exception as exc:  # noqa: BLE001 - one missing family must not hide the others
                log.warning("metrics: %s failed: %s", part.__name__.strip("_"), type(exc).__name__)
        took = GaugeMetricFamily("qp_pipeline_scrape_duration_seconds", "Time to read the pipeline metrics")
        took.add_metric([], time.perf_counter() - started)
        yield took

    # ------------------------------------------------------------------------------------ families

    def _rows(self, instance) -> Iterator:
        rows = GaugeMetricFamily(
            "qp_pipeline_rows_written", "Rows of the newest materialization", labels=["asset", "partition"]
        )
        runs: dict[str, object] = {}
        for record in instance.get_asset_records():
            key = record.asset_entry.asset_key
            seen: set[str] = set()
            for m in instance.fetch_materializations(key, limit=MATERIALIZATIONS).records:  # newest first
                count = (
                    m.asset_materialization.metadata.get("dagster/row_count")
                    if m.asset_materialization
                    else None
                )
                if count is None:
                    continue
                if m.run_id not in runs:
                    runs[m.run_id] = instance.get_run_by_id(m.run_id)
                run = runs[m.run_id]
                part = _partition(run.tags if run is not None else {}, m.partition_key)
                if part in seen:
                    continue
                seen.add(part)
                rows.add_metric([key.to_user_string(), part], float(getattr(count, "value", count)))
        yield rows

    def _checks(self, instance) -> Iterator:
        from quant_platform.ops.dagster.sensors import quality_check_keys

        outcomes = CounterMetricFamily(
            "qp_pipeline_check_evaluations",
            "Quality check evaluations by outcome (passed, warned, blocked)",
            labels=["asset", "check", "outcome"],
        )
        share = GaugeMetricFamily(
            "qp_pipeline_quarantined_ratio",
            "Quarantined share judged by the newest quality check of the partition",
            labels=["asset", "partition"],
        )
        for key in quality_check_keys():
            counts = {"passed": 0, "warned": 0, "blocked": 0}
            seen: set[str] = set()
            for record in instance.event_log_storage.get_asset_check_execution_history(
                key, limit=CHECK_HISTORY
            ):
                event = record.event.dagster_event if record.event is not None else None
                evaluation = event.event_specific_data if event is not None else None
                if not hasattr(evaluation, "passed"):
                    continue
                outcome = (
                    "passed"
                    if evaluation.passed
                    else "blocked"
                    if evaluation.severity.value == "ERROR"
                    else "warned"
                )
                counts[outcome] += 1
                meta = evaluation.metadata or {}
                value = meta.get("quarantined_share")
                days = meta.get("days")
                part = str(getattr(days, "value", days) or "")
                if value is not None and part not in seen:
                    seen.add(part)
                    share.add_metric(
                        [key.asset_key.to_user_string(), part], float(getattr(value, "value", value))
                    )
            for outcome, n in counts.items():
                outcomes.add_metric([key.asset_key.to_user_string(), key.name, outcome], n)
        yield outcomes
        yield share

    def _steps(self, instance) -> Iterator:
        import dagster as dg

        durations = GaugeMetricFamily(
            "qp_pipeline_step_duration_seconds",
            "Duration of the step in its newest successful run",
            labels=["job", "step"],
        )
        seen: set[tuple[str, str]] = set()
        for run in instance.get_runs(limit=RECENT_RUNS):
            for record in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS, limit=1000
            ).records:
                event = record.event_log_entry.dagster_event
                if event is None or (run.job_name, event.step_key) in seen:
                    continue
                seen.add((run.job_name, event.step_key))
                durations.add_metric(
                    [run.job_name, event.step_key], event.event_specific_data.duration_ms / 1000
                )
        yield durations

    def _runs(self, instance) -> Iterator:
        runs = GaugeMetricFamily("qp_pipeline_runs", "Runs in the Dagster instance", labels=["job", "status"])
        counts: dict[tuple[str, str], int] = {}
        for record in instance.get_run_records(limit=MAX_RUNS):
            key = (record.dagster_run.job_name, record.dagster_run.status.value)
            counts[key] = counts.get(key, 0) + 1
        for (job, status), n in sorted(counts.items()):
            runs.add_metric([job, status], n)
        yield runs
        queued = sum(n for (_, status), n in counts.items() if status == "QUEUED")
        self._queued_runs = queued

    def _queues(self, instance) -> Iterator:
        depth = GaugeMetricFamily("qp_pipeline_queue_depth", "Work waiting to start", labels=["queue"])
        depth.add_metric(["dagster_runs"], getattr(self, "_queued_runs", 0))
        if self._warehouse_url:
            from quant_platform.storage.warm import WarmStore

            try:
                store = WarmStore(self._warehouse_url, attempts=1)
                try:
                    depth.add_metric(["grid"], len(store.list_grid_requests(status="queued", limit=10_000)))
                    depth.add_metric(["backtest"], len(store.pending_backtest_requests(limit=10_000)))
                finally:
                    store.close()
            except Exception as exc:  # noqa: BLE001 - down or not migrated yet: qp_store_up tells
                log.warning("metrics: warm-tier queues unreadable: %s", type(exc).__name__)
        yield depth

    def _stores(self, instance) -> Iterator:
        up = GaugeMetricFamily("qp_store_up", "1 when the tier answered its probe", labels=["tier"])
        latency = GaugeMetricFamily(
            "qp_store_probe_latency_seconds", "Round trip of the tier's probe", labels=["tier"]
        )
        if self._warehouse_url:
            from quant_platform.storage.warm import WarmStore

            try:
                store = WarmStore(self._warehouse_url, attempts=1)
                ping = store.ping()
                store.close()
                up.add_metric(["warm"], 1)
                latency.add_metric(["warm"], ping.latency_ms / 1000)
            except Exception:  # noqa: BLE001 - a down store is a value, not an error
                up.add_metric(["warm"], 0)
        if self._redis_url:
            from quant_platform.storage.hot import hot_store_from_url

            try:
                hot = hot_store_from_url(self._redis_url)
                ping = hot.ping()
                hot.close()
                up.add_metric(["hot"], 1 if ping.ok else 0)
                if ping.latency_ms is not None:
                    latency.add_metric(["hot"], ping.latency_ms / 1000)
            except Exception:  # noqa: BLE001
                up.add_metric(["hot"], 0)
        yield up
        yield latency


def registry(instance: Callable[[], object], warehouse_url: str | None = None, redis_url: str | None = None):
    """A registry holding one `PipelineCollector` (the instance is opened at the first scrape)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PipelineCollector(instance, warehouse_url, redis_url))
    return reg


def instance_at(dagster_home) -> Callable[[], object]:
    """Opens the Dagster instance of `dagster_home` (its dagster.yaml) when first called."""

    def open_instance():
        import dagster as dg

        return dg.DagsterInstance.from_config(str(dagster_home))

    return open_instance
