"""WarmStore section: grid-search requests, idempotent per key and claimed safely by concurrent sensors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Session

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.errors import IdempotencyConflict, IllegalTransition
from quant_platform.storage.warm.lifecycle import Status, apply_transition
from quant_platform.storage.warm.records import GridRequest, _check_text, _new_id, body_hash, json_safe
from quant_platform.storage.warm.rows import _grid, _grid_or_none, _grid_row
from quant_platform.storage.warm.section import StoreSection


class GridRequestsMixin(StoreSection):
    """Grid requests: submit, claim, report progress and move through the same lifecycle as runs."""

    # ------------------------------------------------------------------------------ grid requests

    def submit_grid_request(self, body: Mapping[str, Any], idempotency_key: str) -> GridRequest:
        """Queue a grid search once per idempotency key.

        Submitting the same key with the same body again (a client retry) returns the existing
        request, whatever its status. The same key with a different body raises IdempotencyConflict.
        """
        _check_text("idempotency key", idempotency_key, 255)
        values = json_safe(dict(body))
        digest = body_hash(values)
        G = m.GridRequestRow

        def same_or_conflict(row: m.GridRequestRow) -> GridRequest:
            if row.body_hash != digest:
                raise IdempotencyConflict(
                    f"idempotency key {idempotency_key!r} was already used for grid request {row.id} "
                    f"with a different body (sha256 {row.body_hash[:12]} != {digest[:12]})"
                )
            return _grid(row)

        def lookup(s: Session) -> m.GridRequestRow | None:
            return s.scalars(sa.select(G).where(G.idempotency_key == idempotency_key)).one_or_none()

        def submit(s: Session) -> GridRequest:
            row = lookup(s)
            if row is not None:
                return same_or_conflict(row)
            now = m.utcnow()
            row = G(
                id=_new_id(),
                idempotency_key=idempotency_key,
                body=values,
                body_hash=digest,
                status=Status.QUEUED.value,
                progress=0.0,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            return _grid(row)

        try:
            return self._run(submit)
        except exc.IntegrityError:  # a concurrent submit with the same key committed first
            return self._run(lambda s: same_or_conflict(lookup(s)), write=False)

    def get_grid_request(self, request_id: str) -> GridRequest:
        return self._run(lambda s: _grid(_grid_row(s, request_id)), write=False)

    def find_grid_request(self, idempotency_key: str) -> GridRequest | None:
        G = m.GridRequestRow
        return self._run(
            lambda s: _grid_or_none(
                s.scalars(sa.select(G).where(G.idempotency_key == idempotency_key)).one_or_none()
            ),
            write=False,
        )

    def list_grid_requests(self, *, status: str | None = None, limit: int = 100) -> list[GridRequest]:
        """Newest first."""
        G = m.GridRequestRow

        def lst(s: Session) -> list[GridRequest]:
            q = sa.select(G)
            if status is not None:
                q = q.where(G.status == Status(status).value)
            return [_grid(r) for r in s.scalars(q.order_by(G.created_at.desc(), G.id).limit(int(limit)))]

        return self._run(lst, write=False)

    def claim_queued_grid_requests(self, limit: int = 10) -> list[GridRequest]:
        """Move up to `limit` of the oldest queued requests to running and return them.

        This is safe for concurrent claimers. MySQL skips rows that another claimer holds locked
        (SKIP LOCKED), and SQLite serializes writers, so a request is never handed out twice. The
        caller (a sensor) should launch one run per request, keyed by the request id.
        """
        G = m.GridRequestRow

        def claim(s: Session) -> list[GridRequest]:
            q = (
                sa.select(G)
                .where(G.status == Status.QUEUED.value)
                .order_by(G.created_at, G.id)
                .limit(int(limit))
                .with_for_update(skip_locked=True)
            )
            rows = list(s.scalars(q))
            for row in rows:
                apply_transition(row, f"grid request {row.id}", Status.RUNNING)
            s.flush()
            return [_grid(r) for r in rows]

        return self._run(claim) if limit > 0 else []

    def update_grid_progress(
        self, request_id: str, progress: float, *, best_params: Mapping[str, Any] | None = None
    ) -> GridRequest:
        """Record progress (0-100) and optionally the best parameters so far for a running request.

        On a cancelled request nothing is written and the request is returned as it is. A worker
        checks `.status` on the result to notice the cancellation and stop.
        """
        p = float(progress)
        if not (0.0 <= p <= 100.0):
            raise ValueError(f"progress must be within 0..100, got {progress!r}")
        best = json_safe(dict(best_params)) if best_params is not None else None

        def upd(s: Session) -> GridRequest:
            row = _grid_row(s, request_id, lock=True)
            if row.status == Status.CANCELLED:
                return _grid(row)
            if row.status != Status.RUNNING:
                raise IllegalTransition(
                    f"grid request {request_id}: progress can only be reported while running, "
                    f"it is {row.status}"
                )
            row.progress = p
            if best is not None:
                row.best_params = best
            row.updated_at = m.utcnow()
            s.flush()
            return _grid(row)

        return self._run(upd)

    def finish_grid_request(
        self,
        request_id: str,
        *,
        best_params: Mapping[str, Any] | None,
        summary: Mapping[str, Any] | None = None,
    ) -> GridRequest:
        """running -> succeeded with progress 100, the winning parameters and, in the same transaction,
        the search's summary (so a finished request never lacks it)."""
        best = json_safe(dict(best_params)) if best_params is not None else None
        extra = {"summary": json_safe(dict(summary))} if summary is not None else {}
        return self._transition_grid(request_id, Status.SUCCEEDED, progress=100.0, best_params=best, **extra)

    def set_grid_summary(self, request_id: str, summary: Mapping[str, Any]) -> GridRequest:
        """Store what a search that ended found (counts, stop reason, PBO, deflated Sharpe, out-of-sample
        figures, activation), so `grid status`, the API and notifications read it without the cold tier.
        Allowed in any status: the write step records it right after the request ends."""
        values = json_safe(dict(summary))

        def upd(s: Session) -> GridRequest:
            row = _grid_row(s, request_id, lock=True)
            row.summary = values
            row.updated_at = m.utcnow()
            s.flush()
            return _grid(row)

        return self._run(upd)

    def fail_grid_request(self, request_id: str, error: str) -> GridRequest:
        return self._transition_grid(request_id, Status.FAILED, error=str(error))

    def cancel_grid_request(self, request_id: str) -> GridRequest:
        """queued | running -> cancelled. Cancelling again is a no-op returning the same record."""
        return self._transition_grid(request_id, Status.CANCELLED)

    def _transition_grid(self, request_id: str, target: Status, **values: Any) -> GridRequest:
        def tr(s: Session) -> GridRequest:
            row = _grid_row(s, request_id, lock=True)
            if apply_transition(row, f"grid request {request_id}", target, **values):
                row.updated_at = row.finished_at or m.utcnow()
                s.flush()
            return _grid(row)

        return self._run(tr)
