"""WarmStore section: strategies and their versioned parameters (one active version per strategy)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.errors import AlreadyExists
from quant_platform.storage.warm.records import (
    ParamDiff,
    ParamVersion,
    Strategy,
    _check_text,
    diff_mappings,
    json_safe,
)
from quant_platform.storage.warm.rows import _deactivate, _param_row, _param_version, _strategy, _strategy_row
from quant_platform.storage.warm.section import StoreSection


class StrategiesMixin(StoreSection):
    """Strategies and parameter versions: create, version, activate, diff."""

    # -------------------------------------------------------------------------------- strategies

    def create_strategy(self, name: str, description: str = "", *, exist_ok: bool = False) -> Strategy:
        _check_text("strategy name", name, 128)

        def create(s: Session) -> Strategy:
            row = s.scalars(sa.select(m.StrategyRow).where(m.StrategyRow.name == name)).one_or_none()
            if row is not None:
                if exist_ok:
                    return _strategy(s, row)
                raise AlreadyExists(f"strategy {name!r} already exists")
            row = m.StrategyRow(name=name, description=description, created_at=m.utcnow())
            s.add(row)
            s.flush()
            return _strategy(s, row)

        return self._create(create, lambda: self.get_strategy(name), exist_ok, f"strategy {name!r}")

    def get_strategy(self, name: str) -> Strategy:
        return self._run(lambda s: _strategy(s, _strategy_row(s, name)), write=False)

    def list_strategies(self) -> list[Strategy]:
        return self._run(
            lambda s: [
                _strategy(s, r) for r in s.scalars(sa.select(m.StrategyRow).order_by(m.StrategyRow.name))
            ],
            write=False,
        )

    # ------------------------------------------------------------------------ strategy parameters

    def add_params(
        self, strategy: str, params: Mapping[str, Any], *, note: str = "", activate: bool = False
    ) -> ParamVersion:
        """Store `params` as the strategy's next version (1, 2, ...).

        The first version of a strategy is activated automatically, so a strategy that has
        parameters always has exactly one active version. Later versions are activated only with
        `activate=True` or `activate(strategy, version)`.
        """
        values = json_safe(dict(params))

        def add(s: Session) -> ParamVersion:
            st = _strategy_row(s, strategy, lock=True)  # serializes version numbering per strategy
            P = m.StrategyParamsRow
            last = s.scalar(sa.select(sa.func.max(P.version)).where(P.strategy_id == st.id)) or 0
            has_active = s.scalar(sa.select(P.id).where(P.strategy_id == st.id, P.is_active.is_(True)))
            make_active = activate or has_active is None
            now = m.utcnow()
            if make_active:
                _deactivate(s, st.id)
            row = P(
                strategy_id=st.id,
                version=last + 1,
                params=values,
                note=note,
                is_active=True if make_active else None,
                created_at=now,
                activated_at=now if make_active else None,
            )
            s.add(row)
            s.flush()
            return _param_version(row, strategy)

        return self._run(add)

    def activate(self, strategy: str, version: int) -> ParamVersion:
        """Make `version` the strategy's only active parameter version; a no-op if it already is."""

        def act(s: Session) -> ParamVersion:
            st = _strategy_row(s, strategy, lock=True)
            row = _param_row(s, st, version)
            if not row.is_active:
                _deactivate(s, st.id)
                s.flush()
                row.is_active = True
                row.activated_at = m.utcnow()
                s.flush()
            return _param_version(row, strategy)

        return self._run(act)

    def get_params(self, strategy: str, version: int | None = None) -> ParamVersion:
        """A given version, or the active one when `version` is None."""

        def get(s: Session) -> ParamVersion:
            st = _strategy_row(s, strategy)
            return _param_version(_param_row(s, st, version), strategy)

        return self._run(get, write=False)

    def list_param_versions(self, strategy: str) -> list[ParamVersion]:
        def lst(s: Session) -> list[ParamVersion]:
            st = _strategy_row(s, strategy)
            P = m.StrategyParamsRow
            rows = s.scalars(sa.select(P).where(P.strategy_id == st.id).order_by(P.version))
            return [_param_version(r, strategy) for r in rows]

        return self._run(lst, write=False)

    def diff_params(self, strategy: str, v1: int, v2: int) -> ParamDiff:
        """What changes going from version v1 to v2: added, removed and changed (old, new) keys."""

        def diff(s: Session) -> ParamDiff:
            st = _strategy_row(s, strategy)
            return diff_mappings(_param_row(s, st, v1).params, _param_row(s, st, v2).params)

        return self._run(diff, write=False)
