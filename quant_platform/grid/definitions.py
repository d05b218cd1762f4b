"""Dagster definitions of grid search, added to the one `Definitions` in `quant_platform.definitions`.

`GRID_JOBS` holds the `grid_search` job. Its executor comes from `QP_GRID_EXECUTOR`:

* unset: the deployment's executor (in-process locally, multiprocess in prod);
* ``in_process`` / ``multiprocess``: that executor for grid runs only;
* ``celery``: Dagster's Celery executor (`pip install quant-platform[celery]`). The broker is
  `QP_CELERY_BROKER` (e.g. ``redis://127.0.0.1:6379/2``) and the result backend `QP_CELERY_BACKEND`
  (default: the broker). Start workers with ``dagster-celery worker start -A dagster_celery.app``
  (see docs/grid-search.md).
"""

from __future__ import annotations

import dagster as dg

from quant_platform.assets.grid_search import build_grid_job, grid_search_results
from quant_platform.sensors.grid_requests import grid_request_sensor, watched_grid_sensor
from quant_platform.settings import GRID_EXECUTORS as EXECUTORS
from quant_platform.settings import settings


def celery_executor_from_env() -> dg.ExecutorDefinition:
    """The Celery executor with broker and backend read from the environment at launch time."""
    try:
        from dagster_celery import celery_executor
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "QP_GRID_EXECUTOR=celery needs dagster-celery: pip install 'quant-platform[celery]'"
        ) from exc
    backend = "QP_CELERY_BACKEND" if settings().celery_backend else "QP_CELERY_BROKER"
    return celery_executor.configured(
        {"broker": {"env": "QP_CELERY_BROKER"}, "backend": {"env": backend}}, name="celery"
    )


def grid_executor(kind: str | None = None) -> dg.ExecutorDefinition | None:
    """Executor of the grid_search job for `kind` (default `QP_GRID_EXECUTOR`); None: the default."""
    kind = (kind if kind is not None else settings().grid_executor or "").strip().lower()
    if not kind:
        return None
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return dg.multiprocess_executor
    if kind == "celery":
        return celery_executor_from_env()
    raise ValueError(f"QP_GRID_EXECUTOR must be one of {EXECUTORS} or unset, got {kind!r}")


grid_search_job = build_grid_job(grid_executor())

GRID_ASSETS = [grid_search_results]
GRID_JOBS = [grid_search_job]
GRID_SENSORS = [grid_request_sensor, watched_grid_sensor]

__all__ = ["GRID_ASSETS", "GRID_JOBS", "GRID_SENSORS", "grid_executor", "grid_search_job"]
