"""WarmStore section: trading accounts, their capital history and strategy allocations.

Invariant: the allocations of an account never sum above its current capital. `allocate` and
`update_capital` check it while holding the account's row lock (`SELECT ... FOR UPDATE`; SQLite
serializes writers anyway), so two concurrent calls cannot both squeeze under the limit.
Statuses change only through `lifecycle.apply_account_transition`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.errors import AccountNotActive, AlreadyExists, CapitalExceeded, NotFound
from quant_platform.storage.warm.lifecycle import AccountStatus, apply_account_transition
from quant_platform.storage.warm.records import (
    Account,
    Allocation,
    CapitalChange,
    _check_text,
    json_safe,
)
from quant_platform.storage.warm.rows import _account, _strategy_row
from quant_platform.storage.warm.section import StoreSection

# Amounts are compared with this slack, so that float sums of allocations do not refuse an exact fit.
_EPS = 1e-6


def _amount(what: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{what} must be a finite amount >= 0, got {value!r}")
    return v


def _account_row(s: Session, name: str, *, lock: bool = False) -> m.AccountRow:
    q = sa.select(m.AccountRow).where(m.AccountRow.name == name)
    if lock:
        q = q.with_for_update()
    row = s.scalars(q).one_or_none()
    if row is None:
        raise NotFound(f"account {name!r} does not exist")
    return row


def _allocated(s: Session, account_id: int, *, except_strategy: int | None = None) -> float:
    A = m.AllocationRow
    q = sa.select(sa.func.coalesce(sa.func.sum(A.allocated_capital), 0.0)).where(A.account_id == account_id)
    if except_strategy is not None:
        q = q.where(A.strategy_id != except_strategy)
    return float(s.scalar(q) or 0.0)


def _record(s: Session, row: m.AccountRow) -> Account:
    return _account(row, _allocated(s, row.id))


class AccountsMixin(StoreSection):
    """Accounts: create, get, list, status, capital (with history) and strategy allocations."""

    def create_account(
        self,
        name: str,
        *,
        broker: str | None = None,
        currency: str = "CNY",
        initial_cash: float = 0.0,
        meta: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> Account:
        """A new active account whose current capital is `initial_cash` (the first history entry)."""
        _check_text("account name", name, 128)
        if broker is not None:
            _check_text("broker", broker, 64)
        cash = _amount("initial capital", initial_cash)

        def create(s: Session) -> Account:
            row = s.scalars(sa.select(m.AccountRow).where(m.AccountRow.name == name)).one_or_none()
            if row is not None:
                if exist_ok:
                    return _record(s, row)
                raise AlreadyExists(f"account {name!r} already exists")
            now = m.utcnow()
            row = m.AccountRow(
                name=name,
                broker=broker,
                currency=currency,
                initial_cash=cash,
                current_capital=cash,
                status=AccountStatus.ACTIVE.value,
                meta=json_safe(dict(meta or {})),
                created_at=now,
            )
            s.add(row)
            s.flush()
            s.add(
                m.CapitalChangeRow(
                    account_id=row.id, previous=0.0, capital=cash, reason="initial", created_at=now
                )
            )
            return _account(row)

        return self._create(create, lambda: self.get_account(name), exist_ok, f"account {name!r}")

    def get_account(self, name: str) -> Account:
        return self._run(lambda s: _record(s, _account_row(s, name)), write=False)

    def list_accounts(self, status: str | None = None) -> list[Account]:
        """Accounts by name; only those in `status` when given."""
        q = sa.select(m.AccountRow).order_by(m.AccountRow.name)
        if status is not None:
            q = q.where(m.AccountRow.status == AccountStatus(status).value)
        return self._run(lambda s: [_record(s, r) for r in s.scalars(q)], write=False)

    def set_account_status(self, name: str, status: str) -> Account:
        """Move the account to `status` (see ACCOUNT_TRANSITIONS); a no-op if it is already there."""

        def move(s: Session) -> Account:
            row = _account_row(s, name, lock=True)
            apply_account_transition(row, status)
            s.flush()
            return _record(s, row)

        return self._run(move)

    def update_capital(
        self, name: str, *, capital: float | None = None, delta: float | None = None, reason: str = ""
    ) -> Account:
        """Set the current capital (`capital`) or change it by `delta`, and record the change.

        Refused (CapitalExceeded) when the new capital would be below what is allocated to strategies,
        and (ValueError) when it would be negative. An unchanged capital writes no history entry.
        """
        if (capital is None) == (delta is None):
            raise ValueError("give exactly one of capital= or delta=")
        if delta is not None and not math.isfinite(float(delta)):
            raise ValueError(f"delta must be finite, got {delta!r}")
        if len(reason) > 255:
            raise ValueError("reason must be at most 255 characters")

        def update(s: Session) -> Account:
            row = _account_row(s, name, lock=True)
            previous = float(row.current_capital)
            new = _amount("capital", capital if capital is not None else previous + float(delta))
            allocated = _allocated(s, row.id)
            if new + _EPS < allocated:
                raise CapitalExceeded(
                    f"account {name!r}: capital {new:,.2f} would be below the {allocated:,.2f} allocated to "
                    "strategies; reduce the allocations first"
                )
            if new != previous:
                row.current_capital = new
                s.add(m.CapitalChangeRow(account_id=row.id, previous=previous, capital=new, reason=reason))
                s.flush()
            return _account(row, allocated)

        return self._run(update)

    def capital_history(self, name: str, limit: int = 1000) -> list[CapitalChange]:
        """The account's capital changes, oldest first (the last `limit`)."""

        def history(s: Session) -> list[CapitalChange]:
            row = _account_row(s, name)
            C = m.CapitalChangeRow
            rows = list(
                s.scalars(sa.select(C).where(C.account_id == row.id).order_by(C.id.desc()).limit(int(limit)))
            )
            return [
                CapitalChange(name, r.previous, r.capital, r.reason, r.created_at) for r in reversed(rows)
            ]

        return self._run(history, write=False)

    # ----------------------------------------------------------------------------- allocations

    def allocate(self, account: str, strategy: str, capital: float, *, risk_limit: float = 0.1) -> Allocation:
        """Give `strategy` `capital` of the (active) account, replacing its earlier allocation.

        `risk_limit` in (0, 1] is the largest loss the strategy may take, as a share of its capital.
        Refused (CapitalExceeded) when the account's allocations would sum above its current capital.
        """
        amount = _amount("allocated capital", capital)
        limit = float(risk_limit)
        if not (0 < limit <= 1):
            raise ValueError(
                f"risk limit must be in (0, 1] (a share of the allocated capital), got {risk_limit!r}"
            )

        def alloc(s: Session) -> Allocation:
            acc = _account_row(s, account, lock=True)
            if acc.status != AccountStatus.ACTIVE:
                raise AccountNotActive(
                    f"account {account!r} is {acc.status}: allocations need an active account"
                )
            st = _strategy_row(s, strategy)
            others = _allocated(s, acc.id, except_strategy=st.id)
            if others + amount > acc.current_capital + _EPS:
                raise CapitalExceeded(
                    f"account {account!r}: allocating {amount:,.2f} to {strategy!r} would put "
                    f"{others + amount:,.2f} above its current capital {acc.current_capital:,.2f} "
                    f"({acc.current_capital - others:,.2f} free)"
                )
            A = m.AllocationRow
            row = s.scalars(sa.select(A).where(A.account_id == acc.id, A.strategy_id == st.id)).one_or_none()
            now = m.utcnow()
            if row is None:
                row = A(account_id=acc.id, strategy_id=st.id, created_at=now)
                s.add(row)
            row.allocated_capital, row.risk_limit, row.updated_at = amount, limit, now
            s.flush()
            return Allocation(account, strategy, amount, limit, row.created_at, row.updated_at)

        return self._run(alloc)

    def deallocate(self, account: str, strategy: str) -> bool:
        """Remove the strategy's allocation; False if it had none."""

        def drop(s: Session) -> bool:
            acc = _account_row(s, account, lock=True)
            st = _strategy_row(s, strategy)
            A = m.AllocationRow
            result = s.execute(sa.delete(A).where(A.account_id == acc.id, A.strategy_id == st.id))
            return bool(result.rowcount)

        return self._run(drop)

    def allocations(self, account: str | None = None) -> list[Allocation]:
        """Allocations of one account (or of all), by account and strategy name."""
        A, Acc, St = m.AllocationRow, m.AccountRow, m.StrategyRow

        def lst(s: Session) -> list[Allocation]:
            if account is not None:
                _account_row(s, account)
            q = (
                sa.select(A, Acc.name, St.name)
                .join(Acc, Acc.id == A.account_id)
                .join(St, St.id == A.strategy_id)
                .order_by(Acc.name, St.name)
            )
            if account is not None:
                q = q.where(Acc.name == account)
            return [
                Allocation(acc, st, r.allocated_capital, r.risk_limit, r.created_at, r.updated_at)
                for r, acc, st in s.execute(q)
            ]

        return self._run(lst, write=False)
