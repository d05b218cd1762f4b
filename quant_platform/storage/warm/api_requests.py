"""WarmStore section: what the HTTP API records for later: backtest run requests and idempotent responses.

A backtest run requested through the API is a queued `backtest_runs` row plus a `backtest_requests`
row, written in one transaction; `backtest_request_sensor` launches the pending ones as Dagster runs
(never the web request). An idempotent POST claims its (user, key) before it runs (status 0),
then stores its response there for 24 hours; a failed request releases the claim.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Session

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.errors import NotFound
from quant_platform.storage.warm.lifecycle import Status
from quant_platform.storage.warm.records import (
    BacktestRequest,
    BacktestRun,
    StoredResponse,
    _check_text,
    _new_id,
    json_safe,
)
from quant_platform.storage.warm.rows import _run_record, _strategy_name
from quant_platform.storage.warm.section import StoreSection

IDEMPOTENCY_TTL = dt.timedelta(hours=24)
ABANDONED_AFTER = dt.timedelta(minutes=2)  # a claim without a response this old: its server died


def _stored(row: m.IdempotencyRow) -> StoredResponse:
    return StoredResponse(row.request_hash, row.status_code, (row.response or {}).get("body"), row.created_at)


def _request(r: m.BacktestRequestRow, backtest_id: int) -> BacktestRequest:
    return BacktestRequest(r.run_id, backtest_id, r.requested_at, r.launched_at)


class ApiRequestsMixin(StoreSection):
    """Backtest run requests (queue, list pending, mark launched) and stored idempotent responses."""

    def request_backtest_run(self, backtest_id: int, params: Mapping[str, Any]) -> BacktestRun:
        """A queued run of `backtest_id` with `params`, and its launch request, in one transaction."""
        values = json_safe(dict(params))

        def create(s: Session) -> BacktestRun:
            bt = s.get(m.BacktestRow, int(backtest_id))
            if bt is None:
                raise NotFound(f"backtest {backtest_id} does not exist")
            now = m.utcnow()
            row = m.BacktestRunRow(
                id=_new_id(),
                strategy_id=bt.strategy_id,
                backtest_id=bt.id,
                params=values,
                status=Status.QUEUED.value,
                created_at=now,
            )
            s.add(row)
            s.flush()
            s.add(m.BacktestRequestRow(run_id=row.id, requested_at=now))
            s.flush()
            return _run_record(row, _strategy_name(s, bt.strategy_id))

        return self._run(create)

    def get_backtest_request(self, run_id: str) -> BacktestRequest | None:
        def get(s: Session) -> BacktestRequest | None:
            row = s.get(m.BacktestRequestRow, str(run_id))
            if row is None:
                return None
            run = s.get(m.BacktestRunRow, row.run_id)
            return _request(row, run.backtest_id if run else 0)

        return self._run(get, write=False)

    def pending_backtest_requests(
        self, limit: int = 20, *, relaunch_after: float = 300.0
    ) -> list[BacktestRequest]:
        """Requests whose run is still queued: never launched, or launched `relaunch_after` s ago."""
        R, B = m.BacktestRequestRow, m.BacktestRunRow
        stale = m.utcnow() - dt.timedelta(seconds=relaunch_after)

        def pending(s: Session) -> list[BacktestRequest]:
            q = (
                sa.select(R, B.backtest_id)
                .join(B, B.id == R.run_id)
                .where(B.status == Status.QUEUED.value)
                .where(sa.or_(R.launched_at.is_(None), R.launched_at < stale))
                .order_by(R.requested_at, R.run_id)
                .limit(int(limit))
            )
            return [_request(row, bt) for row, bt in s.execute(q)]

        return self._run(pending, write=False)

    def mark_launched(self, run_ids: list[str]) -> None:
        if not run_ids:
            return
        R = m.BacktestRequestRow
        self._run(
            lambda s: s.execute(
                sa.update(R).where(R.run_id.in_(list(run_ids))).values(launched_at=m.utcnow())
            )
        )

    # ------------------------------------------------------------------------------ idempotency

    def stored_response(self, user_id: int, key: str) -> StoredResponse | None:
        """The response stored for (user, key) within the last 24 hours."""
        Idem = m.IdempotencyRow
        since = m.utcnow() - IDEMPOTENCY_TTL

        def get(s: Session) -> StoredResponse | None:
            row = s.scalars(
                sa.select(Idem).where(Idem.user_id == int(user_id), Idem.key == key, Idem.created_at >= since)
            ).one_or_none()
            if row is None:
                return None
            return StoredResponse(
                row.request_hash, row.status_code, (row.response or {}).get("body"), row.created_at
            )

        return self._run(get, write=False)

    def reserve_idempotency_key(self, user_id: int, key: str, request_hash: str) -> StoredResponse | None:
        """Claim (user, key) for a request about to run: None if it is ours now, else what holds it.

        What holds it is either a finished response (status > 0) or a request still in progress
        (status 0). A claim older than `ABANDONED_AFTER` (its server died mid-request) is taken over.
        """
        _check_text("idempotency key", key, 255)
        Idem = m.IdempotencyRow
        now = m.utcnow()

        def reserve(s: Session) -> StoredResponse | None:
            s.execute(
                sa.delete(Idem).where(
                    Idem.user_id == int(user_id),
                    Idem.key == key,
                    sa.or_(
                        Idem.created_at < now - IDEMPOTENCY_TTL,
                        sa.and_(Idem.status_code == 0, Idem.created_at < now - ABANDONED_AFTER),
                    ),
                )
            )
            row = s.scalars(
                sa.select(Idem).where(Idem.user_id == int(user_id), Idem.key == key).with_for_update()
            ).one_or_none()
            if row is not None:
                return _stored(row)
            s.add(
                Idem(
                    user_id=int(user_id),
                    key=key,
                    request_hash=request_hash,
                    status_code=0,
                    response=None,
                    created_at=now,
                )
            )
            s.flush()
            return None

        try:
            return self._run(reserve)
        except exc.IntegrityError:  # a concurrent request claimed it first
            return self.stored_response(user_id, key)

    def complete_idempotency_key(self, user_id: int, key: str, status_code: int, body: Any) -> None:
        """Store the response of the request that claimed (user, key)."""
        Idem = m.IdempotencyRow
        self._run(
            lambda s: s.execute(
                sa.update(Idem)
                .where(Idem.user_id == int(user_id), Idem.key == key)
                .values(status_code=int(status_code), response={"body": json_safe(body)})
            )
        )

    def release_idempotency_key(self, user_id: int, key: str) -> None:
        """Drop an unfinished claim (its request failed), so the key can be retried."""
        Idem = m.IdempotencyRow
        self._run(
            lambda s: s.execute(
                sa.delete(Idem).where(Idem.user_id == int(user_id), Idem.key == key, Idem.status_code == 0)
            )
        )
