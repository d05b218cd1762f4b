"""The write-time gate: row rules split quotes; vendor-rejected rows join the same quarantine."""

import datetime as dt

import pandas as pd

from quant_platform.assets import gate
from quant_platform.core.schema import QUARANTINE, RAW_QUOTES
from quant_platform.sources.synthetic import SyntheticMarket

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
