"""GET /metrics: the pipeline metrics (`quant_platform.ops.metrics`) in Prometheus text format.

Read from the Dagster instance and the warm / hot tiers at each scrape; no credentials or addresses
in the series. Not in the OpenAPI document (it is for Prometheus, not API clients).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from quant_platform.ops.metrics import instance_at, registry

    state = request.app.state
    reg = getattr(state, "qp_metrics", None)
    if reg is None:
        current = state.qp.settings
        reg = state.qp_metrics = registry(
            instance_at(current.dagster_home), current.stores.warehouse_url, current.stores.redis_url
        )
    return Response(generate_latest(reg), media_type=CONTENT_TYPE_LATEST)
