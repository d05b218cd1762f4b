"""GET /healthz: the state of each store, without addresses or credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from quant_platform import __version__
from quant_platform.api import schemas
from quant_platform.api.routers.common import state

router = APIRouter(tags=["health"])


def _check(fn) -> dict[str, Any]:
    try:
        return {"status": "up", **fn()}
    except Exception as exc:  # noqa: BLE001 - a down store is a row of the answer, not an error
        return {"status": "down", "error": type(exc).__name__}


@router.get("/healthz", response_model=schemas.Health)
def healthz(request: Request) -> JSONResponse:
    """Each store: up or down; `status` is `degraded` when one is down."""
    from quant_platform.storage.cold import is_embedded

    st = state(request)

    def warm() -> dict[str, Any]:
        ping = st.warm.ping()
        return {"backend": ping.backend, "schema": ping.schema_version, "up_to_date": ping.up_to_date}

    def hot() -> dict[str, Any]:
        from quant_platform.storage.hot import hot_store_from_url

        store = hot_store_from_url(st.settings.stores.redis_url)
        try:
            ping = store.ping()
        finally:
            store.close()
        if not ping.ok:
            raise ConnectionError("hot store down")
        return {"backend": ping.backend}

    def dagster() -> dict[str, Any]:
        from quant_platform.grid.dagster.sensors import sensor_daemon_age

        age = sensor_daemon_age(st.dagster_instance())
        return {"sensor_daemon_heartbeat_age_s": None if age is None else round(age, 1)}

    dsn = st.settings.stores.clickhouse_dsn
    cold = (
        {"status": "not checked", "backend": "chdb", "note": "embedded: opened per request"}
        if is_embedded(dsn)
        else _check(lambda: {"backend": "clickhouse-http", "latency_ms": _cold_ping(st)})
    )
    stores = {"warm": _check(warm), "hot": _check(hot), "cold": cold, "dagster": _check(dagster)}
    ok = all(s["status"] != "down" for s in stores.values())
    body = schemas.Health(status="ok" if ok else "degraded", stores=stores, version=__version__)
    return JSONResponse(body.model_dump())


def _cold_ping(st) -> float:
    with st.cold() as cold:
        return cold.ping()["latency_ms"]
