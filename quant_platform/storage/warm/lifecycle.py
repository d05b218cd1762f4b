"""Lifecycle of backtest runs and grid requests: the statuses, the allowed moves, and `apply_transition`,
the one helper both use to change a row's status, so their lifecycles cannot drift apart.
"""

from __future__ import annotations

import enum
from typing import Any

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.errors import IllegalTransition


class Status(enum.StrEnum):
    """Lifecycle of backtest runs and grid requests: queued -> running -> succeeded | failed | cancelled.

    A queued item may also be cancelled or failed (e.g. it could not be launched) without running.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED}),
    Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def check_transition(what: str, current: str, target: str) -> Status:
    """Return `target` as a Status, or raise IllegalTransition saying what would have been allowed."""
    cur, tgt = Status(current), Status(target)
    if tgt not in TRANSITIONS[cur]:
        allowed = ", ".join(sorted(TRANSITIONS[cur])) or "nothing (terminal)"
        raise IllegalTransition(f"{what}: cannot go from {cur} to {tgt}; from {cur} allowed: {allowed}")
    return tgt


def apply_transition(
    row: m.BacktestRunRow | m.GridRequestRow, what: str, target: Status, /, **values: Any
) -> bool:
    """Move `row` to `target`, then set `values` on it; False if nothing had to change.

    This is the one place where backtest runs and grid requests change status. It checks the move
    against TRANSITIONS (raising IllegalTransition), stamps `started_at`/`finished_at`, and makes
    cancelling an already cancelled item a no-op that writes nothing, so cancel is idempotent.
    """
    if target is Status.CANCELLED and row.status == Status.CANCELLED:
        return False
    check_transition(what, row.status, target)
    now = m.utcnow()
    row.status = target.value
    if target is Status.RUNNING:
        row.started_at = now
    if target.terminal:
        row.finished_at = now
    for k, v in values.items():
        setattr(row, k, v)
    return True
