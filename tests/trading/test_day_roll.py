"""The position day roll as a Dagster job on its after-close schedule, against a real Redis."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import dagster as dg
import pytest

from quant_platform.resources.hot import HotCacheResource
from quant_platform.resources.warehouse import WarehouseResource
from quant_platform.storage.hot import RedisHotStore
from quant_platform.storage.warm import WarmStore
from quant_platform.trading.dagster import day_roll_after_close, position_day_roll_job


@pytest.fixture
def hot(redis_url: str) -> Iterator[RedisHotStore]:
    """The job's own key namespace (`qp:`) in the test database; the test's accounts are unique."""
    store = RedisHotStore(redis_url)
    yield store
    store.close()


def _roll(day: str, warm_url: str, redis_url: str, **kwargs) -> dg.ExecuteInProcessResult:
    return position_day_roll_job.execute_in_process(
        run_config={"ops": {"roll_position_days": {"config": {"date": day}}}},
        resources={"warehouse": WarehouseResource(url=warm_url), "hot": HotCacheResource(url=redis_url)},
        **kwargs,
    )


@pytest.fixture
def own_warm_url(request: pytest.FixtureRequest, warm_url: str) -> str:
    """The job rolls every active account of its warm store: on MariaDB, a database of the test's own."""
    if warm_url.startswith("sqlite"):
        return warm_url
    return request.getfixturevalue("mysql_database_factory")()


def test_the_job_rolls_active_accounts_once_per_day(own_warm_url: str, redis_url: str, hot) -> None:
    warm_url = own_warm_url
    active, paused = (f"roll-{uuid.uuid4().hex[:8]}" for _ in range(2))
    warm = WarmStore(warm_url)
    warm.migrate()
    warm.create_account(active, initial_cash=100)
    warm.create_account(paused, initial_cash=100)
    warm.set_account_status(paused, "inactive")
    try:
        for acc in (active, paused):
            hot.open_position(acc, "600000.SH", 10.0)
            hot.open_position(acc, "600001.SH", 20.0, held_days=3)
        first = _roll("2024-10-08", warm_url, redis_url)
        assert first.success and first.output_for_node("roll_position_days") == {active: 2}
        again = _roll("2024-10-08", warm_url, redis_url)  # a retried run of the same day
        assert again.output_for_node("roll_position_days") == {active: 0}
        assert _roll("2024-10-09", warm_url, redis_url).output_for_node("roll_position_days") == {active: 2}
        held = {s: p.held_days for s, p in hot.get_positions(active).items()}
        assert held == {"600000.SH": 2, "600001.SH": 5}
        assert hot.get_position(paused, "600000.SH").held_days == 0  # inactive accounts are not rolled
    finally:
        for acc in (active, paused):
            for sym in ("600000.SH", "600001.SH"):
                hot.close_position(acc, sym)
            hot.client.delete(f"qp:pos:{acc}:rolled")  # the last rolled day of the test's account
        warm.close()


def test_the_job_fails_while_the_hot_tier_is_down(warm_url: str) -> None:
    warm = WarmStore(warm_url)
    warm.migrate()
    warm.create_account(f"roll-{uuid.uuid4().hex[:8]}", initial_cash=100)
    warm.close()
    result = _roll("2024-10-08", warm_url, "redis://127.0.0.1:1/0", raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("roll_position_days")
    assert "unavailable" in str(failure.error.message)


@pytest.mark.parametrize(
    ("when", "key"),
    [("2024-10-08T15:45", "day-roll-2024-10-08"), ("2024-10-01T15:45", None), ("2024-10-05T15:45", None)],
    ids=["trading-day", "national-day", "saturday"],
)
def test_the_schedule_runs_after_the_close_on_trading_days(when: str, key: str | None) -> None:
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime.fromisoformat(when + "+08:00"))
    result = day_roll_after_close(ctx)
    if key is None:
        assert isinstance(result, dg.SkipReason) and "not a XSHG trading day" in result.skip_message
    else:
        assert isinstance(result, dg.RunRequest) and result.run_key == key
        assert result.run_config["ops"]["roll_position_days"]["config"]["date"] == when[:10]
