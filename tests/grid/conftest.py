"""Fixtures of the grid-search tests: materialized klines (once per session), stores, Definitions.

Klines: synthetic quotes for 4 symbols over 2024-03-01 .. 2024-05-31 are written to a template cold
store, and `klines_daily` is materialized from them once per session. Every test then copies that
cold store into its own QP_HOME, so tests never share an embedded ClickHouse path.
Services (`mysql_url`, `redis_url`) come from tests/conftest.py.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from quant_platform.conventions import partition_range_tags
from quant_platform.core.calendar import get_calendar
from quant_platform.core.schema import RAW_QUOTES
from quant_platform.resources import (
    ClickHouseResource,
    HotCacheResource,
    SyntheticMarketResource,
    WarehouseResource,
)
from quant_platform.sources.synthetic import SyntheticMarket
from quant_platform.storage.cold import ColdStore
from quant_platform.storage.warm import WarmStore

START, END = "2024-03-01", "2024-05-31"
N_SYMBOLS = 4


@pytest.fixture(scope="session")
def klines_template(tmp_path_factory) -> Path:
    """A cold store with raw quotes and materialized klines_daily; copy it, never open it in place."""
    from quant_platform.definitions import ASSETS

    root = tmp_path_factory.mktemp("grid_klines")
    dsn = f"chdb://{root / 'chdb'}"
    market = SyntheticMarket(n_symbols=N_SYMBOLS, snapshot_seconds=300)
    days = get_calendar("XSHG").sessions(dt.date.fromisoformat(START), dt.date.fromisoformat(END))
    quotes = pd.concat([market.fetch_quotes(d) for d in days], ignore_index=True)
    with ColdStore(dsn) as cold:
        cold.ensure_schema()
        cold.replace_partitions(RAW_QUOTES, quotes, days)
    resources = {
        "clickhouse": ClickHouseResource(dsn=dsn),
        "market": SyntheticMarketResource(n_symbols=N_SYMBOLS, snapshot_seconds=300),
        "warehouse": WarehouseResource(url=f"sqlite:///{root / 'warehouse.sqlite'}"),
        "hot": HotCacheResource(),
    }
    daily = [a for a in ASSETS if a.partitions_def is not None]
    tags = partition_range_tags(dt.date.fromisoformat(START), dt.date.fromisoformat(END))
    result = dg.materialize(daily, resources=resources, tags=tags, selection=["klines_daily"])
    assert result.success
    return root / "chdb"


BARS_START, BARS_END = "2024-07-01", "2024-07-05"  # a week of intraday bars


@pytest.fixture(scope="session")
def bars_template(tmp_path_factory) -> Path:
    """A cold store with a week of 1/5/15-minute bars for 2 symbols; copy it, never open it in place."""
    from quant_platform.definitions import ASSETS

    root = tmp_path_factory.mktemp("grid_bars")
    dsn = f"chdb://{root / 'chdb'}"
    resources = {
        "clickhouse": ClickHouseResource(dsn=dsn),
        "market": SyntheticMarketResource(n_symbols=2, snapshot_seconds=60),
        "warehouse": WarehouseResource(url=f"sqlite:///{root / 'warehouse.sqlite'}"),
        "hot": HotCacheResource(),
    }
    daily = [a for a in ASSETS if a.partitions_def is not None]
    tags = partition_range_tags(dt.date.fromisoformat(BARS_START), dt.date.fromisoformat(BARS_END))
    selection = ["raw_quotes", "bars_1m", "bars_5m", "bars_15m"]
    assert dg.materialize(daily, resources=resources, tags=tags, selection=selection).success
    return root / "chdb"


@pytest.fixture
def bars_chdb_path(qp_home, bars_template) -> Path:
    path = qp_home / "chdb"
    shutil.copytree(bars_template, path, symlinks=True)
    return path


@pytest.fixture
def chdb_path(qp_home, klines_template) -> Path:
    path = qp_home / "chdb"
    shutil.copytree(klines_template, path, symlinks=True)  # the store links its tables relatively
    return path


@pytest.fixture
def warm_url(qp_home) -> str:
    return f"sqlite:///{qp_home / 'warehouse.sqlite'}"


@pytest.fixture
def warm(warm_url) -> Iterator[WarmStore]:
    store = WarmStore(warm_url, retry_initial=0.01)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def resources(chdb_path, warm_url, redis_url) -> dict:
    return {
        "clickhouse": ClickHouseResource(dsn=f"chdb://{chdb_path}"),
        "warehouse": WarehouseResource(url=warm_url),
        "hot": HotCacheResource(url=redis_url),
        "market": SyntheticMarketResource(n_symbols=N_SYMBOLS, snapshot_seconds=300),
    }


@pytest.fixture
def defs(resources) -> dg.Definitions:
    from quant_platform.definitions import ASSETS
    from quant_platform.grid.dagster import GRID_ASSETS, GRID_JOBS, GRID_SENSORS

    return dg.Definitions(
        assets=[*ASSETS, *GRID_ASSETS],
        jobs=GRID_JOBS,
        sensors=GRID_SENSORS,
        resources=resources,
        executor=dg.in_process_executor,
    )


def run_grid_request(dsn: str, warm: WarmStore, redis_url: str) -> dg.ExecuteInProcessResult:
    """One grid_request_sensor tick over `warm`, then the grid_search run it requested, in process."""
    from quant_platform.definitions import ASSETS
    from quant_platform.grid.dagster import GRID_ASSETS, GRID_JOBS
    from quant_platform.grid.dagster.sensors import evaluate_grid_requests

    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(instance=instance) as ctx:
        (run,) = evaluate_grid_requests(ctx, warm).run_requests
    defs = dg.Definitions(
        assets=[*ASSETS, *GRID_ASSETS],
        jobs=GRID_JOBS,
        resources={
            "clickhouse": ClickHouseResource(dsn=dsn),
            "warehouse": WarehouseResource(url=warm.url.render_as_string(hide_password=False)),
            "hot": HotCacheResource(url=redis_url),
            "market": SyntheticMarketResource(n_symbols=N_SYMBOLS, snapshot_seconds=300),
        },
        executor=dg.in_process_executor,
    )
    return defs.resolve_job_def("grid_search").execute_in_process(
        run_config=run.run_config, tags=run.tags, instance=instance, raise_on_error=False
    )


@pytest.fixture
def instance(qp_home) -> dg.DagsterInstance:
    """An in-memory instance: runs, event logs and asset records, without SQLite's per-event cost."""
    return dg.DagsterInstance.ephemeral()


@pytest.fixture(params=["sqlite", "mysql"])
def any_warm(request, tmp_path) -> Iterator[WarmStore]:
    """The warm tier on each engine."""
    url = (
        f"sqlite:///{tmp_path / 'warm.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("mysql_url")
    )
    store = WarmStore(url, retry_initial=0.01)
    store.migrate()
    yield store
    store.close()
