"""`store_step`: transient store errors reach STORE_RETRY, deterministic ones fail after one attempt."""

import inspect

import dagster as dg
import pytest
import sqlalchemy as sa
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from quant_platform.assets.common import is_transient, store_errors, store_step
from quant_platform.assets.market_data import raw_quotes
from quant_platform.resources import ClickHouseResource, HotCacheResource, MarketDataResource
from quant_platform.sources.ratelimit import SourceUnavailable
from quant_platform.sources.synthetic import SyntheticMarket
from quant_platform.storage.cold import ColdStoreError, ColdStoreLocked
from quant_platform.storage.hot.errors import HotStoreError, HotStoreUnavailable
from quant_platform.storage.warm.errors import NotFound, StoreUnavailable

ATTEMPTS: list[str] = []  # one entry per fetch_quotes call, i.e. per attempt of the step


class FlakySource(SyntheticMarket):
    """Raises `error` on the first `failures` calls of fetch_quotes, then serves synthetic quotes."""

    def __init__(self, error: str, failures: int) -> None:
        super().__init__(n_symbols=2, snapshot_seconds=300)
        object.__setattr__(self, "error", error)
        object.__setattr__(self, "failures", failures)

    def fetch_quotes(self, day, symbols=None):
        ATTEMPTS.append(self.error)
        if len(ATTEMPTS) <= self.failures:
            raise {"value": ValueError, "connection": ConnectionError}[self.error](
                f"{self.error} error #{len(ATTEMPTS)}"
            )
        return super().fetch_quotes(day, symbols)


class FlakyMarket(MarketDataResource):
    error: str = "value"
    failures: int = 1

    def source(self):
        return FlakySource(self.error, self.failures)


def _run(chdb_dsn, market: MarketDataResource) -> dg.ExecuteInProcessResult:
    ATTEMPTS.clear()
    resources = {"market": market, "clickhouse": ClickHouseResource(dsn=chdb_dsn), "hot": HotCacheResource()}
    return dg.materialize([raw_quotes], resources=resources, partition_key="2024-10-08", raise_on_error=False)


def _retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(1 for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY)


def test_a_deterministic_error_fails_after_one_attempt(chdb_dsn):
    result = _run(chdb_dsn, FlakyMarket(error="value", failures=99))
    assert not result.success
    assert len(ATTEMPTS) == 1 and _retries(result) == 0
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    error = failure.step_failure_data.user_failure_data
    assert error.description == "ValueError: value error #1"  # the original type and message
    assert error.metadata["error_type"].value == "builtins.ValueError"


def test_a_transient_error_is_retried(chdb_dsn):
    result = _run(chdb_dsn, FlakyMarket(error="connection", failures=1))
    assert result.success
    assert len(ATTEMPTS) == 2 and _retries(result) == 1


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionError("refused"),
        TimeoutError("timed out"),
        OSError("disk went away"),
        OperationalError("HTTP connection failed"),
        ColdStoreLocked("held by pid 1"),
        ColdStoreError("cannot connect"),
        StoreUnavailable("warm store down"),
        HotStoreUnavailable("redis down"),
        SourceUnavailable("vendor kept failing"),
        sa.exc.OperationalError("SELECT 1", {}, Exception("database is locked")),
    ],
    ids=type,
)
def test_transient_errors_pass_through_to_the_retry_policy(exc):
    assert is_transient(exc)
    with pytest.raises(type(exc)), store_errors():
        raise exc


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("quarantine: rows outside the days being written"),
        KeyError("price"),
        TypeError("unsupported operand"),
        DatabaseError("Code: 60. Unknown table"),
        NotFound("no such run"),
        HotStoreError("OOM command not allowed"),
    ],
    ids=type,
)
def test_deterministic_errors_become_failures_that_are_not_retried(exc):
    assert not is_transient(exc)
    with pytest.raises(dg.Failure) as info, store_errors("raw_quotes"):
        raise exc
    assert info.value.allow_retries is False
    assert info.value.description == f"{type(exc).__name__}: {exc}"
    assert info.value.__cause__ is exc


def test_failures_raised_on_purpose_pass_unchanged():
    own = dg.Failure("klines_daily is empty", allow_retries=False)
    with pytest.raises(dg.Failure) as info, store_errors():
        raise own
    assert info.value is own


def test_store_step_keeps_the_signature_and_generators():
    def body(context: dg.AssetExecutionContext, market: MarketDataResource) -> int:
        raise ValueError("bad")

    def gen(context: dg.AssetExecutionContext):
        yield 1
        raise ValueError("bad after a yield")

    wrapped = store_step(body)
    assert inspect.signature(wrapped) == inspect.signature(body) and wrapped.__name__ == "body"
    with pytest.raises(dg.Failure, match="ValueError: bad"):
        wrapped(None, None)
    stream = store_step(gen)(None)
    assert inspect.isgeneratorfunction(store_step(gen)) and next(stream) == 1
    with pytest.raises(dg.Failure, match="bad after a yield"):
        next(stream)
