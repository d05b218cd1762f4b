"""`raw_quotes` materialized for real (in-process, embedded cold store): what it checks each day against."""

import datetime as dt

import dagster as dg
import pandas as pd
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from quant_platform.assets.market_data import raw_quotes, snapshots_until
from quant_platform.core.quality.gate import gate
from quant_platform.core.schema import RAW_QUOTES
from quant_platform.resources import ClickHouseResource, HotCacheResource, MarketDataResource
from quant_platform.sources.synthetic import SyntheticMarket
from quant_platform.storage.cold import ColdStore

DAYS = [dt.date(2024, 9, 30), dt.date(2024, 10, 8)]  # consecutive sessions around National Day


class ShrinkingUniverse(SyntheticMarket):
    """Six symbols trade on both days, but three of them left the universe on the second day."""

    def universe(self, day=None):
        symbols = super().universe(day)
        return symbols if day == DAYS[0] else symbols[:3]


class ShrinkingUniverseResource(MarketDataResource):
    def source(self):
        return ShrinkingUniverse(n_symbols=6, snapshot_seconds=60)


def test_each_day_is_checked_against_its_own_universe(chdb_dsn):
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-09-30", ASSET_PARTITION_RANGE_END_TAG: "2024-10-08"}
    resources = {
        "market": ShrinkingUniverseResource(),
        "clickhouse": ClickHouseResource(dsn=chdb_dsn),
        "hot": HotCacheResource(),
    }
    assert dg.materialize([raw_quotes], resources=resources, tags=tags).success
    source = ShrinkingUniverseResource().source()
    with ColdStore(chdb_dsn) as cold:
        stored = {day: cold.read_table("raw_quotes", day, day) for day in DAYS}
        quarantined = {day: cold.read_table("quarantine", day, day) for day in DAYS}
    first, second = DAYS
    # The first day keeps every symbol of its own universe (checking it against the second day's
    # universe quarantined half of its good rows as unknown_symbol).
    assert len(stored[first]) == len(source.fetch_quotes(first)) and quarantined[first].empty
    left = set(source.universe(first)) - set(source.universe(second))
    second_quotes = source.fetch_quotes(second)
    assert set(quarantined[second]["rule"]) == {"unknown_symbol"}
    assert set(quarantined[second]["symbol"]) == left & set(second_quotes["symbol"])
    assert len(stored[second]) + len(quarantined[second]) == len(second_quotes)


def test_gate_takes_one_universe_a_mapping_or_a_callable():
    quotes = {day: SyntheticMarket(n_symbols=4, snapshot_seconds=300).fetch_quotes(day) for day in DAYS}
    symbols = SyntheticMarket(n_symbols=4).universe()
    per_day = {DAYS[0]: symbols, DAYS[1]: symbols[:2]}
    by_mapping = gate("raw_quotes", quotes, RAW_QUOTES, "XSHG", universe=per_day)
    by_callable = gate("raw_quotes", quotes, RAW_QUOTES, "XSHG", universe=per_day.get)
    one_list = gate("raw_quotes", quotes, RAW_QUOTES, "XSHG", universe=iter(symbols))
    assert one_list.quarantine.empty
    for result in (by_mapping, by_callable):
        days = pd.DatetimeIndex(result.quarantine["trade_date"]).date
        assert set(days) == {DAYS[1]} and set(result.quarantine["rule"]) == {"unknown_symbol"}


def test_intraday_cut_keeps_unreadable_ts_for_the_gate():
    """The as-of cut of an intraday refresh compared text with Timestamps and failed the day."""
    quotes = SyntheticMarket(n_symbols=1, snapshot_seconds=300).fetch_quotes(DAYS[1]).head(6)
    mixed = quotes.astype({"ts": object})
    mixed.loc[1, "ts"] = "not a time"
    mixed.loc[2, "ts"] = None
    mixed.loc[3, "ts"] = quotes.loc[3, "ts"].tz_convert("Asia/Shanghai").isoformat()
    as_of = quotes.loc[3, "ts"]
    assert list(snapshots_until(mixed, as_of).index) == [0, 1, 2, 3]
    assert list(snapshots_until(quotes, as_of).index) == [0, 1, 2, 3]
