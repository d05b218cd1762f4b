"""WarmStore section: read-only share links of runs (table `share_links`, revision 0004).

A link's URL carries its id and a signature (`research/share.py`); the row is what makes it
revocable and lets an owner see what they handed out. Revoking is idempotent.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.errors import NotFound
from quant_platform.storage.warm.records import ShareLink, _check_id
from quant_platform.storage.warm.section import StoreSection


def _link(r: m.ShareLinkRow) -> ShareLink:
    return ShareLink(r.id, r.run_id, r.user_id, r.created_at, r.expires_at, r.revoked_at)


class ShareLinksMixin(StoreSection):
    """Create, read, list and revoke share links."""

    def create_share_link(
        self, share_id: str, run_id: str, user_id: int, expires_at: dt.datetime
    ) -> ShareLink:
        """A new link to `run_id` made by `user_id`, valid until `expires_at` (whole seconds)."""
        _check_id("share id", share_id)
        expires = expires_at.astimezone(dt.UTC).replace(microsecond=0)

        def create(s: Session) -> ShareLink:
            if s.get(m.BacktestRunRow, str(run_id)) is None:
                raise NotFound(f"run {run_id!r} does not exist")
            row = m.ShareLinkRow(
                id=share_id,
                run_id=str(run_id),
                user_id=int(user_id),
                created_at=m.utcnow(),
                expires_at=expires,
            )
            s.add(row)
            s.flush()
            return _link(row)

        return self._run(create)

    def get_share_link(self, share_id: str) -> ShareLink | None:
        def get(s: Session) -> ShareLink | None:
            row = s.get(m.ShareLinkRow, str(share_id))
            return _link(row) if row is not None else None

        return self._run(get, write=False)

    def list_share_links(self, run_id: str) -> list[ShareLink]:
        """The run's links, oldest first (revoked and expired ones included)."""
        L = m.ShareLinkRow
        return self._run(
            lambda s: [
                _link(r)
                for r in s.scalars(sa.select(L).where(L.run_id == str(run_id)).order_by(L.created_at))
            ],
            write=False,
        )

    def revoke_share_link(self, share_id: str) -> ShareLink:
        """Revoke a link; revoking a revoked link changes nothing. NotFound for an unknown id."""

        def revoke(s: Session) -> ShareLink:
            row = s.get(m.ShareLinkRow, str(share_id), with_for_update=True)
            if row is None:
                raise NotFound(f"share link {share_id!r} does not exist")
            if row.revoked_at is None:
                row.revoked_at = m.utcnow()
                s.flush()
            return _link(row)

        return self._run(revoke)
