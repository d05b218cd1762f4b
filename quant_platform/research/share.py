"""Tokens of read-only share links: `<share id>.<expiry, epoch seconds>.<HMAC-SHA256>`.

The MAC (under the API's signing secret, with its own purpose prefix so it can never be confused
with another signature of that key) makes a tampered id or expiry worthless without a database
look-up; the warm tier's `share_links` row makes a link revocable. A link is valid only when both
agree: signature, expiry not passed, row present, not revoked, same expiry.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets

PURPOSE = b"quant-platform share link v1\x00"
DEFAULT_DAYS, MAX_DAYS = 7, 30
_TOKEN = re.compile(r"^([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")


def new_share_id() -> str:
    return secrets.token_hex(16)


def _mac(share_id: str, expires: int, secret: str) -> str:
    digest = hmac.new(secret.encode(), PURPOSE + f"{share_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(share_id: str, expires_at: dt.datetime, secret: str) -> str:
    """The token of `share_id` valid until `expires_at` (to the second)."""
    expires = int(expires_at.timestamp())
    return f"{share_id}.{expires}.{_mac(share_id, expires, secret)}"


def verify(token: str, secret: str, now: dt.datetime | None = None) -> tuple[str, int] | None:
    """(share id, expiry in epoch seconds) of an authentic, unexpired token; None otherwise."""
    match = _TOKEN.match(token or "")
    if match is None:
        return None
    share_id, expires, mac = match.group(1), int(match.group(2)), match.group(3)
    if not hmac.compare_digest(mac, _mac(share_id, expires, secret)):
        return None
    now = now or dt.datetime.now(dt.UTC)
    return (share_id, expires) if expires > now.timestamp() else None
