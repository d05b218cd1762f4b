"""The write-time gate: row rules split quotes; vendor-rejected rows join the same quarantine."""

import datetime as dt

import pandas as pd
import pytest

from quant_platform.assets import gate
from quant_platform.core.schema import QUARANTINE, RAW_QUOTES
from quant_platform.sources.synthetic import SyntheticMarket
from quant_platform.storage.cold import ColdStore

DAY = dt.date(2024, 10, 8)


class VendorWithRejects(SyntheticMarket):
    """A source that, like the AKShare adapter, hands back rows it could not map."""

    def take_rejected(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "trade_date": [pd.Timestamp(DAY), pd.Timestamp(DAY), pd.Timestamp("2024-10-09")],
                "table_name": ["raw_quotes", "klines_daily", "raw_quotes"],
                "symbol": ["600000.SH", "600000.SH", "600001.SH"],
                "ts": pd.Series([pd.NaT] * 3, dtype="datetime64[ms, UTC]"),
                "rule": ["vendor_bad_number", "vendor_bad_number", "vendor_bad_number"],
                "reason": ["最新价 is '-' (not a number)"] * 3,
                "payload": ['{"代码": "600000"}'] * 3,
            }
        )


def test_vendor_rejects_of_this_table_and_days_join_the_quarantine():
    source = VendorWithRejects(n_symbols=3, snapshot_seconds=60)
    checked = gate.gate("raw_quotes", {DAY: source.fetch_quotes(DAY)}, RAW_QUOTES, "XSHG")
    clean_rows = len(checked.clean)
    rejected = gate.vendor_rejected(source, "raw_quotes", [DAY])
    assert len(rejected) == 1 and rejected["symbol"].iloc[0] == "600000.SH"  # other table/day left out
    checked.add_quarantine(rejected)
    assert len(checked.clean) == clean_rows and len(checked.quarantine) == 1
    assert checked.metadata["quarantined_by_rule"] == {"vendor_bad_number": 1}
    assert list(checked.quarantine.columns) == QUARANTINE.names


def test_sources_without_rejects_add_nothing():
    assert gate.vendor_rejected(SyntheticMarket(n_symbols=2), "raw_quotes", [DAY]).empty


def test_bad_quotes_are_split_off_with_reasons():
    quotes = SyntheticMarket(n_symbols=2, snapshot_seconds=60).fetch_quotes(DAY)
    quotes.loc[3, "price"] = -5.0
    checked = gate.gate("raw_quotes", {DAY: quotes}, RAW_QUOTES, "XSHG")
    assert len(checked.clean) == len(quotes) - 1
    assert checked.quarantine["rule"].tolist() == ["non_positive_price"]
    assert checked.rows_in == len(quotes)


def test_a_row_of_another_day_is_quarantined_under_the_partition_and_the_day_is_written(chdb_dsn):
    """The quarantine write used to refuse a row dated outside the days being written, failing the
    whole day; now the row is filed under the partition it came with."""
    quotes = (
        SyntheticMarket(n_symbols=2, snapshot_seconds=60).fetch_quotes(DAY).astype({"trade_date": object})
    )
    quotes.loc[0, "trade_date"] = pd.Timestamp("2024-10-09")  # another trading day
    quotes.loc[1, "trade_date"] = None
    quotes.loc[2, "trade_date"] = "2024-13-45"
    checked = gate.gate("raw_quotes", {DAY: quotes}, RAW_QUOTES, "XSHG")
    assert checked.by_rule == {"trade_date_mismatch": 1, "missing_value": 1, "bad_type": 1}
    with ColdStore(chdb_dsn) as cold:
        cold.ensure_schema()
        gate.write(cold, RAW_QUOTES, checked, [DAY])
        stored = cold.read_table("quarantine", DAY, DAY)
        assert cold.count_by_day("raw_quotes", [DAY]) == {DAY: len(quotes) - 3}
        assert cold.read_table("quarantine", dt.date(2024, 10, 9), dt.date(2024, 10, 9)).empty
    assert sorted(stored["rule"]) == ["bad_type", "missing_value", "trade_date_mismatch"]
    mismatch = stored[stored["rule"] == "trade_date_mismatch"].iloc[0]
    assert '"trade_date": "2024-10-09T00:00:00"' in mismatch["payload"]
    assert "2024-10-09 differs from partition 2024-10-08" in mismatch["reason"]


class FailingWrite(ColdStore):
    """A cold store whose write of one table breaks (e.g. the server goes away mid-step)."""

    failing = RAW_QUOTES.name

    def replace_partitions(self, schema, df, days, scope=None):
        if schema.name == self.failing:
            raise ConnectionError("server went away")
        return super().replace_partitions(schema, df, days, scope=scope)


class CleanWriteFails(FailingWrite):
    failing = RAW_QUOTES.name


class QuarantineWriteFails(FailingWrite):
    failing = QUARANTINE.name


def test_quarantine_is_written_first_so_a_failed_clean_write_keeps_the_previous_version(chdb_dsn):
    quotes = SyntheticMarket(n_symbols=2, snapshot_seconds=60).fetch_quotes(DAY)
    with ColdStore(chdb_dsn) as cold:
        cold.ensure_schema()
        gate.write(cold, RAW_QUOTES, gate.gate("raw_quotes", {DAY: quotes}, RAW_QUOTES, "XSHG"), [DAY])
        before = cold.read_table("raw_quotes", DAY, DAY)
    assert len(before) == len(quotes)

    worse = quotes.copy()
    worse.loc[:9, "price"] = -1.0
    checked = gate.gate("raw_quotes", {DAY: worse}, RAW_QUOTES, "XSHG")
    with CleanWriteFails(chdb_dsn) as cold, pytest.raises(ConnectionError):
        gate.write(cold, RAW_QUOTES, checked, [DAY])
    with ColdStore(chdb_dsn) as cold:
        pd.testing.assert_frame_equal(cold.read_table("raw_quotes", DAY, DAY), before)  # previous version
        quarantined = cold.read_table("quarantine", DAY, DAY)
    assert len(quarantined) == 10  # the new quarantine explains what the retry will write

    with QuarantineWriteFails(chdb_dsn) as cold, pytest.raises(ConnectionError):
        gate.write(cold, RAW_QUOTES, gate.gate("raw_quotes", {DAY: quotes}, RAW_QUOTES, "XSHG"), [DAY])
    with ColdStore(chdb_dsn) as cold:  # nothing new reached the clean table without its quarantine
        pd.testing.assert_frame_equal(cold.read_table("raw_quotes", DAY, DAY), before)
