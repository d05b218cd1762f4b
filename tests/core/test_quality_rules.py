"""Row rules and table rules of the data-quality gate, on small hand-made frames."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from quant_platform import quality
from quant_platform.core.schema import BARS_1M, BARS_5M, KLINES_DAILY, QUARANTINE, RAW_QUOTES

DAY = dt.date(2024, 10, 8)  # a Tuesday; XSHG trades 01:30-03:30 and 05:00-07:00 UTC
SYMBOLS = ["600000.SH", "000001.SZ"]
OPEN_UTC = pd.Timestamp("2024-10-08 01:30", tz="UTC")


def make_quotes(
    n: int = 6, symbols=SYMBOLS, day: dt.date = DAY, start: pd.Timestamp = OPEN_UTC
) -> pd.DataFrame:
    """n snapshots per symbol, 3 s apart from 09:31 local, conforming to RAW_QUOTES."""
    rows = []
    for k, sym in enumerate(symbols):
        prev_close = 10.0 + k
        volume = amount = 0
        high = low = open_ = prev_close + 0.05
        for i in range(n):
            price = round(open_ + 0.01 * ((i % 3) - 1), 2)
            high, low = max(high, price), min(low, price)
            volume += 100 * (i + 1)
            amount = round(amount + 100 * (i + 1) * price, 2)
            rows.append(
                {
                    "symbol": sym,
                    "trade_date": pd.Timestamp(day),
                    "ts": start + pd.Timedelta(minutes=1, seconds=3 * i),
                    "price": price,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "prev_close": prev_close,
                    "volume": volume,
                    "amount": amount,
                    "bid": round(price - 0.01, 2),
                    "ask": round(price + 0.01, 2),
                }
            )
    return RAW_QUOTES.conform(pd.DataFrame(rows))


def make_bars(n: int = 4, freq_minutes: int = 1, symbols=SYMBOLS) -> pd.DataFrame:
    rows = []
    for k, sym in enumerate(symbols):
        close = 10.0 + k
        for i in range(n):
            o = close
            c = round(o + 0.02 * ((-1) ** i), 2)
            rows.append(
                {
                    "symbol": sym,
                    "trade_date": pd.Timestamp(DAY),
                    "ts": OPEN_UTC + pd.Timedelta(minutes=freq_minutes * (i + 1)),
                    "open": o,
                    "high": max(o, c) + 0.01,
                    "low": min(o, c) - 0.01,
                    "close": c,
                    "volume": 1000 * (i + 1),
                    "amount": 1000.0 * (i + 1) * c,
                    "change_rate": c / o - 1,
                }
            )
            close = c
    schema = BARS_1M if freq_minutes == 1 else BARS_5M
    return schema.conform(pd.DataFrame(rows))


def make_klines(symbols=SYMBOLS, day: dt.date = DAY) -> pd.DataFrame:
    rows = []
    for k, sym in enumerate(symbols):
        prev = 10.0 + k
        close = round(prev * 1.03, 2)
        rows.append(
            {
                "symbol": sym,
                "trade_date": pd.Timestamp(day),
                "open": prev,
                "high": close + 0.05,
                "low": prev - 0.05,
                "close": close,
                "prev_close": prev,
                "volume": 123400,
                "amount": 1.25e6,
                "change_rate": close / prev - 1,
                "limit_up": round(prev * 1.1, 2),
                "limit_down": round(prev * 0.9, 2),
            }
        )
    return KLINES_DAILY.conform(pd.DataFrame(rows))


def assert_survivors_unchanged(
    clean: pd.DataFrame, original: pd.DataFrame, dropped_labels, schema=RAW_QUOTES
):
    """Clean rows are exactly the original rows minus the quarantined ones (sorted by the key)."""
    keys = list(schema.order_by)
    expected = (
        schema.conform(original.drop(index=list(dropped_labels))).sort_values(keys).reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(clean, expected)


def only(quarantined: pd.DataFrame) -> pd.Series:
    assert len(quarantined) == 1, quarantined[["rule", "reason"]]
    return quarantined.iloc[0]


# --------------------------------------------------------------------------------------------------
# happy path and bookkeeping


def test_clean_frame_passes_unchanged():
    q = make_quotes()
    result = quality.split_quotes(q, trade_date=DAY, universe=SYMBOLS)
    clean, quarantined = result
    assert quarantined.empty
    assert list(quarantined.columns) == [*RAW_QUOTES.names, "rule", "reason"]
    assert_survivors_unchanged(clean, q, [])
    assert result.metadata["rows_in"] == len(q) and result.metadata["quarantined_share"] == 0.0
    assert str(clean["ts"].dtype) == "datetime64[ms, UTC]"


def test_every_row_lands_in_exactly_one_output():
    q = make_quotes(n=20)
    bad = q.copy()
    bad.loc[1, "price"] = np.nan
    bad.loc[2, "high"] = 1.0
    bad.loc[3, "volume"] = -5
    bad.loc[4, "ts"] = pd.Timestamp("2024-10-08 04:00", tz="UTC")
    bad = pd.concat([bad, bad.iloc[[7, 8]]])  # duplicated labels too
    clean, quarantined = quality.split_quotes(bad, trade_date=DAY)
    assert len(clean) + len(quarantined) == len(bad)
    assert len(quarantined) == 6
    assert set(quarantined["rule"]) <= set(quality.RULES)
    assert quarantined["reason"].str.len().gt(0).all()


def test_several_rules_first_rule_wins_and_reasons_are_joined():
    q = make_quotes()
    q.loc[0, "symbol"] = "999999.SH"
    q.loc[0, "price"] = -1.0
    r = only(quality.split_quotes(q, universe=SYMBOLS).quarantined)
    assert r["rule"] == "non_positive_price"
    assert (
        r["reason"]
        == "price=-1 <= 0; low 10.04 > min(open 10.05, price -1); symbol 999999.SH not in the universe"
    )


# --------------------------------------------------------------------------------------------------
# malformed input classes


def test_nan_price_is_missing_value():
    q = make_quotes()
    q.loc[3, "price"] = np.nan
    clean, quarantined = quality.split_quotes(q, trade_date=DAY)
    r = only(quarantined)
    assert (r["rule"], r["reason"]) == ("missing_value", "price is NaN/null")
    assert np.isnan(r["price"])  # original value kept
    assert_survivors_unchanged(clean, q, [3])


def test_inf_is_non_finite():
    q = make_quotes()
    q.loc[4, "amount"] = np.inf
    clean, quarantined = quality.split_quotes(q, trade_date=DAY)
    r = only(quarantined)
    assert (r["rule"], r["reason"]) == ("non_finite", "amount=inf is not finite")
    assert_survivors_unchanged(clean, q, [4])


@pytest.mark.parametrize(("value", "reason"), [(0.0, "prev_close=0 <= 0"), (-3.5, "prev_close=-3.5 <= 0")])
def test_zero_or_negative_price(value, reason):
    q = make_quotes()
    q.loc[2, "prev_close"] = value
    clean, quarantined = quality.split_quotes(q, trade_date=DAY)
    r = only(quarantined)
    assert (r["rule"], r["reason"]) == ("non_positive_price", reason)
    assert_survivors_unchanged(clean, q, [2])


def test_strings_in_numeric_columns_are_coerced_per_value():
    q = make_quotes()
    text = q.astype({"price": object, "volume": object})
    text.loc[1, "price"] = "abc"
    text.loc[2, "price"] = str(q.loc[2, "price"])  # a readable number as text survives
    text.loc[5, "volume"] = "12.5"  # not a whole number of shares
    clean, quarantined = quality.split_quotes(text, trade_date=DAY)
    assert list(quarantined["rule"]) == ["bad_type", "bad_type"]
    assert list(quarantined["reason"]) == ["price='abc' is not a number", "volume=12.5 is not an integer"]
    assert quarantined.loc[1, "price"] == "abc"  # quarantine keeps the original text
    assert clean["price"].dtype == np.float64 and clean["volume"].dtype == np.int64
    assert_survivors_unchanged(clean, q, [1, 5])


def test_non_numbers_in_numeric_columns_are_bad_type_and_numbers_of_any_kind_are_read():
    from decimal import Decimal

    q = make_quotes(n=12, symbols=["600000.SH"])
    mixed = q.astype({"price": object, "amount": object})
    mixed.loc[0, "price"] = True
    mixed.loc[1, "price"] = b"10.05"
    mixed.at[2, "price"] = [10.05]
    mixed.at[3, "price"] = {"v": 10.05}
    mixed.loc[4, "price"] = Decimal("NaN")
    mixed.loc[5, "price"] = complex(10, 1)
    mixed.loc[6, "price"] = Decimal(str(q.loc[6, "price"]))  # numbers of any kind are fine
    mixed.loc[7, "price"] = np.float32(q.loc[7, "price"]).item()
    mixed.loc[8, "amount"] = (
        int(q.loc[8, "amount"]) if q.loc[8, "amount"].is_integer() else str(q.loc[8, "amount"])
    )
    mixed.loc[9, "amount"] = np.float64(q.loc[9, "amount"])
    clean, quarantined = quality.split_quotes(mixed, trade_date=DAY)
    assert set(quarantined["rule"]) == {"bad_type"} and list(quarantined.index) == [0, 1, 2, 3, 4, 5]
    assert list(quarantined["reason"].str.split("; ").str[0]) == [
        "price=True is a boolean, not a number",
        "price=b'10.05' is bytes, not a number",
        "price=[10.05] is list, not a number",
        "price={'v': 10.05} is dict, not a number",
        "price=Decimal('NaN') is a Decimal NaN, not a number",
        "price=(10+1j) is complex, not a number",
    ]
    assert quarantined.loc[0, "price"] is True  # kept as it came
    assert len(clean) == 6 and clean["price"].dtype == np.float64
    assert clean.loc[clean["ts"] == q.loc[6, "ts"], "price"].item() == q.loc[6, "price"]


def test_bool_column_is_bad_type():
    q = make_quotes(n=2, symbols=["600000.SH"]).assign(bid=[True, False])
    assert set(quality.split_quotes(q).quarantined["reason"]) == {
        "bid=True is a boolean, not a number",
        "bid=False is a boolean, not a number",
    }


def test_numbers_too_large_to_be_real_or_to_store_are_out_of_range():
    from decimal import Decimal

    q = make_quotes(n=10, symbols=["600000.SH"])
    big = q.astype({"price": object, "volume": object, "amount": object})
    big.loc[0, "volume"] = 1e20  # beyond int64: used to wrap round to a negative volume
    big.loc[1, "volume"] = 2 * 10**15  # fits int64, but no share ever traded that much
    big.loc[2, "price"] = "1" * 400  # float("1" * 400) is inf
    big.loc[3, "price"] = Decimal("1e400")
    big.loc[4, "price"] = 10**400
    big.loc[5, "amount"] = 1e19
    big.loc[6, "volume"] = "100000000000000000000"
    big.loc[7, "price"] = "inf"  # a real infinity is non_finite, not out_of_range
    clean, quarantined = quality.split_quotes(big, trade_date=DAY)
    rules = dict(zip(quarantined.index, quarantined["rule"], strict=True))
    assert rules == {i: "out_of_range" for i in range(7)} | {7: "non_finite"}
    first = quarantined["reason"].str.split("; ").str[0]
    assert first[0] == "volume=1e+20 does not fit int64"
    assert first[1] == "volume=2e+15 is above the plausible maximum 1e+15"
    assert first[2] == "price='" + "1" * 31 + "... (400 characters) is too large for float64"
    assert first[3] == "price=Decimal('1E+400') is too large for float64"
    assert first[5] == "amount=1e+19 is above the plausible maximum 1e+18"
    assert first[7] == "price=inf is not finite"
    assert quarantined.loc[2, "price"] == "1" * 400  # the original text stays in the quarantine
    assert_survivors_unchanged(clean, q, range(8))


def test_price_above_the_plausible_maximum():
    q = make_quotes(n=2, symbols=["600000.SH"])
    q.loc[1, ["price", "high"]] = 2e7
    r = only(quality.split_quotes(q).quarantined)
    assert r["rule"] == "out_of_range" and r["reason"].startswith(
        "price=20000000 is above the plausible maximum 1e+07; high=20000000 is above"
    )


def test_crossed_book():
    q = make_quotes(n=4, symbols=["600000.SH"])
    q.loc[1, ["bid", "ask"]] = [10.2, 10.1]  # crossed
    q.loc[2, ["bid", "ask"]] = [10.1, 10.1]  # locked: bid == ask is tradable
    q.loc[3, ["bid", "ask"]] = [10.2, 0.0]  # no ask at all (e.g. limit-up): not crossed
    clean, quarantined = quality.split_quotes(q, trade_date=DAY)
    r = only(quarantined)
    assert (r.name, r["rule"], r["reason"]) == (1, "crossed_book", "crossed book: bid 10.2 > ask 10.1")
    assert_survivors_unchanged(clean, q, [1])


def test_quarantine_rows_are_filed_under_the_partition_day():
    q = make_quotes(n=4, symbols=["600000.SH"]).astype({"trade_date": object})
    q.loc[0, "trade_date"] = pd.Timestamp("2024-10-09")  # another trading day
    q.loc[1, "trade_date"] = None
    q.loc[2, "trade_date"] = "not a date"
    result = quality.split_quotes(q, trade_date=DAY)
    assert list(result.quarantined["rule"]) == ["trade_date_mismatch", "missing_value", "bad_type"]
    table = quality.to_quarantine_table(result)
    assert set(table["trade_date"]) == {pd.Timestamp(DAY)}
    assert '"trade_date": "2024-10-09T00:00:00"' in table.loc[0, "payload"]  # its own day stays visible
    assert table.loc[0, "reason"].startswith("trade_date 2024-10-09 differs from partition 2024-10-08")
    unpartitioned = quality.to_quarantine_table(result.quarantined.iloc[[0]], "raw_quotes")
    assert unpartitioned["trade_date"].tolist() == [pd.Timestamp("2024-10-09")]
    with pytest.raises(ValueError, match="readable trade_date"):
        quality.to_quarantine_table(result.quarantined, "raw_quotes")


def test_naive_timestamps_raise():
    q = make_quotes()
    q["ts"] = q["ts"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="naive"):
        quality.split_quotes(q, trade_date=DAY)


def test_naive_values_in_a_text_column_are_quarantined():
    q = make_quotes()
    text = q.astype({"ts": object})
    text["ts"] = [t.isoformat() for t in q["ts"]]
    text.loc[0, "ts"] = "2024-10-08 01:31:00"  # no zone
    text.loc[1, "ts"] = "not a time"
    clean, quarantined = quality.split_quotes(text, trade_date=DAY)
    assert list(quarantined["rule"]) == ["bad_type", "bad_type"]
    assert quarantined.loc[0, "reason"].startswith("ts='2024-10-08 01:31:00' is naive")
    assert quarantined.loc[1, "reason"] == "ts='not a time' is not a timestamp"
    assert_survivors_unchanged(clean, q, [0, 1])


def test_non_utc_timestamps_are_converted():
    q = make_quotes()
    local = q.assign(ts=q["ts"].dt.tz_convert("Asia/Shanghai"))
    result = quality.split_quotes(local, trade_date=DAY)
    assert result.quarantined.empty
    assert_survivors_unchanged(result.clean, q, [])
    assert any("Asia/Shanghai" in w for w in result.warnings)


def test_exact_duplicates_keep_the_first_copy_conflicting_ones_lose_every_version():
    q = make_quotes()
    exact = q.iloc[[2]].rename(index={2: 100})
    conflicting = q.iloc[[3]].rename(index={3: 101}).assign(price=q.loc[3, "price"] + 0.01)
    dup = pd.concat([q, exact, conflicting])
    result = quality.split_quotes(dup, trade_date=DAY)
    clean, quarantined = result
    assert list(quarantined.index) == [3, 100, 101]
    assert quarantined.loc[100, "rule"] == "duplicate"
    assert quarantined.loc[100, "reason"] == "duplicate of row 2 (symbol + ts); identical copy"
    assert list(quarantined.loc[[3, 101], "rule"]) == ["conflicting_duplicate"] * 2
    assert quarantined.loc[101, "reason"] == (
        "2 versions of one symbol + ts (rows 3, 101) differ in price; every version is quarantined"
    )
    assert quarantined.loc[101, "price"] == q.loc[3, "price"] + 0.01  # both versions kept as they came
    assert (result.metadata["exact_duplicates"], result.metadata["conflicting_duplicates"]) == (1, 2)
    assert_survivors_unchanged(clean, q, [3])


def test_conflicting_versions_are_all_quarantined_even_with_an_exact_copy_among_them():
    q = make_quotes(n=3, symbols=["600000.SH"])
    versions = pd.concat(
        [q, q.iloc[[1]], q.iloc[[1]].assign(volume=q.loc[1, "volume"] + 100)], ignore_index=True
    )
    clean, quarantined = quality.split_quotes(versions, trade_date=DAY)
    assert set(quarantined["rule"]) == {"conflicting_duplicate"} and list(quarantined.index) == [1, 3, 4]
    assert quarantined.loc[4, "reason"].startswith(
        "3 versions of one symbol + ts (rows 1, 3, 4) differ in volume"
    )
    assert_survivors_unchanged(clean, q, [1])


def test_out_of_order_rows_are_sorted_not_quarantined():
    q = make_quotes(n=10)
    shuffled = q.sample(frac=1.0, random_state=3)
    clean, quarantined = quality.split_quotes(shuffled, trade_date=DAY)
    assert quarantined.empty
    assert_survivors_unchanged(clean, q, [])


def test_out_of_order_and_inconsistent_is_quarantined():
    """A late snapshot stamped with an earlier ts but carrying a later cumulative volume: after sorting
    by ts the day's volume decreases, so the out-of-place row is quarantined."""
    q = make_quotes(n=6)
    late = q.copy()
    late.loc[1, "volume"] = q.loc[4, "volume"]  # row 1 claims row 4's volume
    clean, quarantined = quality.split_quotes(late.iloc[::-1], trade_date=DAY)
    r = only(quarantined)
    assert r["rule"] == "cumulative_decrease" and r.name == 1
    assert (
        r["reason"]
        == f"cumulative volume {q.loc[4, 'volume']} > {q.loc[2, 'volume']} at later {q.loc[2, 'ts']}"
    )
    assert_survivors_unchanged(clean, q, [1])


def test_cumulative_volume_decreasing_quarantines_the_fewest_rows():
    q = make_quotes(n=8, symbols=["600000.SH"])
    q.loc[3, "volume"] = 10  # a glitch below earlier totals
    clean, quarantined = quality.split_quotes(q, trade_date=DAY)
    r = only(quarantined)
    assert (r.name, r["rule"]) == (3, "cumulative_decrease")
    assert r["reason"] == f"cumulative volume 10 < {q.loc[2, 'volume']} at earlier {q.loc[2, 'ts']}"
    assert_survivors_unchanged(clean, q, [3])
    spike = make_quotes(n=8, symbols=["600000.SH"])
    spike.loc[2, "volume"] = 10**9  # one spike: dropping it beats dropping every later row
    assert list(quality.split_quotes(spike).quarantined.index) == [2]


def test_cumulative_amount_decreasing():
    q = make_quotes(n=5, symbols=["600000.SH"])
    q.loc[3, "amount"] = 1.0
    r = only(quality.split_quotes(q).quarantined)
    assert r["rule"] == "cumulative_decrease" and r["reason"].startswith("cumulative amount 1 <")


def test_unknown_symbol():
    q = make_quotes(symbols=[*SYMBOLS, "688001.SH"])
    clean, quarantined = quality.split_quotes(q, trade_date=DAY, universe=SYMBOLS)
    assert set(quarantined["rule"]) == {"unknown_symbol"}
    assert quarantined["reason"].iloc[0] == "symbol 688001.SH not in the universe"
    assert len(quarantined) == 6
    assert_survivors_unchanged(clean, q, quarantined.index)


def test_null_and_non_text_symbols():
    q = make_quotes().astype({"symbol": object})
    q.loc[0, "symbol"] = None
    q.loc[1, "symbol"] = 600000
    q.loc[2, "symbol"] = "  "
    quarantined = quality.split_quotes(q).quarantined
    assert list(zip(quarantined["rule"], quarantined["reason"], strict=True)) == [
        ("missing_value", "symbol is null"),
        ("bad_type", "symbol=600000 is not text"),
        ("missing_value", "symbol is empty"),
    ]


def test_unhashable_and_mixed_type_values_never_fail_the_split():
    q = make_quotes(n=4).astype({"symbol": object, "ts": object, "trade_date": object, "price": object})
    q.at[0, "symbol"] = ["600000.SH"]  # unhashable: pd.factorize cannot take it
    q.at[1, "symbol"] = b"600000.SH"  # bytes and ints do not sort with text
    q.at[2, "symbol"] = 600000
    q.at[3, "ts"] = {"t": "09:31"}
    q.at[4, "trade_date"] = ["2024-10-08"]
    q.at[5, "price"] = {(1, 2): "tuple keys"}  # not even JSON can hold it
    result = quality.split_quotes(q, trade_date=DAY, universe=SYMBOLS)
    first = result.quarantined["reason"].str.split("; ").str[0]
    assert set(result.quarantined["rule"]) == {"bad_type"} and len(result.quarantined) == 6
    assert list(first) == [
        "symbol=['600000.SH'] is not text",
        "symbol=b'600000.SH' is not text",
        "symbol=600000 is not text",
        "ts={'t': '09:31'} is not a timestamp",
        "trade_date=['2024-10-08'] is not a date",
        "price={(1, 2): 'tuple keys'} is dict, not a number",
    ]
    assert_survivors_unchanged(result.clean, make_quotes(n=4), range(6))
    table = quality.to_quarantine_table(result)
    assert "'tuple keys'" in table.loc[5, "payload"] and table.loc[0, "symbol"] == "['600000.SH']"


def test_empty_partition():
    result = quality.split_quotes(RAW_QUOTES.empty(), trade_date=DAY)
    clean, quarantined = result
    assert clean.empty and quarantined.empty
    assert list(clean.columns) == RAW_QUOTES.names
    assert "empty partition: no rows" in result.warnings
    no_columns = quality.split_quotes(pd.DataFrame(), trade_date=DAY)
    assert no_columns.clean.empty and no_columns.rows_in == 0 and no_columns.warnings


def test_missing_columns_raise_naming_them():
    q = make_quotes().drop(columns=["bid", "amount"])
    with pytest.raises(ValueError, match=r"missing columns \['amount', 'bid'\]"):
        quality.split_quotes(q)


def test_extra_columns_are_dropped_with_a_warning():
    q = make_quotes()
    result = quality.split_quotes(q.assign(vendor_flag=1, note="x"), trade_date=DAY)
    assert list(result.clean.columns) == RAW_QUOTES.names
    assert result.dropped_columns == ("vendor_flag", "note")
    assert result.metadata["warnings"] == [
        "dropped columns not in the raw_quotes schema: ['vendor_flag', 'note']"
    ]
    assert_survivors_unchanged(result.clean, q, [])


def test_high_below_low():
    q = make_quotes()
    q.loc[1, "high"], q.loc[1, "low"] = 9.0, 11.0
    clean, quarantined = quality.split_quotes(q)
    r = only(quarantined)
    assert r["rule"] == "high_lt_low"
    assert r["reason"].startswith("high 9 < low 11; high 9 < max(open 10.05, price")
    assert_survivors_unchanged(clean, q, [1])


def test_negative_volume_and_amount():
    q = make_quotes(n=3, symbols=["600000.SH"])
    q.loc[2, "amount"] = -1.0
    q.loc[2, "volume"] = -100
    clean, quarantined = quality.split_quotes(q)
    r = only(quarantined)
    assert (r["rule"], r["reason"]) == ("negative_volume", "volume=-100 < 0; amount=-1 < 0")
    assert_survivors_unchanged(clean, q, [2])


def test_timestamps_outside_the_sessions():
    q = make_quotes()
    q.loc[0, "ts"] = pd.Timestamp("2024-10-08 04:00", tz="UTC")  # lunch break
    q.loc[1, "ts"] = pd.Timestamp("2024-10-08 01:20", tz="UTC")  # call auction, before the open
    q.loc[2, "ts"] = pd.Timestamp("2024-10-09 02:00", tz="UTC")  # next day's session
    q.loc[3, "ts"] = OPEN_UTC  # exactly the open: inside
    clean, quarantined = quality.split_quotes(q, trade_date=DAY)
    assert list(quarantined.index) == [0, 1, 2]
    assert set(quarantined["rule"]) == {"outside_session"}
    assert quarantined.loc[0, "reason"] == (
        "ts 2024-10-08 04:00:00+00:00 (12:00:00 local) outside the XSHG session of 2024-10-08: "
        "[09:30-11:30], [13:00-15:00] local"
    )
    assert_survivors_unchanged(clean, q, [0, 1, 2])


def test_rows_on_a_non_trading_day():
    q = make_quotes(day=dt.date(2024, 10, 1), start=pd.Timestamp("2024-10-01 01:30", tz="UTC"))
    clean, quarantined = quality.split_quotes(q, trade_date="2024-10-01")
    assert clean.empty and len(quarantined) == len(q)
    assert set(quarantined["reason"]) == {"2024-10-01 is not a XSHG trading day"}


def test_trade_date_differs_from_partition():
    q = make_quotes()
    q.loc[0, "trade_date"] = pd.Timestamp("2024-10-09")
    r = only(quality.split_quotes(q, trade_date=DAY).quarantined)
    assert r["rule"] == "trade_date_mismatch"
    assert r["reason"].startswith("trade_date 2024-10-09 differs from partition 2024-10-08")


@pytest.mark.parametrize(
    ("price", "limit", "flagged"),
    [
        (11.00, 0.10, False),  # exactly limit-up
        (11.01, 0.10, True),
        (8.99, 0.10, True),
        (11.50, 0.20, False),
        (10.60, 0.05, True),
        (10.50, 0.05, False),
        (13.00, None, False),
    ],
)
def test_price_limit(price, limit, flagged):
    q = make_quotes(n=3, symbols=["600000.SH"])
    q.loc[2, ["price", "high", "low"]] = [price, max(price, q.loc[2, "high"]), min(price, q.loc[2, "low"])]
    clean, quarantined = quality.split_quotes(q, price_limit=limit)
    assert len(quarantined) == int(flagged)
    if flagged:
        assert quarantined.iloc[0]["rule"] == "price_limit"
        assert quarantined.iloc[0]["reason"].startswith(
            f"price {price:g} is {price / 10 - 1:+.2%} vs prev_close 10"
        )
    assert_survivors_unchanged(clean, q, [2] if flagged else [])


def test_price_limit_by_board_and_mapping():
    q = make_quotes(n=2, symbols=["600000.SH", "300750.SZ"])
    q["price"] = q["prev_close"] * 1.15
    q["high"] = q["price"]
    board = quality.split_quotes(q, price_limit="board").quarantined
    assert set(board["symbol"]) == {"600000.SH"}  # ChiNext has a 20% limit
    st = quality.split_quotes(q, price_limit={"300750.SZ": 0.05}).quarantined  # ST: 5%; others unchecked
    assert set(st["symbol"]) == {"300750.SZ"} and set(st["rule"]) == {"price_limit"}


def test_bars_ohlc_alignment_and_session():
    b = make_bars(n=4)
    b.loc[0, "high"] = b.loc[0, "close"] - 0.01  # high below close
    b.loc[1, "low"] = b.loc[1, "open"] + 0.005  # low above open
    b.loc[2, "ts"] = b.loc[2, "ts"] + pd.Timedelta(seconds=30)  # between minute marks
    b.loc[4, "ts"] = OPEN_UTC  # a bar labelled at the open would cover pre-open time
    b.loc[5, "volume"] = -1
    clean, quarantined = quality.split_bars(b, "1m", trade_date=DAY)
    got = dict(zip(quarantined.index, quarantined["rule"], strict=True))
    assert got == {
        0: "ohlc_inconsistent",
        1: "ohlc_inconsistent",
        2: "bar_misaligned",
        4: "outside_session",
        5: "negative_volume",
    }
    assert quarantined.loc[0, "reason"].startswith("high 10.01 < max(open 10, close 10.02)")
    assert quarantined.loc[2, "reason"] == "ts 2024-10-08 01:33:30+00:00 is not on the 1-minute bar grid"
    assert_survivors_unchanged(clean, b, [0, 1, 2, 4, 5], schema=BARS_1M)


def test_bars_5m_grid_and_nan_change_rate_allowed():
    b = make_bars(n=3, freq_minutes=5)
    b.loc[0, "change_rate"] = np.nan  # optional: unknown first-bar change
    b.loc[1, "ts"] = b.loc[1, "ts"] + pd.Timedelta(minutes=1)
    clean, quarantined = quality.split_bars(b, "5m", trade_date=DAY)
    assert list(quarantined["rule"]) == ["bar_misaligned"]
    assert_survivors_unchanged(clean, b, [1], schema=BARS_5M)


def test_klines_rules():
    k = make_klines(symbols=["600000.SH", "000001.SZ", "600004.SH", "600005.SH", "600006.SH"])
    k.loc[0, "low"] = k.loc[0, "close"] + 0.01  # low above close
    k.loc[1, "high"] = k.loc[1, "limit_up"] + 0.5  # beyond its own limit-up
    k.loc[2, "change_rate"] = 0.5
    dup = k.iloc[[3]].rename(index={3: 99})
    clean, quarantined = quality.split_klines(pd.concat([k, dup]), trade_date=DAY)
    got = dict(zip(quarantined.index, quarantined["rule"], strict=True))
    assert got == {0: "ohlc_inconsistent", 1: "price_limit", 2: "change_rate_mismatch", 99: "duplicate"}
    assert quarantined.loc[1, "reason"] == "high 12.6 above limit_up 12.1"
    assert quarantined.loc[99, "reason"] == "duplicate of row 3 (symbol + trade_date); identical copy"
    assert_survivors_unchanged(clean, k, [0, 1, 2], schema=KLINES_DAILY)


def test_klines_unlimited_and_price_limit_option():
    k = make_klines()
    k["limit_up"], k["limit_down"] = np.inf, 0.0  # unlimited (e.g. first trading days)
    k.loc[0, ["close", "high"]] = [12.5, 12.6]
    k.loc[0, "change_rate"] = 12.5 / 10 - 1
    assert quality.split_klines(k).quarantined.empty
    r = only(quality.split_klines(k, price_limit=0.10).quarantined)
    assert r["rule"] == "price_limit" and "beyond the ±10% limit" in r["reason"]


def test_klines_on_non_trading_day():
    k = make_klines(day=dt.date(2024, 10, 3))
    quarantined = quality.split_klines(k).quarantined
    assert set(quarantined["rule"]) == {"outside_session"}
    assert quarantined["reason"].iloc[0] == "2024-10-03 is not a XSHG trading day"


def test_split_frame_dispatch_and_quarantine_table():
    q = make_quotes()
    q.loc[0, "price"] = -1.0
    result = quality.split_frame("quotes", q, trade_date=DAY)
    assert result.table_name == "raw_quotes"
    table = quality.to_quarantine_table(result)
    assert list(table.columns) == QUARANTINE.names
    assert table.loc[0, "rule"] == "non_positive_price"
    assert table.loc[0, "ts"] == q.loc[0, "ts"]
    assert '"price": -1.0' in table.loc[0, "payload"]
    assert quality.split_frame("bars", make_bars(), freq="1m").table_name == "bars_1m"
    assert quality.to_quarantine_table(quality.split_quotes(make_quotes())).empty


# --------------------------------------------------------------------------------------------------
# table rules and the verdict


def test_evaluate_passed_warn_error():
    q = make_quotes(n=100)  # 200 rows
    passed = quality.evaluate(quality.split_quotes(q, trade_date=DAY))
    assert (passed.passed, passed.status) == (True, "PASSED")

    one_bad = q.copy()
    one_bad.loc[0, "price"] = -1.0  # 0.5% quarantined: below the 1% threshold
    warn = quality.evaluate(quality.split_quotes(one_bad, trade_date=DAY))
    assert (warn.passed, warn.severity, warn.status) == (False, "WARN", "WARN")
    assert warn.rule_counts == {"non_positive_price": 1}
    assert warn.quarantined_share == pytest.approx(0.005)

    three_bad = one_bad.copy()
    three_bad.loc[[1, 2], "price"] = np.nan  # 1.5%
    error = quality.evaluate(quality.split_quotes(three_bad, trade_date=DAY))
    assert (error.passed, error.severity, error.blocking) == (False, "ERROR", True)
    assert error.thresholds == {"quarantined_share": 0.01}
    assert "| quarantined_share | ERROR | 3 | 200 | 1.50% | 1.00% |" in error.description
    assert error.metadata["rule_counts"] == {"missing_value": 2, "non_positive_price": 1}
    lenient = quality.evaluate(quality.split_quotes(three_bad), max_quarantined_share=0.05)
    assert lenient.status == "WARN"


def test_evaluate_accepts_a_plain_tuple():
    clean, quarantined = quality.split_quotes(make_quotes())
    outcome = quality.evaluate((clean, quarantined), table_name="raw_quotes")
    assert outcome.passed and outcome.rows_in == len(clean)


def test_klines_completeness_against_the_calendar():
    universe = ["600000.SH", "000001.SZ"]
    days = [dt.date(2024, 9, 27), dt.date(2024, 9, 30), dt.date(2024, 10, 8)]  # holiday week in between
    k = pd.concat([make_klines(universe, d) for d in days], ignore_index=True)
    full = quality.klines_completeness(k, start="2024-09-27", end="2024-10-08", universe=universe)
    assert (full.failed, full.total, full.status) == (0, 6, "PASSED")

    holed = k.drop(index=3)  # 000001.SZ on 2024-09-30
    check = quality.klines_completeness(holed, start="2024-09-27", end="2024-10-08", universe=universe)
    assert (check.failed, check.total, check.status) == (1, 6, "ERROR")
    assert check.examples == ("000001.SZ@2024-09-30",)
    outcome = quality.evaluate(checks=[check])
    assert outcome.status == "ERROR" and outcome.rule_counts == {"klines_completeness": 1}
    tolerant = quality.klines_completeness(
        holed, start="2024-09-27", end="2024-10-08", universe=universe, max_missing_share=0.2
    )
    assert tolerant.status == "WARN"
    per_day = quality.klines_completeness(
        k, start="2024-09-27", end="2024-10-08", universe={dt.date(2024, 10, 8): [*universe, "300750.SZ"]}
    )
    assert per_day.failed == 1 and per_day.total == 3


def test_universe_coverage_and_row_count():
    q = make_quotes()
    coverage = quality.universe_coverage(q, [*SYMBOLS, "600004.SH"])
    assert (coverage.failed, coverage.total, coverage.examples) == (1, 3, ("600004.SH",))
    assert coverage.status == "ERROR"  # 33% > 1%
    assert quality.expected_rows("bars_1m", DAY, 10) == 2400
    assert quality.expected_rows("bars", DAY, 1, freq="15m") == 16
    assert quality.expected_rows("klines", DAY, 7) == 7
    assert quality.expected_rows("quotes", DAY, 2, snapshot_seconds=3) == 9600
    assert quality.expected_rows("bars_5m", "2024-10-01", 10) == 0
    short = quality.row_count(make_bars(n=4), quality.expected_rows("bars_1m", DAY, 2))
    assert short.failed == 472 and short.status == "ERROR"
    outcome = quality.evaluate(quality.split_quotes(q), checks=[coverage, short])
    assert outcome.status == "ERROR" and set(outcome.thresholds) == {
        "quarantined_share",
        "universe_coverage",
        "row_count",
    }


def test_evaluate_with_empty_partition_and_coverage_is_an_error():
    empty = quality.split_quotes(RAW_QUOTES.empty(), trade_date=DAY)
    outcome = quality.evaluate(empty, checks=[quality.universe_coverage(empty.clean, SYMBOLS)])
    assert outcome.status == "ERROR" and outcome.quarantined_share == 0.0


def test_synthetic_market_day_is_clean():
    from quant_platform.sources.synthetic import SyntheticMarket

    market = SyntheticMarket(n_symbols=12, snapshot_seconds=15)
    quotes = market.fetch_quotes(DAY)
    result = quality.split_quotes(quotes, trade_date=DAY, universe=market.universe(DAY), price_limit="board")
    assert result.quarantined.empty, result.quarantined[["rule", "reason"]].head()
    klines = quality.split_klines(market.fetch_daily_bars(DAY), trade_date=DAY, price_limit="board")
    assert klines.quarantined.empty, klines.quarantined[["rule", "reason"]].head()
