"""WarmStore section: trading accounts, kept apart so account features have their own room."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.errors import AlreadyExists, NotFound
from quant_platform.storage.warm.records import Account, _check_text, json_safe
from quant_platform.storage.warm.rows import _account
from quant_platform.storage.warm.section import StoreSection


class AccountsMixin(StoreSection):
    """Accounts: create, get and list."""

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
        _check_text("account name", name, 128)

        def create(s: Session) -> Account:
            row = s.scalars(sa.select(m.AccountRow).where(m.AccountRow.name == name)).one_or_none()
            if row is not None:
                if exist_ok:
                    return _account(row)
                raise AlreadyExists(f"account {name!r} already exists")
            row = m.AccountRow(
                name=name,
                broker=broker,
                currency=currency,
                initial_cash=float(initial_cash),
                meta=json_safe(dict(meta or {})),
                created_at=m.utcnow(),
            )
            s.add(row)
            s.flush()
            return _account(row)

        return self._create(create, lambda: self.get_account(name), exist_ok, f"account {name!r}")

    def get_account(self, name: str) -> Account:
        def get(s: Session) -> Account:
            row = s.scalars(sa.select(m.AccountRow).where(m.AccountRow.name == name)).one_or_none()
            if row is None:
                raise NotFound(f"account {name!r} does not exist")
            return _account(row)

        return self._run(get, write=False)

    def list_accounts(self) -> list[Account]:
        return self._run(
            lambda s: [_account(r) for r in s.scalars(sa.select(m.AccountRow).order_by(m.AccountRow.name))],
            write=False,
        )
