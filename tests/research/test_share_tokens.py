"""Share-link tokens: authentic and unexpired verify to (id, expiry); any change to the id, the expiry
or the signature, another secret, or a passed expiry does not."""

from __future__ import annotations

import datetime as dt

from quant_platform.research import share

SECRET = "k" * 64
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
EXPIRES = NOW + dt.timedelta(days=7)


def test_a_signed_token_verifies_until_it_expires():
    sid = share.new_share_id()
    token = share.sign(sid, EXPIRES, SECRET)
    assert share.verify(token, SECRET, NOW) == (sid, int(EXPIRES.timestamp()))
    assert share.verify(token, SECRET, EXPIRES - dt.timedelta(seconds=1)) is not None
    assert share.verify(token, SECRET, EXPIRES) is None
    assert share.verify(token, "another secret", NOW) is None


def test_tampered_tokens_do_not_verify():
    sid = share.new_share_id()
    token = share.sign(sid, EXPIRES, SECRET)
    ident, expires, mac = token.split(".")
    other_id = ("1" if ident[0] != "1" else "2") + ident[1:]
    later = str(int(expires) + 86_400)
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for bad in (f"{other_id}.{expires}.{mac}", f"{ident}.{later}.{mac}", f"{ident}.{expires}.{flipped}",
                token + "x", token[:-1], "", "not a token", f"{ident}.{expires}"):  # fmt: skip
        assert share.verify(bad, SECRET, NOW) is None, bad
    assert share.verify(share.sign(other_id, EXPIRES, SECRET), SECRET, NOW)[0] == other_id
