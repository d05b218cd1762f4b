"""The `grid_search` job and its executor, chosen by `QP_GRID_EXECUTOR`:

* unset: the deployment's executor (in-process locally, multiprocess in prod);
* ``in_process`` / ``multiprocess``: that executor for grid runs only;
* ``celery``: Dagster's Celery executor (`pip install quant-platform[celery]`). The broker is
  `QP_CELERY_BROKER` (e.g. ``redis://127.0.0.1:6379/2``) and the result backend `QP_CELERY_BACKEND`
  (default: the broker), both read by Dagster at launch time. Start workers with
  ``dagster-celery worker start -A dagster_celery.app`` (see docs/grid-search.md).
"""

from __future__ import annotations

import dagster as dg

from quant_platform.conventions import EMBEDDED_TAG, GRID_TAG
from quant_platform.grid.dagster.assets import GRID_ASSET
from quant_platform.grid.runs import GRID_JOB
from quant_platform.settings import GRID_EXECUTORS, settings


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
    raise ValueError(f"QP_GRID_EXECUTOR must be one of {GRID_EXECUTORS} or unset, got {kind!r}")


def build_grid_job(executor_def: dg.ExecutorDefinition | None = None, name: str = GRID_JOB):
    """The `grid_search` job; `executor_def` None uses the Definitions' executor."""
    return dg.define_asset_job(
        name,
        selection=dg.AssetSelection.assets(GRID_ASSET),
        executor_def=executor_def,
        tags={GRID_TAG: "true", EMBEDDED_TAG: "true"},
        description="Evaluate one grid request (config: request_id): klines once, batches fanned out, "
        "ranked results and the winning parameters written at the end.",
    )
