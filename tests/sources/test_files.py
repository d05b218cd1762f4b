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
        ("symbol,ts,price\n600000,2024-10-08 10:00,abc\n", "non-numeric values at data rows [1]"),
        ("symbol,ts,price\n600000,2024-10-01 10:00,10\n", "2024-10-01 is not a XSHG trading day"),
        ("symbol,ts,price\n600000,yesterday,10\n", "not timestamps"),
        ("symbol,ts,price\nXYZ123,2024-10-08 10:00,10\n", "not an A-share symbol"),
        ("", "cannot read"),
    ],
)
def test_bad_files_raise_readable_reasons(tmp_path, content, reason):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DropFileError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        read_drop_file(path)


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

    src = FileDropSource(folder.root)
    assert isinstance(src, MarketSource)
    q = src.fetch_quotes(DAY)
    assert len(q) == 9 and sorted(q["symbol"].unique()) == ["000001.SZ", "600000.SH", "600519.SH"]
    assert src.universe(DAY) == ["000001.SZ", "600000.SH", "600519.SH"]
    assert len(src.fetch_quotes(DAY, ["600519.SH"])) == 3
    bars = src.fetch_daily_bars(DAY)
    pd.testing.assert_frame_equal(bars, daily_klines(q))
    # A day with only klines: close snapshots that roll up to the same bar.
    q2 = src.fetch_quotes(DAY2)
    assert len(q2) == 1 and q2["ts"].iloc[0] == pd.Timestamp("2024-10-09 07:00", tz="UTC")
    assert src.fetch_daily_bars(DAY2)["close"].tolist() == [10.2]
    assert src.fetch_quotes(dt.date(2024, 10, 10)).empty


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
