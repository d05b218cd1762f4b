"""Idempotency-Key (replay, conflict, survives a restart of the server) and per-user rate limits
(headers on every response, 429 with Retry-After), in memory and on MariaDB + Redis."""

from __future__ import annotations

import time

import pytest

from quant_platform.settings import Settings
from tests.api.conftest import start_api
from tests.api.test_access import BACKTEST


def check_idempotency(api):
    headers = {"Idempotency-Key": "create-1"}
    with api.client("trader") as c, api.client("other") as other:
        first = c.post("/api/v1/backtests", json=BACKTEST, headers=headers)
        assert first.status_code == 201 and "idempotent-replayed" not in first.headers
        again = c.post("/api/v1/backtests", json=BACKTEST, headers=headers)
        assert again.status_code == 201 and again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert len(c.get("/api/v1/backtests").json()) == 1
        changed = c.post("/api/v1/backtests", json={**BACKTEST, "notes": "other"}, headers=headers)
        assert changed.status_code == 409 and changed.json()["error"]["code"] == "CONFLICT"
        # keys are per user: the same key of another user is another request
        theirs = other.post("/api/v1/backtests", json=BACKTEST, headers=headers)
        assert theirs.status_code == 201 and theirs.json() != first.json()
        bid = first.json()["backtest_id"]
        runs = c.post(
            f"/api/v1/backtests/{bid}/runs", json={"mode": "single"}, headers={"Idempotency-Key": "r"}
        )
        assert runs.status_code == 202
    api.server.restart()  # stored in the warm tier: a new server process replays the same answer
    with api.client("trader") as c:
        replay = c.post(
            f"/api/v1/backtests/{bid}/runs", json={"mode": "single"}, headers={"Idempotency-Key": "r"}
        )
        assert replay.status_code == 202 and replay.json() == runs.json()
        assert len(c.get(f"/api/v1/backtests/{bid}/runs").json()) == 1
        cancel = f"/api/v1/backtests/{bid}/runs/{runs.json()['run_ids'][0]}:cancel"
        assert c.post(cancel, headers={"Idempotency-Key": "c"}).status_code == 204
        replayed = c.post(cancel, headers={"Idempotency-Key": "c"})
        assert replayed.status_code == 204 and replayed.headers["idempotent-replayed"] == "true"
        bad = c.post("/api/v1/backtests", json=BACKTEST, headers={"Idempotency-Key": "k" * 300})
        assert bad.status_code == 422


def test_idempotency(api):
    check_idempotency(api)


@pytest.mark.services
def test_idempotency_on_mariadb(api_mysql):
    check_idempotency(api_mysql)


def check_rate_limits(api, limit: int):
    with api.client("viewer") as c, api.client("trader") as other, api.client() as anonymous:
        seen = []
        for _ in range(limit):
            r = c.get("/api/v1/auth/me")
            assert r.status_code == 200
            seen.append(int(r.headers["x-ratelimit-remaining"]))
            assert int(r.headers["x-ratelimit-limit"]) == limit
            assert int(r.headers["x-ratelimit-reset"]) >= int(time.time())
        assert seen == list(range(limit - 1, -1, -1))
        over = c.get("/api/v1/auth/me")
        assert over.status_code == 429 and over.json()["error"]["code"] == "RATE_LIMITED"
        assert int(over.headers["retry-after"]) >= 1 and over.headers["x-ratelimit-remaining"] == "0"
        # the same user with a token shares the bucket; other users and errors have their own headers
        assert other.get("/api/v1/auth/me").status_code == 200
        for r in (anonymous.get("/healthz"), anonymous.get("/nope"), other.get("/api/v1/backtests/x")):
            assert "x-ratelimit-limit" in r.headers and "x-ratelimit-reset" in r.headers


def test_rate_limits(qp_home, monkeypatch):
    monkeypatch.setenv("QP_API_RATE_LIMIT", "5/minute")
    for api in start_api(Settings.from_env()):
        check_rate_limits(api, 5)


@pytest.mark.services
def test_rate_limits_in_redis(qp_home, monkeypatch, mysql_database_factory, redis_db):
    monkeypatch.setenv("QP_WAREHOUSE_URL", mysql_database_factory())
    monkeypatch.setenv("QP_REDIS_URL", redis_db)
    monkeypatch.setenv("QP_API_RATE_LIMIT", "5/minute")
    for api in start_api(Settings.from_env()):
        check_rate_limits(api, 5)
        api.server.restart()  # the count is in Redis: a restarted server still refuses
        with api.client("viewer") as c:
            assert c.get("/api/v1/auth/me").status_code == 429


def test_concurrent_requests_with_one_key_run_once(api):
    from concurrent.futures import ThreadPoolExecutor

    def post(_):
        with api.client("trader") as c:
            return c.post("/api/v1/backtests", json=BACKTEST, headers={"Idempotency-Key": "together"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    created = {r.json()["backtest_id"] for r in answers if r.status_code == 201}
    busy = [r for r in answers if r.status_code == 409]
    assert len(created) == 1 and len(busy) + sum(r.status_code == 201 for r in answers) == 8
    assert all("still in progress" in r.json()["error"]["message"] for r in busy)
    with api.client("trader") as c:
        assert len(c.get("/api/v1/backtests").json()) == 1
        # a failed request releases its key: the same key works once the body is valid
        bad = {**BACKTEST, "params": {"fast": 50, "slow": 20}}
        assert c.post("/api/v1/backtests", json=bad, headers={"Idempotency-Key": "retry"}).status_code == 422
        again = c.post("/api/v1/backtests", json=BACKTEST, headers={"Idempotency-Key": "retry"})
        assert again.status_code == 201
