"""Share links in the warm tier, on SQLite and MariaDB: created per run and user, read back with the
same (whole-second, UTC) expiry the signed URL carries, revoked idempotently, gone with their run."""

from __future__ import annotations

import datetime as dt

import pytest

from quant_platform.research import share
from quant_platform.storage.warm import NotFound, ShareLink


def test_a_link_is_created_read_revoked_and_listed(warm):
    user = warm.create_user("alice", "trader", password="correct horse battery")
    warm.create_strategy("sma_cross")
    run = warm.create_run("sma_cross", {"fast": 5})
    expires = dt.datetime(2030, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC)
    link = warm.create_share_link(share.new_share_id(), run.id, user.id, expires)
    assert isinstance(link, ShareLink) and link.run_id == run.id and link.user_id == user.id
    assert link.expires_at == expires.replace(microsecond=0) and link.revoked_at is None
    again = warm.get_share_link(link.id)
    assert again == link and again.expires_at.tzinfo is not None
    assert again.valid_at(dt.datetime(2029, 1, 1, tzinfo=dt.UTC))
    assert not again.valid_at(dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC))  # expired at that second

    revoked = warm.revoke_share_link(link.id)
    assert revoked.revoked_at is not None and not revoked.valid_at(dt.datetime(2029, 1, 1, tzinfo=dt.UTC))
    assert warm.revoke_share_link(link.id).revoked_at == revoked.revoked_at  # idempotent
    other = warm.create_share_link(share.new_share_id(), run.id, user.id, expires)
    assert [x.id for x in warm.list_share_links(run.id)] == [link.id, other.id]


def test_unknown_runs_and_links_are_not_found(warm):
    user = warm.create_user("bob", "trader", password="correct horse battery")
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with pytest.raises(NotFound):
        warm.create_share_link(share.new_share_id(), "no-such-run", user.id, future)
    with pytest.raises(NotFound):
        warm.revoke_share_link("0" * 32)
    assert warm.get_share_link("0" * 32) is None
    with pytest.raises(ValueError):
        warm.create_share_link("bad id!", "no-such-run", user.id, future)
