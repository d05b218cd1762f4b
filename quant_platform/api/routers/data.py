"""Market data: daily klines and latest quotes, through `Client`, bounded by `core/limits.py`.

Each request opens the cold store and closes it before answering (see `state.ApiState.cold`).
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Query, Request

from quant_platform.api import schemas
from quant_platform.api.auth import Principal, requires
from quant_platform.api.errors import invalid
from quant_platform.api.routers.common import frame_rows, state
from quant_platform.core.identity import DATA_READ

router = APIRouter(tags=["data"])

MAX_ROWS = 200_000  # one response; narrow the symbols or the window for more
SymbolsQuery = Query(
    ...,
    min_length=1,
    max_length=2_000,
    description="Comma-separated symbols (up to 2,000 characters), e.g. 600000.SH,000001.SZ",
)


def _symbols(raw: str) -> list[str]:
    from quant_platform.client import validate_symbols
    from quant_platform.core.limits import check_symbol_count

    names = [s.strip() for s in raw.split(",") if s.strip()]
    try:
        check_symbol_count(len(names))
        return validate_symbols(names)
    except ValueError as exc:
        raise invalid(str(exc)[:500], {"field": "symbols"}) from None


def _client(st, cold):
    from quant_platform.client import Client

    stores = st.settings.stores
    client = Client(stores.clickhouse_dsn, stores.warehouse_url, stores.redis_url)
    client._cold = cold  # the request's cold store, opened and closed by ApiState.cold
    return client


@router.get("/klines", response_model=schemas.Rows)
def klines(
    request: Request,
    symbols: str = SymbolsQuery,
    start: dt.date = Query(..., description="First trading day, YYYY-MM-DD"),
    end: dt.date = Query(..., description="Last trading day, YYYY-MM-DD"),
    principal: Principal = Depends(requires(DATA_READ)),
) -> dict:
    """Daily klines of `symbols` for trading days in [start, end]."""
    from quant_platform.core.limits import check_window

    st = state(request)
    names = _symbols(symbols)
    try:
        check_window(start, end, st.settings.calendar)
    except ValueError as exc:
        raise invalid(str(exc)[:500], {"field": "start/end"}) from None
    with st.cold() as cold:
        df = _client(st, cold).klines(names, start, end)
    if len(df) > MAX_ROWS:
        raise invalid(
            f"{len(df):,} rows is more than {MAX_ROWS:,}: ask for fewer symbols or a shorter window"
        )
    return frame_rows(df)


@router.get("/quotes/latest", response_model=schemas.Rows)
def latest_quotes(
    request: Request,
    symbols: str = SymbolsQuery,
    principal: Principal = Depends(requires(DATA_READ)),
) -> dict:
    """The newest snapshot per symbol: hot tier first, the cold tier for what it lacks."""
    st = state(request)
    names = _symbols(symbols)
    with st.cold() as cold:
        client = _client(st, cold)
        try:
            df = client.latest_quotes(names)
        finally:
            if client._hot is not None:
                client._hot.close()
    return frame_rows(df)
