"""`quant_platform.client.Client` on embedded stores: validation, reads, hot/cold fallback."""

import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from quant_platform.client import Client, validate_symbols
from quant_platform.definitions import build_definitions
from quant_platform.resources import SyntheticMarketResource


@pytest.fixture
def filled(qp_home):
    defs = build_definitions(resources={"market": SyntheticMarketResource(n_symbols=5, snapshot_seconds=60)})
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-09-27", ASSET_PARTITION_RANGE_END_TAG: "2024-10-09"}
    assert defs.resolve_job_def("market_data_daily").execute_in_process(tags=tags).success
    return qp_home


def test_klines_and_bars(filled):
    with Client() as qp:
        k = qp.klines(["600000.SH", "600003.SH"], "2024-09-27", "2024-10-09", fields=["close", "volume"])
        assert list(k.columns) == ["symbol", "trade_date", "close", "volume"]
        assert set(k["symbol"]) == {"600000.SH", "600003.SH"}
        assert pd.Timestamp("2024-10-01") not in set(k["trade_date"])
        bars = qp.bars("600000.SH", "2024-10-08", "2024-10-08", freq="15m")
        assert len(bars) == 16
        assert qp.tables()["klines_daily"] > 0


def test_latest_quotes_fall_back_to_cold_when_redis_is_down(filled):
    with Client(redis_url="redis://127.0.0.1:1/0") as qp:
        quotes = qp.latest_quotes(["600001.SH", "600000.SH", "NOPE.SH"])
        assert list(quotes["symbol"]) == ["600001.SH", "600000.SH"]  # request order, unknown omitted
        assert (quotes["trade_date"] == pd.Timestamp("2024-10-09")).all()
        assert quotes["ts"].dt.tz_convert("Asia/Shanghai").dt.strftime("%H:%M").eq("15:00").all()


@pytest.mark.parametrize(
    "bad",
    ["600000.SH' OR 1=1 --", "", "a" * 40, "600000.SH;DROP TABLE klines_daily", 600000, "中国平安"],
)
def test_bad_symbols_are_rejected(bad):
    with pytest.raises(ValueError, match="invalid symbol"):
        validate_symbols([bad])


def test_bad_requests_are_clear_errors(qp_home):
    qp = Client()
    with pytest.raises(ValueError, match="expected YYYY-MM-DD"):
        qp.klines(["600000.SH"], "yesterday", "2024-10-09")
    with pytest.raises(ValueError, match="before start"):
        qp.klines(["600000.SH"], "2024-10-09", "2024-10-01")
    with pytest.raises(ValueError, match="no field"):
        qp.klines(["600000.SH"], "2024-10-01", "2024-10-09", fields=["close; DROP TABLE x"])
    with pytest.raises(ValueError, match="freq must be"):
        qp.bars(["600000.SH"], "2024-10-01", "2024-10-09", freq="2m")
    with pytest.raises(ValueError, match="no symbols"):
        qp.klines([], "2024-10-01", "2024-10-09")
    qp.close()


def test_symbols_are_checked_in_one_pass_but_a_bad_one_is_still_named() -> None:
    many = [f"{600000 + i}.SH" for i in range(10_000)]
    assert validate_symbols(many + many[:10]) == many  # de-duplicated, in order
    with pytest.raises(ValueError, match=r"invalid symbol 'x y'"):
        validate_symbols([*many[:5000], "x y", *many[5000:6000]])
    with pytest.raises(ValueError, match="invalid symbol 7"):
        validate_symbols(["600000.SH", 7])
    with pytest.raises(ValueError, match="symbols must be strings"):
        validate_symbols([["600000.SH"]])
    with pytest.raises(ValueError, match="at most 10000"):
        validate_symbols([*many, "000001.SZ"])
