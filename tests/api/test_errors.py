"""The one error model over real HTTP: malformed JSON, wrong types, unknown fields, huge bodies, bad
dates and symbols, unknown routes, wrong methods, a held cold store; never a stack trace or secret."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import httpx
import pytest

from tests.api.test_access import BACKTEST

CODES = {"INVALID_INPUT", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "RATE_LIMITED",
         "UPSTREAM_ERROR", "INTERNAL_ERROR"}  # fmt: skip


def assert_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and code in CODES
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body["error"]


def with_context(**context):
    return {**BACKTEST, "context": {**BACKTEST["context"], **context}}


JSON = {"content-type": "application/json"}
CASES = [
    # (method, path, kwargs, status, code, words in the message)
    ("POST", "/api/v1/backtests", {"content": b'{"strategy": ', "headers": JSON},
     400, "INVALID_INPUT", "not valid JSON"),
    ("POST", "/api/v1/backtests", {"json": {**BACKTEST, "strategy": 5}}, 422, "INVALID_INPUT", "strategy"),
    ("POST", "/api/v1/backtests", {"json": {**BACKTEST, "surprise": 1}}, 422, "INVALID_INPUT", "surprise"),
    ("POST", "/api/v1/backtests", {"json": {**BACKTEST, "params": {"fast": "five"}}}, 422, "INVALID_INPUT",
     "params"),
    ("POST", "/api/v1/backtests", {"json": {**BACKTEST, "params": {"fast": 50, "slow": 20}}}, 422,
     "INVALID_INPUT", "sma_cross"),
    ("POST", "/api/v1/backtests", {"json": {**BACKTEST, "strategy": "nope"}}, 422, "INVALID_INPUT", "nope"),
    ("POST", "/api/v1/backtests", {"json": with_context(universe=["600000.SH; DROP TABLE"])}, 422,
     "INVALID_INPUT", "universe"),
    ("POST", "/api/v1/backtests", {"json": with_context(window={"start": "2024-02-30", "end": "2024-05-31"})},
     422, "INVALID_INPUT", "window"),
    ("POST", "/api/v1/backtests", {"json": with_context(window={"start": "2024-05-31", "end": "2024-03-01"})},
     422, "INVALID_INPUT", "before start"),
    ("POST", "/api/v1/backtests", {"json": with_context(window={"start": "1990-01-02", "end": "2024-03-01"})},
     422, "INVALID_INPUT", "first XSHG"),
    ("POST", "/api/v1/backtests", {"json": with_context(frequency="1m")}, 422, "INVALID_INPUT", "frequency"),
    ("POST", "/api/v1/backtests", {"json": [1, 2]}, 422, "INVALID_INPUT", "body"),
    ("POST", "/api/v1/backtests", {"content": b"x" * (2 << 20), "headers": JSON},
     413, "INVALID_INPUT", "larger than"),
    ("GET", "/api/v1/klines?symbols=600000.SH&start=2024-13-01&end=2024-03-05", {}, 422, "INVALID_INPUT",
     "start"),
    ("GET", "/api/v1/klines?symbols=600000.SH&start=2024-03-05&end=2024-03-01", {}, 422, "INVALID_INPUT",
     "before start"),
    ("GET", "/api/v1/klines?symbols=%27%3BDROP&start=2024-03-01&end=2024-03-05", {}, 422, "INVALID_INPUT",
     "invalid symbol"),
    ("GET", "/api/v1/klines?symbols=,,&start=2024-03-01&end=2024-03-05", {}, 422, "INVALID_INPUT", "symbols"),
    ("GET", "/api/v1/klines?start=2024-03-01&end=2024-03-05", {}, 422, "INVALID_INPUT", "symbols"),
    ("GET", "/api/v1/backtests/abc", {}, 422, "INVALID_INPUT", "backtest_id"),
    ("GET", "/api/v1/backtests/99999", {}, 404, "NOT_FOUND", "backtest 99999"),
    ("GET", "/api/v1/nope", {}, 404, "NOT_FOUND", "no such route"),
    ("DELETE", "/api/v1/backtests", {}, 405, "INVALID_INPUT", "method not allowed"),
    ("GET", "/api/v1/runs/x/artifacts/secrets", {}, 422, "INVALID_INPUT", "artifact"),
    ("GET", "/api/v1/strategies/sma_cross/diff?from=1&to=2", {}, 404, "NOT_FOUND", "sma_cross"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "words"), CASES)
def test_error_model(shared_api, method, path, kwargs, status, code, words):
    with shared_api.client("admin") as c:
        error = assert_error(c.request(method, path, **kwargs), status, code)
    assert words.lower() in (error["message"] + str(error["details"])).lower()


def test_chunked_huge_body_is_refused(shared_api):
    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    with shared_api.client("admin") as c:
        r = c.post("/api/v1/backtests", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, "INVALID_INPUT")


def test_no_secret_or_source_in_responses_or_logs(api, caplog):
    with api.client("admin") as c:
        health = c.get("/healthz").json()
        assert health["stores"]["warm"]["status"] == "up"
        bad = c.post("/api/v1/backtests", json={**BACKTEST, "strategy": "def evil(): return os.environ"})
    text = str(health) + bad.text + caplog.text
    assert api.server.settings.stores.warehouse_url not in text and api.keys["admin"] not in text
    assert "os.environ" not in bad.text


def test_a_held_cold_store_is_503_with_retry_after(api, qp_home):
    """Another process holds the embedded cold store: the API waits briefly, then UPSTREAM_ERROR 503."""
    script = textwrap.dedent(f"""
        import sys, time
        from quant_platform.storage.cold import ColdStore
        with ColdStore("chdb://{qp_home / "chdb"}") as cold:
            cold.ensure_schema()
            print("held", flush=True)
            sys.stdin.readline()
    """)
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with api.client("admin") as c:
            r = c.get(
                "/api/v1/klines", params={"symbols": "600000.SH", "start": "2024-03-01", "end": "2024-03-05"}
            )
        error = assert_error(r, 503, "UPSTREAM_ERROR")
        assert int(r.headers["retry-after"]) > 0 and "held by another process" in error["message"]
        assert str(holder.pid) not in r.text
    finally:
        holder.communicate("\n", timeout=30)
    with api.client("admin") as c:  # released: the next request gets its data
        r = c.get(
            "/api/v1/klines", params={"symbols": "600000.SH", "start": "2024-03-01", "end": "2024-03-05"}
        )
        assert r.status_code == 200


def test_an_unexpected_error_is_internal_error_without_trace_or_text(api, monkeypatch, caplog):
    state = api.server._server.config.app.state.qp

    def boom():
        raise RuntimeError("mysql+pymysql://user:hunter2@db/secret")

    monkeypatch.setattr(state.warm, "list_strategies", boom)
    with api.client("admin") as c:
        r = c.get("/api/v1/strategies")
    error = assert_error(r, 500, "INTERNAL_ERROR")
    assert "reference" in error["message"] and "hunter2" not in r.text
    assert "hunter2" not in caplog.text and "Traceback" not in caplog.text
    assert "RuntimeError" in caplog.text and "x-ratelimit-limit" in r.headers
