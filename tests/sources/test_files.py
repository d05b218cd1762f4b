"""File-drop parsing and the FileDropSource, on real CSV/Parquet files in temp folders."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from quant_platform.core.rollups import daily_klines
from quant_platform.core.schema import KLINES_DAILY, RAW_QUOTES
from quant_platform.resources.sources import (
    AkshareMarketResource,
    FileDropMarketResource,
    SelectableMarketResource,
    market_resource_from_env,
)
from quant_platform.sources.base import MarketSource
from quant_platform.sources.files import (
    KLINES,
    QUOTES,
    DropFileError,
    DropFolder,
    FileDropSource,
    content_id,
    read_drop_file,
)

FIXTURES = Path(__file__).parent / "fixtures"
DAY, DAY2 = dt.date(2024, 10, 8), dt.date(2024, 10, 9)


def quotes_csv(
    path: Path, day: str = "2024-10-08", symbols=("600000", "000001"), price: float = 10.0
) -> Path:
    rows = []
    for i, sym in enumerate(symbols):
        for k, hhmm in enumerate(("09:31:00", "10:00:00", "14:59:57")):
            p = price + i + k * 0.01
            rows.append(
                {
                    "code": sym,
                    "datetime": f"{day} {hhmm}",
                    "last": p,
                    "open": price + i,
                    "high": p + 0.05,
                    "low": price + i - 0.05,
                    "preclose": price + i - 0.1,
                    "vol": 1000 * (k + 1),
                    "amount": 1000 * (k + 1) * p,
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def klines_parquet(path: Path, days=("2024-10-08", "2024-10-09")) -> Path:
    rows = [
        {
            "symbol": "600000.SH",
            "trade_date": d,
            "open": 10.0 + i,
            "high": 10.5 + i,
            "low": 9.8 + i,
            "close": 10.2 + i,
            "volume": 123400,
            "amount": 1.26e6,
        }
        for i, d in enumerate(days)
    ]
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_quotes_csv_with_aliases_and_local_times(tmp_path):
    parsed = read_drop_file(quotes_csv(tmp_path / "q.csv"))
    assert parsed.kind == QUOTES and parsed.days == (DAY,)
    df = parsed.frame
    assert list(df.columns) == RAW_QUOTES.names and RAW_QUOTES.conform(df).equals(df)
    assert sorted(df["symbol"].unique()) == ["000001.SZ", "600000.SH"]
    assert df["ts"].min() == pd.Timestamp("2024-10-08 01:31", tz="UTC")  # 09:31 Shanghai
    assert df["bid"].isna().all() and (df["trade_date"] == pd.Timestamp(DAY)).all()


def test_klines_parquet_get_prev_close_and_limits(tmp_path):
    parsed = read_drop_file(klines_parquet(tmp_path / "k.parquet"))
    assert parsed.kind == KLINES and parsed.days == (DAY, DAY2)
    k = parsed.frame
    assert list(k.columns) == KLINES_DAILY.names
    assert pd.isna(k["prev_close"].iloc[0]) and k["prev_close"].iloc[1] == 10.2
    assert k["limit_up"].iloc[1] == pytest.approx(11.22)


def test_akshare_export_is_read_with_lots(tmp_path):
    rec = json.loads((FIXTURES / "stock_zh_a_hist_600000.json").read_text())
    path = tmp_path / "ak.csv"
    pd.DataFrame(rec["data"], columns=rec["columns"]).to_csv(path, index=False)
    parsed = read_drop_file(path)
    assert parsed.kind == KLINES and len(parsed.days) == 9
    assert parsed.frame["volume"].iloc[0] == rec["data"][0][6] * 100
    assert parsed.frame["symbol"].unique().tolist() == ["600000.SH"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("symbol,price\n600000,1\n", "neither quotes"),
        ("a;b;c\n1;2;3\n", "no symbol column"),
        ("600000,2024-10-08 10:00,10\n600001,2024-10-08 10:01,11\n", "no symbol column"),  # no header
        ("symbol,ts,price\n", "no data rows"),
        ("\n\n", "no header line"),
        ("", "no header line"),
    ],
)
def test_only_unparseable_files_raise(tmp_path, content, reason):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DropFileError, match=reason):
        read_drop_file(path)


def test_binary_and_foreign_files_are_unparseable(tmp_path):
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\xff\xfe" * 50)
    with pytest.raises(DropFileError, match="header line is not UTF-8 text"):
        read_drop_file(binary)
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("代码,日期\n600000,2024-10-08\n".encode("gbk"))
    with pytest.raises(DropFileError, match="not UTF-8"):
        read_drop_file(gbk)
    with pytest.raises(DropFileError, match="unsupported file type"):
        read_drop_file(tmp_path / "x.xlsx")


def test_bad_values_stay_raw_for_the_row_rules(tmp_path):
    """No value makes the parser raise, drop, deduplicate or fill a row; clean values are converted."""
    path = tmp_path / "mixed.csv"
    huge = "9" * 400
    lines = [
        "symbol,ts,price,prev_close,volume,amount",
        "600000,2024-10-08 09:31:00,10.5,10,100,1050",
        "600000,2024-10-08 09:32:00,abc,10,200,2100",
        f"600000,2024-10-08 09:33:00,{huge},10,300,3150",
        "600000,2024-10-08 09:34:00,1e400,10,1e20,3150",
        "600000,2024-10-08 09:35:00,True,10,100.5,3150",
        "６０００００,2024-10-08 09:36:00,10.5,10,400,4200",
        "600000'; DROP TABLE quant.raw_quotes; --,2024-10-08 09:37:00,10.5,10,400,4200",
        "600000,not a time,10.5,10,400,4200",
        "600000,2024-10-08 09:31:00,10.6,10,100,1050",
        "600000,2024-10-08 09:31:00,10.5,10,100,1050",
        ",2024-10-08 09:38:00,,,,",
        "600000,2024-10-08T09:39:00+08:00,10.5,10,500,5250",
        "600000,2024-10-08 09:40:00,10.5,10,600,6300,surplus",
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"600\x0000,2024-10-08 09:41:00,1\xff0,10,1,1\n")
    parsed = read_drop_file(path)
    f = parsed.frame
    assert len(f) == len(lines) - 2 + 1 and len(parsed.unmapped) == 1  # the 7-field line is unmapped
    assert list(f.columns) == RAW_QUOTES.names
    assert f["price"].tolist()[:5] == [10.5, "abc", huge, "1e400", "True"]
    assert f["volume"].tolist()[3:5] == [1e20, 100.5]
    assert f["symbol"].tolist()[5:7] == ["６０００００", "600000'; DROP TABLE quant.raw_quotes; --"]
    assert f["ts"].iloc[7] == "not a time" and pd.isna(f["trade_date"].iloc[7])
    assert f["price"].iloc[8:10].tolist() == [10.6, 10.5]  # both copies of the repeated key
    assert pd.isna(f["symbol"].iloc[10]) and pd.isna(f["price"].iloc[10])  # empty cells are not filled
    assert f["ts"].iloc[11] == pd.Timestamp("2024-10-08 01:39", tz="UTC")
    assert (
        f["symbol"].iloc[12] == "600\x0000" and f["price"].iloc[12] == "1\ufffd0"
    )  # bad byte: this value only
    assert parsed.days == (DAY,) and parsed.row_day.isna().sum() == 1
    assert parsed.unmapped["rule"].tolist() == ["vendor_payload"]
    assert "7 fields, the header has 6" in parsed.unmapped["reason"].iloc[0]


def test_parquet_values_that_are_not_numbers_stay_raw(tmp_path):
    path = tmp_path / "q.parquet"
    pd.DataFrame(
        {
            "symbol": ["600000", "600000", "600000"],
            "ts": pd.to_datetime(["2024-10-08 09:31", "2024-10-08 09:32", "2024-10-08 09:33"]),
            "price": [10.0, 11.0, 12.0],
            "volume": [True, False, True],
            "amount": pd.Series([1.0, 10**400, "x"], dtype=object).astype(str),
        }
    ).to_parquet(path)
    f = read_drop_file(path).frame
    assert f["ts"].iloc[0] == pd.Timestamp("2024-10-08 01:31", tz="UTC")  # naive = exchange-local
    assert f["volume"].tolist() == [True, False, True]  # never cast to 1/0
    assert f["amount"].iloc[0] == 1.0 and f["amount"].iloc[1] == str(10**400) and f["amount"].iloc[2] == "x"


def test_rows_of_days_without_a_run_are_quarantined_under_the_nearest_run_day(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(
        "symbol,ts,price,trade_date\n"
        "600000,2024-10-08 10:00,10,2024-10-08\n"
        "600000,2024-10-09 10:00,10,2024-10-09\n"
        "600000,2024-10-01 10:00,10,2024-10-01\n"  # holiday: nearest run day 10-08
        "600000,2024-10-12 10:00,10,2024-10-12\n"  # Saturday: nearest run day 10-09
        "600000,2024-10-09 10:00,10,the ninth\n"  # unreadable trade_date: bad_type, by its ts's day
        "600000,garbage,10,\n"  # no readable day at all: to the rules, under the first run day
    )
    parsed = read_drop_file(path)
    assert parsed.days == (dt.date(2024, 10, 1), DAY, DAY2, dt.date(2024, 10, 12))
    assert parsed.sessions == (DAY, DAY2)
    rows8, q8 = parsed.split_for(DAY, [DAY, DAY2])
    rows9, q9 = parsed.split_for(DAY2, [DAY, DAY2])
    assert len(rows8) == 2 and rows8["ts"].iloc[1] == "garbage" and len(rows9) == 1
    assert q8["rule"].tolist() == ["trade_date_mismatch"] and (q8["trade_date"] == pd.Timestamp(DAY)).all()
    assert "2024-10-01 is not a XSHG trading day" in q8["reason"].iloc[0]
    assert sorted(q9["rule"]) == ["bad_type", "trade_date_mismatch"]
    assert "trade_date='the ninth' is not a date" in q9["reason"].tolist()
    assert set(q8["table_name"]) | set(q9["table_name"]) == {"raw_quotes"}
    assert json.loads(q9[q9["rule"] == "bad_type"]["payload"].iloc[0])["trade_date"] == "the ninth"
    assert parsed.summary([DAY, DAY2]) == {
        "outside_days": {
            "2024-10-01": {"rows": 1, "quarantined_under": "2024-10-08"},
            "2024-10-12": {"rows": 1, "quarantined_under": "2024-10-09"},
        },
        "undated_rows": 1,
        "unmapped_rows": 0,
    }


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DropFileError, match="cannot read bad.parquet as parquet"):
        read_drop_file(path)


def test_source_reads_staged_and_archived_files_of_a_day(tmp_path):
    folder = DropFolder(tmp_path / "drop")
    folder.ensure()
    first = quotes_csv(folder.root / "morning.csv", price=10.0)
    m1 = folder.stage(first, read_drop_file(first), content_id(first))
    folder.archive(m1)
    second = quotes_csv(folder.root / "more.csv", symbols=("600519",), price=1500.0)
    folder.stage(second, read_drop_file(second), content_id(second))
    k = klines_parquet(folder.root / "k.parquet", days=("2024-10-09",))
    folder.stage(k, read_drop_file(k), content_id(k))

    src = FileDropSource(folder.root, symbol_master=lambda day: ["600000.SH"])
    assert isinstance(src, MarketSource)
    q = src.fetch_quotes(DAY)
    assert len(q) == 9 and sorted(q["symbol"].unique()) == ["000001.SZ", "600000.SH", "600519.SH"]
    assert src.universe(DAY) == ["600000.SH"]  # the master, never the symbols of the dropped rows
    assert len(src.fetch_quotes(DAY, ["600519.SH"])) == 3
    bars = src.fetch_daily_bars(DAY)  # the rollup of the quotes that pass the rules (master: 600000.SH)
    pd.testing.assert_frame_equal(bars, daily_klines(q[q["symbol"] == "600000.SH"]))
    # A day with only klines: close snapshots that roll up to the same bar.
    q2 = src.fetch_quotes(DAY2)
    assert len(q2) == 1 and q2["ts"].iloc[0] == pd.Timestamp("2024-10-09 07:00", tz="UTC")
    assert src.fetch_daily_bars(DAY2)["close"].tolist() == [10.2]
    assert src.fetch_quotes(dt.date(2024, 10, 10)).empty


def test_source_hands_raw_rows_to_the_rules_and_the_rest_to_take_rejected(tmp_path):
    folder = DropFolder(tmp_path / "drop")
    folder.ensure()
    path = folder.root / "bad.csv"
    path.write_text(
        "symbol,ts,price,prev_close\n"
        "600000,2024-10-08 10:00,10,10\n"
        "600000,2024-10-08 10:01,abc,10\n"
        "600000,2024-10-07 10:00,10,10\n"  # a holiday
        "600000,2024-10-08 10:02,10,10,1\n"  # too many fields
    )
    manifest = folder.stage(path, read_drop_file(path), content_id(path))
    assert manifest.days == ("2024-10-08",) and manifest.undated_rows == 0 and manifest.unmapped_rows == 1
    assert manifest.outside_days == {"2024-10-07": {"rows": 1, "quarantined_under": "2024-10-08"}}
    src = FileDropSource(folder.root, symbol_master=lambda day: [])
    q = src.fetch_quotes(DAY)
    assert q["price"].tolist() == [10.0, "abc"]
    rejected = src.take_rejected()
    assert sorted(rejected["rule"]) == ["trade_date_mismatch", "vendor_payload"]
    assert (rejected["trade_date"] == pd.Timestamp(DAY)).all() and src.take_rejected().empty


def test_kline_rows_become_close_snapshots_of_symbols_without_quotes(tmp_path):
    folder = DropFolder(tmp_path / "drop")
    folder.ensure()
    q = quotes_csv(folder.root / "q.csv", symbols=("600000",))
    folder.stage(q, read_drop_file(q), content_id(q))
    k = folder.root / "k.csv"
    k.write_text(
        "symbol,trade_date,open,high,low,close,prev_close,volume,amount\n"
        "600000,2024-10-08,10,11,9,10.5,10,1000,10500\n"  # has quotes that day: superseded
        "000001,2024-10-08,10,11,9,x,10,1000,10500\n"
    )
    folder.stage(k, read_drop_file(k), content_id(k))
    out = FileDropSource(folder.root, symbol_master=lambda day: []).fetch_quotes(DAY)
    assert len(out) == 4 and out["price"].tolist()[-1] == "x"
    assert out["ts"].iloc[-1] == pd.Timestamp("2024-10-08 07:00", tz="UTC")


def test_same_content_is_staged_once(tmp_path):
    folder = DropFolder(tmp_path / "drop")
    folder.ensure()
    a = quotes_csv(folder.root / "a.csv")
    folder.stage(a, read_drop_file(a), content_id(a))
    again = quotes_csv(folder.root / "a.csv")
    folder.stage(again, read_drop_file(again), content_id(again))
    assert len(list((folder.root / "staged").glob("*.csv"))) == 1 and not again.exists()


def test_market_resource_from_env(monkeypatch, tmp_path):
    monkeypatch.delenv("QP_MARKET_SOURCE", raising=False)
    res = market_resource_from_env()
    assert isinstance(res, SelectableMarketResource) and res.source().name == "synthetic"
    monkeypatch.setenv("QP_MARKET_SOURCE", "files")
    monkeypatch.setenv("QP_DROP_DIR", str(tmp_path / "d"))
    src = market_resource_from_env().source()
    assert isinstance(src, FileDropSource) and src.folder.root == (tmp_path / "d").resolve()
    monkeypatch.setenv("QP_MARKET_SOURCE", "akshare")
    monkeypatch.setenv("QP_AKSHARE_SYMBOLS", "600000, 000001.SZ")
    monkeypatch.setenv("QP_AKSHARE_ADJUST", "hfq")
    ak = market_resource_from_env().source()
    assert ak.name == "akshare" and ak.symbols == ["600000.SH", "000001.SZ"] and ak.adjust == "hfq"
    assert ak.known_klines is None  # adjusted prices never mix with the unadjusted cold-tier klines
    monkeypatch.setenv("QP_MARKET_SOURCE", "bloomberg")
    with pytest.raises(ValueError, match="QP_MARKET_SOURCE must be one of"):
        market_resource_from_env()
    assert AkshareMarketResource(symbols=["600000"]).source().universe(DAY) == ["600000.SH"]
    assert FileDropMarketResource(drop_dir=str(tmp_path)).source().name == "files"


def test_parquet_lists_and_bytes_become_text_for_the_rules(tmp_path):
    path = tmp_path / "odd.parquet"
    pd.DataFrame(
        {
            "symbol": [["600000"], ["600001"]],
            "ts": ["2024-10-08 10:00", "2024-10-08 10:01"],
            "price": [b"10", b"x"],
            "bid": [[1.0], [2.0]],
        }
    ).to_parquet(path)
    f = read_drop_file(path).frame
    assert f["symbol"].tolist() == ["['600000']", "['600001']"] and f["bid"].tolist() == ["[1.]", "[2.]"]
    assert f["price"].tolist() == [10.0, "b'x'"]
