"""Submit, inspect and cancel grid searches in the warm tier.

A grid request is queued by `submit`, claimed by the `grid_request_sensor` (queued -> running), run
by the `grid_search` job and ends succeeded, failed or cancelled. Every function takes an optional
`WarmStore`. Without one it opens the store named by `QP_WAREHOUSE_URL` (default: SQLite under
`QP_HOME`), brings its schema up to date, and closes it again.

    >>> from quant_platform import grid
    >>> req = grid.submit("sma_cross", {"fast": "5:50:5", "slow": "20,30,60"},
    ...                   symbols=["600000.SH", "600001.SH"], start="2024-01-02", end="2024-10-31")
    >>> grid.status(req.id).status, grid.cancel(req.id).status
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from quant_platform.grid.spec import GridSpec, build_spec
from quant_platform.storage.warm import GridRequest, WarmStore, body_hash

T = TypeVar("T")

AUTO_KEY_PREFIX = "body-sha256:"


def default_idempotency_key(body: Mapping[str, Any]) -> str:
    """The key of a request submitted without one: the hash of its canonical body, so that
    submitting the same search twice returns the first request."""
    return AUTO_KEY_PREFIX + body_hash(body)


@contextmanager
def open_store(store: WarmStore | None = None) -> Iterator[WarmStore]:
    """`store` as is, or the store of the environment, migrated, closed on exit."""
    if store is not None:
        yield store
        return
    opened = WarmStore.from_env()
    try:
        opened.migrate()
        yield opened
    finally:
        opened.close()


def _with(store: WarmStore | None, fn: Callable[[WarmStore], T]) -> T:
    with open_store(store) as s:
        return fn(s)


def submit_spec(
    spec: GridSpec, *, idempotency_key: str | None = None, store: WarmStore | None = None
) -> GridRequest:
    """Queue a validated search. The same key with the same body returns the first request; the same
    key with a different body raises `IdempotencyConflict`."""
    body = spec.body()
    key = idempotency_key or default_idempotency_key(body)
    return _with(store, lambda s: s.submit_grid_request(body, key))


def submit(
    strategy: str,
    params: Mapping[str, Any],
    *,
    start: Any,
    end: Any,
    symbols: str | Sequence[str] | None = None,
    universe: str | None = None,
    objective: str = "sharpe",
    max_evals: int | None = None,
    time_budget: float | None = None,
    early_stop: int | None = None,
    batch_size: int | None = None,
    watch: bool = False,
    settings: Mapping[str, Any] | None = None,
    activate: str = "if-validated",
    holdout: str | Sequence[Any] | None = None,
    frequency: str = "1d",
    walk_forward: int | None = None,
    idempotency_key: str | None = None,
    store: WarmStore | None = None,
) -> GridRequest:
    """Validate and queue a grid search; see `quant_platform.grid.spec.build_spec` for the arguments.

    Raises `GridSpecError` (a ValueError) for an invalid request and `IdempotencyConflict` when
    `idempotency_key` was already used with a different request.
    """
    spec = build_spec(
        strategy,
        params,
        start=start,
        end=end,
        symbols=symbols,
        universe=universe,
        objective=objective,
        max_evals=max_evals,
        time_budget=time_budget,
        early_stop=early_stop,
        batch_size=batch_size,
        watch=watch,
        settings=settings,
        activate=activate,
        holdout=holdout,
        frequency=frequency,
        walk_forward=walk_forward,
    )
    return submit_spec(spec, idempotency_key=idempotency_key, store=store)


def status(request_id: str, *, store: WarmStore | None = None) -> GridRequest:
    """The request's record: status, progress (0-100), best parameters, error. NotFound if unknown."""
    return _with(store, lambda s: s.get_grid_request(request_id))


def cancel(request_id: str, *, store: WarmStore | None = None) -> GridRequest:
    """Cancel a queued or running request (idempotent: cancelling again returns the same record).

    A running search stops before its next batch; a finished one raises `IllegalTransition`.
    """
    return _with(store, lambda s: s.cancel_grid_request(request_id))


def list_requests(
    *, status: str | None = None, limit: int = 20, store: WarmStore | None = None
) -> list[GridRequest]:
    """Newest first."""
    return _with(store, lambda s: s.list_grid_requests(status=status, limit=limit))
