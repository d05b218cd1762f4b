"""The HTTP API (FastAPI under uvicorn): `quant-platform serve`, app factory `create_app(settings)`.

- `app.py`: the app factory, middlewares (body size cap, rate-limit headers) and routers under `/api/v1`;
- `errors.py`: the one error model `{"error": {"code", "message", "details"}}` and its handlers;
- `auth.py`: access tokens (HS256 JWT) and API keys, both `Authorization: Bearer ...`, permissions;
- `ratelimit.py`, `idempotency.py`: per-user limits (`limits`), `Idempotency-Key` on POSTs;
- `routers/`: one module per resource; `schemas.py`: request and response bodies;
- `cli.py`: `quant-platform users ...` and `quant-platform serve`;
- `dagster/`: the `backtest_request` job and the sensor that launches requested runs.

Importing this package imports no web framework; `create_app` does.
"""
