"""`quant-platform serve` starts the API under uvicorn; prod needs QP_API_SECRET, local generates one."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import httpx
import pytest

from quant_platform.api.auth import signing_secret
from quant_platform.settings import API_REQUIRED, Settings, SettingsError
from tests.api.conftest import free_port


def test_serve_answers_health_and_openapi(qp_home):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "quant_platform.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["stores"]["warm"]["status"] == "up"
        spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
        assert "/api/v1/backtests" in spec["paths"]
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert b"Traceback" not in out


def test_signing_secret_is_required_in_prod_and_generated_locally(tmp_path):
    prod = Settings.from_env(
        {"QP_DEPLOYMENT": "prod", "QP_CLICKHOUSE_DSN": "http://h:8123", "QP_WAREHOUSE_URL": "sqlite:///x",
         "QP_REDIS_URL": "redis://h"}
    )  # fmt: skip
    prod.require()  # the platform itself runs without it ...
    with pytest.raises(SettingsError, match="needs QP_API_SECRET"):
        prod.require(*API_REQUIRED)  # ... the API does not
    local = Settings.from_env({"QP_HOME": str(tmp_path)})
    first = signing_secret(local)
    assert len(first) == 64 and signing_secret(local) == first
    assert stat.S_IMODE((tmp_path / "api_secret").stat().st_mode) == 0o600
    assert (
        signing_secret(Settings.from_env({"QP_HOME": str(tmp_path), "QP_API_SECRET": "s" * 40})) == "s" * 40
    )
    with pytest.raises(SettingsError, match="QP_API_RATE_LIMIT"):
        Settings.from_env({"QP_API_RATE_LIMIT": "lots"})
