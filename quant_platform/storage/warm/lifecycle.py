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


# ---------------------------------------------------------------------------------------- accounts


class AccountStatus(enum.StrEnum):
    """Lifecycle of a trading account. Only `active` accounts take new trades and allocations.

    `suspended` is a temporary stop (risk breach, broker issue) that can be lifted; `inactive` is a
    closed account that may be reopened. A suspended account can also be closed.
    """

    ACTIVE = "active"
    INACTIVE = "inactive"
    SUSPENDED = "suspended"


ACCOUNT_TRANSITIONS: dict[AccountStatus, frozenset[AccountStatus]] = {
    AccountStatus.ACTIVE: frozenset({AccountStatus.INACTIVE, AccountStatus.SUSPENDED}),
    AccountStatus.SUSPENDED: frozenset({AccountStatus.ACTIVE, AccountStatus.INACTIVE}),
    AccountStatus.INACTIVE: frozenset({AccountStatus.ACTIVE}),
}


def apply_account_transition(row: m.AccountRow, target: AccountStatus | str, /) -> bool:
    """Move an account to `target`; False (nothing written) if it is already there.

    The sibling of `apply_transition` for accounts, and the one place their status changes. It checks
    the move against ACCOUNT_TRANSITIONS (raising IllegalTransition) and stamps `status_changed_at`.
    """
    try:
        tgt = AccountStatus(target)
    except ValueError:
        allowed = ", ".join(s.value for s in AccountStatus)
        raise IllegalTransition(
            f"account {row.name!r}: unknown status {target!r}; statuses: {allowed}"
        ) from None
    cur = AccountStatus(row.status)
    if tgt is cur:
        return False
    if tgt not in ACCOUNT_TRANSITIONS[cur]:
        allowed = ", ".join(sorted(ACCOUNT_TRANSITIONS[cur]))
        raise IllegalTransition(
            f"account {row.name!r}: cannot go from {cur} to {tgt}; from {cur} allowed: {allowed}"
        )
    row.status = tgt.value
    row.status_changed_at = m.utcnow()
    return True
