"""The `grid_search` job with Dagster's Celery executor, for test_celery.py.

The test process (which orchestrates the run) and the Celery worker (which runs its steps) both load
this file, so everything comes from the environment they share: QP_HOME (stores),
QP_TEST_CELERY_BROKER and QP_TEST_CELERY_QUEUE (a queue of this test only).
"""

import os

import dagster as dg
from dagster_celery import celery_executor

from quant_platform.grid.dagster import build_grid_job, grid_search_results
from quant_platform.resources import build_resources


def celery_grid_job() -> dg.JobDefinition:
    broker = os.environ["QP_TEST_CELERY_BROKER"]
    executor = celery_executor.configured(
        {
            "broker": broker,
            "backend": broker,
            "config_source": {"task_default_queue": os.environ["QP_TEST_CELERY_QUEUE"]},
        },
        name="celery",
    )
    defs = dg.Definitions(
        assets=[grid_search_results],
        jobs=[build_grid_job(executor_def=executor)],
        resources=build_resources("local"),
    )
    return defs.resolve_job_def("grid_search")
