"""Who may call what, over real HTTP: the role x route permission matrix, tokens and API keys, lockout,
ownership (others get NOT_FOUND, admins see everything). SQLite; the MariaDB + Redis variant of the
matrix is at the end."""

from __future__ import annotations

import pytest

from quant_platform.core.identity import ROLE_PERMISSIONS, ROLES
from tests.api.conftest import PASSWORD

BACKTEST = {
    "strategy": "sma_cross",
    "params": {"fast": 5, "slow": 20},
    "context": {
        "universe": ["600000.SH"],
        "frequency": "1d",
        "window": {"start": "2024-03-01", "end": "2024-05-31"},
    },
}
# (method, path, json body, permission needed (None: any user), success status)
ROUTES = [
    ("GET", "/api/v1/auth/me", None, None, 200),
    ("GET", "/api/v1/backtests", None, "backtest:read", 200),
    ("POST", "/api/v1/backtests", BACKTEST, "backtest:submit", 201),
    ("GET", "/api/v1/strategies", None, "strategy:read", 200),
    ("GET", "/api/v1/strategies/sma_cross/versions", None, "strategy:read", 200),
    (
        "POST",
        "/api/v1/strategies/sma_cross/versions",
        {"params": {"fast": 4, "slow": 30}},
        "strategy:manage",
        201,
    ),
    ("GET", "/api/v1/klines?symbols=600000.SH&start=2024-03-01&end=2024-03-05", None, "data:read", 200),
    ("GET", "/api/v1/quotes/latest?symbols=600000.SH", None, "data:read", 200),
    ("GET", "/api/v1/users", None, "user:manage", 200),
    # the permission is checked before the run is looked up: 404 means "allowed, but no such run"
    ("POST", "/api/v1/runs/no-such-run/share", None, "backtest:share", 404),
    ("DELETE", f"/api/v1/runs/no-such-run/share/{'0' * 32}", None, "backtest:share", 404),
    ("GET", "/api/v1/runs/no-such-run/artifacts/report", None, "backtest:read", 404),
]


def check_matrix(api):
    for role in ROLES:
        with api.client(role) as c:
            for method, path, body, permission, ok in ROUTES:
                r = c.request(method, path, json=body)
                allowed = permission is None or permission in ROLE_PERMISSIONS[role]
                expected = ok if allowed else 403
                assert r.status_code == expected, (role, method, path, r.text)
                if not allowed:
                    assert r.json()["error"]["code"] == "FORBIDDEN"
    with api.client() as anonymous:
        for method, path, body, _, _ in ROUTES:
            r = anonymous.request(method, path, json=body)
            assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED", path
            assert r.headers["www-authenticate"] == "Bearer"


def test_permission_matrix(api):
    check_matrix(api)


def test_tokens_keys_and_lockout(api):
    with api.client() as c:
        r = c.post("/api/v1/auth/token", json={"username": "trader", "password": PASSWORD})
        assert r.status_code == 200 and r.json()["token_type"] == "bearer" and r.json()["expires_in"] == 900
        token = r.json()["access_token"]
    with api.client(token=token) as c:
        assert c.get("/api/v1/auth/me").json()["username"] == "trader"
    for bad in ("nope", token[:-2] + "xx", "qp_000000000000_" + "a" * 43):
        with api.client(token=bad) as c:
            assert c.get("/api/v1/auth/me").status_code == 401
    # a revoked key stops working at once
    key_id = api.keys["viewer"].split("_")[1]
    api.warm.revoke_api_key(key_id)
    with api.client("viewer") as c:
        assert c.get("/api/v1/auth/me").status_code == 401
    # repeated failures lock the account: then even the right password fails
    with api.client() as c:
        for _ in range(5):
            r = c.post("/api/v1/auth/token", json={"username": "developer", "password": "wrong password"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
            assert PASSWORD not in r.text
        r = c.post("/api/v1/auth/token", json={"username": "developer", "password": PASSWORD})
        assert r.status_code == 401
    assert api.warm.get_user("developer").status == "locked"
    # ... and its token stops working too
    with api.client("developer") as c:
        assert c.get("/api/v1/auth/me").status_code == 401


def test_ownership(api):
    with api.client("trader") as mine, api.client("other") as theirs, api.client("admin") as admin:
        bid = mine.post("/api/v1/backtests", json=BACKTEST).json()["backtest_id"]
        (rid,) = mine.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "single"}).json()["run_ids"]
        for path in (
            f"/api/v1/backtests/{bid}",
            f"/api/v1/backtests/{bid}/runs",
            f"/api/v1/backtests/{bid}/runs/{rid}",
            f"/api/v1/runs/{rid}/artifacts/equity",
        ):
            r = theirs.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND", path
            assert admin.get(path).status_code in (200, 404), path  # artifacts: the run has none yet
        assert admin.get(f"/api/v1/backtests/{bid}/runs/{rid}").json()["status"] == "queued"
        for post in (f"/api/v1/backtests/{bid}/runs", f"/api/v1/backtests/{bid}/runs/{rid}:cancel"):
            r = theirs.post(post, json={"mode": "single"})
            assert r.status_code == 404, post
        assert [b["backtest_id"] for b in theirs.get("/api/v1/backtests").json()] == []
        assert [b["backtest_id"] for b in mine.get("/api/v1/backtests").json()] == [bid]
        assert [b["backtest_id"] for b in admin.get("/api/v1/backtests").json()] == [bid]
        # a run of another backtest is not found under this one
        other_bid = theirs.post("/api/v1/backtests", json=BACKTEST).json()["backtest_id"]
        assert admin.get(f"/api/v1/backtests/{other_bid}/runs/{rid}").status_code == 404
        # cancel: 204, again 204 (idempotent); the owner sees it cancelled
        assert mine.post(f"/api/v1/backtests/{bid}/runs/{rid}:cancel").status_code == 204
        assert mine.post(f"/api/v1/backtests/{bid}/runs/{rid}:cancel").status_code == 204
        assert mine.get(f"/api/v1/backtests/{bid}/runs/{rid}").json()["status"] == "cancelled"


def test_viewer_reads_but_cannot_submit(api):
    with api.client("trader") as trader, api.client("viewer") as viewer:
        bid = trader.post("/api/v1/backtests", json=BACKTEST).json()["backtest_id"]
        r = viewer.post(f"/api/v1/backtests/{bid}/runs", json={"mode": "single"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
        assert viewer.post("/api/v1/backtests", json=BACKTEST).status_code == 403


@pytest.mark.services
def test_permission_matrix_on_mariadb_and_redis(api_mysql):
    check_matrix(api_mysql)
