"""Grid search over strategy parameters: requests in the warm tier, runs in Dagster, results in the
cold tier. See docs/grid-search.md.

    >>> from quant_platform import grid
    >>> req = grid.submit("sma_cross", {"fast": "5:50:5", "slow": "20,30,60"},
    ...                   universe="all", start="2024-01-02", end="2024-10-31", objective="sharpe")
    >>> grid.status(req.id)

This package imports neither Dagster nor the backtest engine at import time. Its plain modules:
`spec` (validated requests), `service` (submit, status, cancel), `evaluate` (batches, ranking),
`progress` (progress and early stop), `winner` (parameter activation), `runs` (run config, tags and
watched re-runs), `cli`. The Dagster wiring (ops, asset, job, sensors) is in `grid.dagster`.
"""

from quant_platform.grid.service import (
    cancel,
    default_idempotency_key,
    list_requests,
    status,
    submit,
    submit_spec,
)
from quant_platform.grid.spec import OBJECTIVES, GridSpec, GridSpecError, build_spec, parse_params
from quant_platform.storage.warm import GridRequest, IdempotencyConflict, IllegalTransition, NotFound

__all__ = [
    "OBJECTIVES",
    "GridRequest",
    "GridSpec",
    "GridSpecError",
    "IdempotencyConflict",
    "IllegalTransition",
    "NotFound",
    "build_spec",
    "cancel",
    "default_idempotency_key",
    "list_requests",
    "parse_params",
    "status",
    "submit",
    "submit_spec",
]
