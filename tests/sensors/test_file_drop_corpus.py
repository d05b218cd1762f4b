"""A corpus of malformed drops through the real file-drop path: sensor ticks -> runs of the real
`raw_quotes` and `klines_daily` assets on chdb -> what lands in `raw_quotes`, `klines_daily` and
`quarantine`.

Every malformed row sits on its own symbol (or symbol-day), so one class cannot change the verdict on
another, and carries a marker (a 9-digit `amount`, also in the text of an unmappable line) that finds
it again in the quarantine payload. Good rows are counted: all of them must reach `raw_quotes` (and
their kline `klines_daily`), no other row may, and no good row may be quarantined.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd
import pytest

from quant_platform.assets.klines import klines_daily
from quant_platform.assets.market_data import raw_quotes
from quant_platform.conventions import DROP_NAME_TAG
from quant_platform.core.quality.rules import RULES
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.hot import HotCacheResource
from quant_platform.resources.sources import SelectableMarketResource
from quant_platform.sensors.file_drop import build_file_drop_sensor
from quant_platform.sources.files import ARCHIVE, REJECTED, STAGED, DropFolder, Manifest
from quant_platform.sources.symbols import record_universe
from quant_platform.storage.cold import ColdStore

D1, D2 = dt.date(2024, 10, 8), dt.date(2024, 10, 9)
HOLIDAY, SATURDAY = dt.date(2024, 10, 1), dt.date(2024, 10, 12)
QUOTES = ["symbol", "ts", "price", "open", "high", "low", "prev_close", "volume", "amount", "bid", "ask"]
DATED = [*QUOTES, "trade_date"]
KLINES = ["symbol", "trade_date", "open", "high", "low", "close", "prev_close", "volume", "amount"]
FILES = {"desk_a.csv": QUOTES, "desk_b.csv": QUOTES, "two_days.csv": QUOTES, "dated.csv": DATED}
FILES["klines.csv"] = KLINES
# Rules whose cases are checked by version count as well (a conflict quarantines every version).
PENDING_RULES = {"crossed_book", "out_of_range", "conflicting_duplicate"}


@dataclass
class Case:
    """One malformed class: the fields that differ from a good row, where it goes, what must happen."""

    name: str
    file: str
    rule: str  # the expected (first) rule
    fields: dict = field(default_factory=dict)  # a list value: one row per version (a conflict)
    home: dt.date = D1  # the partition whose quarantine holds it
    symbol: str | None = None  # default: a listed symbol of its own
    copies: int = 1
    marker: int = 0

    @property
    def pending(self) -> bool:
        return self.rule in PENDING_RULES


CASES = [
    Case("text price", "desk_a.csv", "bad_type", {"price": "abc"}),
    Case("empty price", "desk_a.csv", "missing_value", {"price": ""}),
    Case("NaN price", "desk_a.csv", "missing_value", {"price": "NaN"}),
    Case("negative price", "desk_a.csv", "non_positive_price", {"price": "-10.5", "low": "-11"}),
    Case("zero price", "desk_a.csv", "non_positive_price", {"price": "0", "low": "0"}),
    Case("negative volume", "desk_a.csv", "negative_volume", {"volume": "-100"}),
    Case("negative amount", "desk_a.csv", "negative_volume", {"amount": "-{m}"}),
    Case("fractional volume", "desk_a.csv", "bad_type", {"volume": "100.5"}),
    Case("text volume", "desk_a.csv", "bad_type", {"volume": "lots"}),
    Case("boolean price", "desk_a.csv", "bad_type", {"price": "True"}),
    Case("high < low", "desk_a.csv", "high_lt_low", {"high": "9", "low": "11"}),
    Case("price above the day high", "desk_a.csv", "ohlc_inconsistent", {"price": "10.6"}),
    Case("1e400 price", "desk_a.csv", "out_of_range", {"price": "1e400"}),
    Case("inf price", "desk_a.csv", "non_finite", {"price": "inf"}),
    Case("beyond the price limit", "desk_a.csv", "price_limit", {"price": "12", "high": "12"}),
    Case("negative bid", "desk_a.csv", "non_positive_price", {"bid": "-1"}),
    Case("invalid UTF-8 in price", "desk_a.csv", "bad_type", {"price": b"1\xff0"}),
    Case("unknown symbol", "desk_b.csv", "unknown_symbol", symbol="600999"),
    Case("full-width digits symbol", "desk_b.csv", "unknown_symbol", symbol="６００１００"),
    Case(
        "SQL text symbol",
        "desk_b.csv",
        "unknown_symbol",
        symbol="600100.SH'; DROP TABLE quant.raw_quotes; --",
    ),
    Case("empty symbol", "desk_b.csv", "missing_value", symbol=""),
    Case("NUL byte in symbol", "desk_b.csv", "unknown_symbol", symbol="600\x00100"),
    Case("ts in the lunch break", "desk_b.csv", "outside_session", {"ts": f"{D1} 12:00:00"}),
    Case("ts before the open", "desk_b.csv", "outside_session", {"ts": f"{D1} 08:00:00"}),
    Case("ts on a holiday", "desk_b.csv", "trade_date_mismatch", {"ts": f"{HOLIDAY} 10:30:00"}),
    Case("unparseable ts", "desk_b.csv", "bad_type", {"ts": "not-a-time"}),
    Case("empty ts", "desk_b.csv", "missing_value", {"ts": ""}),
    Case("identical duplicate", "desk_b.csv", "duplicate", copies=2),  # the first copy is good
    Case(
        "cumulative decrease", "desk_b.csv", "cumulative_decrease", {"ts": f"{D1} 09:41:00", "volume": "50"}
    ),
    Case("a line with more fields than the header", "desk_b.csv", "vendor_payload", {"ask": "10.01,surplus"}),
    Case("ts on a Saturday", "two_days.csv", "trade_date_mismatch", {"ts": f"{SATURDAY} 10:30:00"}, home=D2),
    Case("trade_date of another session", "dated.csv", "outside_session", {"trade_date": str(D2)}, home=D2),
    Case("unreadable trade_date", "dated.csv", "bad_type", {"trade_date": "the 8th"}),
    Case("trade_date on a holiday", "dated.csv", "trade_date_mismatch", {"trade_date": str(HOLIDAY)}),
    Case("kline close is text", "klines.csv", "bad_type", {"close": "ten"}),
    Case("kline close n/a", "klines.csv", "missing_value", {"close": "n/a"}),
    Case("kline high < low", "klines.csv", "high_lt_low", {"high": "9", "low": "11"}),
    # the two-day file: each day is checked against that day's own master
    Case("not listed on 10-08", "two_days.csv", "unknown_symbol", symbol="600203.SH"),
    Case("not listed on 10-09", "two_days.csv", "unknown_symbol", {"ts": f"{D2} 11:00:00"}, D2, "600202.SH"),
    # rules still to come (see PENDING_RULES): quarantined and kept out of raw_quotes
    Case("400-digit price", "desk_a.csv", "out_of_range", {"price": "9" * 400}),  # rule: out_of_range
    Case("1e20 volume", "desk_a.csv", "out_of_range", {"volume": "1e20"}),  # rule: out_of_range
    Case("crossed book", "desk_a.csv", "crossed_book", {"bid": "10.05", "ask": "10"}),  # rule: crossed_book
    Case(  # rule: conflicting_duplicate (every version of the key)
        "conflicting duplicate", "desk_b.csv", "conflicting_duplicate", {"price": ["10.0", "10.3"]}
    ),
]
for _i, _case in enumerate(CASES):
    _case.marker = 987_654_000 + 10 * _i

CASE_SYMBOLS = {c.name: f"{600300 + i}.SH" for i, c in enumerate(CASES)}
GOOD_D1 = [f"{600100 + i}.SH" for i in range(22)]  # desk_a: 10, desk_b: 10, dated: 2
KLINE_GOOD = [f"{100 + i:06d}.SZ" for i in range(5)]
MASTER_D1 = [*GOOD_D1, *KLINE_GOOD, *CASE_SYMBOLS.values(), "600201.SH", "600202.SH"]
MASTER_D2 = [s for s in MASTER_D1 if s != "600202.SH"] + ["600203.SH"]


def utc(day: dt.date | str, hhmmss: str) -> pd.Timestamp:
    return pd.Timestamp(f"{day} {hhmmss}", tz="Asia/Shanghai").tz_convert("UTC")


class Corpus:
    """The files being written, and every good row they hold (symbol, ts UTC, price, day)."""

    def __init__(self) -> None:
        self.lines: dict[str, list[bytes]] = {name: [",".join(cols).encode()] for name, cols in FILES.items()}
        self.good: list[tuple[str, pd.Timestamp, float, dt.date]] = []

    def add(self, name: str, row: dict, good: tuple | None = None) -> None:
        cells = [row.get(c, "") for c in FILES[name]]
        self.lines[name].append(b",".join(c if isinstance(c, bytes) else str(c).encode() for c in cells))
        if good:
            self.good.append(good)

    def good_series(self, name: str, symbol: str, day: dt.date, base: float, n: int = 8) -> None:
        """n consistent snapshots of the morning session, 3 minutes apart."""
        for k in range(n):
            t = f"{9 + (31 + 3 * k) // 60:02d}:{(31 + 3 * k) % 60:02d}:00"
            price = round(base + 0.01 * k, 2)
            row = snapshot(symbol, f"{day} {t}", price, base, volume=100 * (k + 1))
            row["amount"] = f"{100 * (k + 1) * price:.2f}"
            self.add(name, {**row, "trade_date": str(day)}, (symbol, utc(day, t), price, day))

    def write(self, root) -> None:
        for name, lines in self.lines.items():
            (root / name).write_bytes(b"\n".join(lines) + b"\n")


def snapshot(symbol: str, ts: str, price: float, base: float = 10.0, volume: int = 100) -> dict:
    return {
        "symbol": symbol.split(".")[0] if symbol.endswith((".SH", ".SZ")) else symbol,
        "ts": ts,
        "price": f"{price}",
        "open": f"{base}",
        "high": f"{base * 1.05:.2f}",
        "low": f"{base * 0.95:.2f}",
        "prev_close": f"{base}",
        "volume": str(volume),
        "amount": "0",
        "bid": f"{price - 0.01:.2f}",
        "ask": f"{price + 0.01:.2f}",
        "trade_date": str(D1),
    }


def build_corpus(root) -> Corpus:
    corpus = Corpus()
    for i, symbol in enumerate(GOOD_D1):
        corpus.good_series(
            "desk_a.csv" if i < 10 else "desk_b.csv" if i < 20 else "dated.csv", symbol, D1, 10 + i
        )
    corpus.good_series("two_days.csv", "600201.SH", D1, 30)
    corpus.good_series("two_days.csv", "600201.SH", D2, 30)
    corpus.good_series("two_days.csv", "600202.SH", D1, 31)
    corpus.good_series("two_days.csv", "600203.SH", D2, 32)
    for i, symbol in enumerate(KLINE_GOOD):
        close = round(10.2 + i / 10, 2)
        kline = {"symbol": symbol[:6], "trade_date": str(D1), "open": "10", "high": "11", "low": "9.5"}
        kline.update(
            close=f"{close}", prev_close="10", volume=str(1000 * (i + 1)), amount=str(10000 * (i + 1))
        )
        corpus.add("klines.csv", kline, (symbol, utc(D1, "15:00:00"), close, D1))
    for case in CASES:
        symbol = case.symbol if case.symbol is not None else CASE_SYMBOLS[case.name]
        if case.name == "cumulative decrease":  # a good series with one snapshot out of line
            corpus.good_series(case.file, symbol, D1, 10.0)
        if case.file == "klines.csv":
            kline = {"symbol": symbol[:6], "trade_date": str(D1), "open": "10", "high": "10.5", "low": "9.5"}
            kline.update(close="10.2", prev_close="10", volume="1000", amount=str(case.marker))
            kline.update(case.fields)
            corpus.add(case.file, kline)
            continue
        versions = max((len(v) for v in case.fields.values() if isinstance(v, list)), default=1)
        for v in range(versions):
            row = snapshot(symbol, f"{D1} 10:30:00", 10.0)
            row["amount"] = str(case.marker + v)
            for col, value in case.fields.items():
                value = value[v] if isinstance(value, list) else value
                row[col] = value.replace("{m}", str(case.marker)) if isinstance(value, str) else value
            for copy in range(case.copies):  # of repeated identical copies, the first one is good
                first_of_copies = copy == 0 and case.copies > 1
                corpus.add(
                    case.file, row, (symbol, utc(D1, "10:30:00"), 10.0, D1) if first_of_copies else None
                )
    corpus.write(root)
    # unparseable: the only files that may be rejected
    (root / "binary.csv").write_bytes(bytes(range(256)) * 40)
    (root / "header_only.csv").write_text(",".join(QUOTES) + "\n")
    (root / "holiday_only.csv").write_text(
        ",".join(QUOTES) + f"\n600100,{HOLIDAY} 10:00,10,10,10,10,10,1,10,,\n"
    )
    (root / "missing_columns.csv").write_text("symbol,price\n600100,10\n600101,11\n")
    return corpus


@dataclass
class Result:
    corpus: Corpus
    ticks: list[dg.SensorResult]
    runs: list[dg.ExecuteInProcessResult]
    raw: pd.DataFrame
    klines: pd.DataFrame
    quarantine: pd.DataFrame
    folder: DropFolder


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Result:
    """Drop the corpus, tick the sensor, run every requested run with the real assets, tick again."""
    home = tmp_path_factory.mktemp("qp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QP_HOME", str(home))
        mp.setenv("QP_DEPLOYMENT", "local")
        for name in ("QP_CLICKHOUSE_DSN", "QP_WAREHOUSE_URL", "QP_REDIS_URL", "QP_MARKET_SOURCE"):
            mp.delenv(name, raising=False)
        dsn = f"chdb://{home / 'chdb'}"
        with ColdStore(dsn) as cold:
            record_universe(cold, "import", D1, MASTER_D1)
            record_universe(cold, "import", D2, MASTER_D2)
        folder = DropFolder(home / "drop")
        folder.ensure()
        corpus = build_corpus(folder.root)
        sensor = build_file_drop_sensor(drop_dir=folder.root, min_age_seconds=0)
        resources = {
            "market": SelectableMarketResource(
                kind="synthetic", drop_dir=str(folder.root), clickhouse_dsn=dsn
            ),
            "clickhouse": ClickHouseResource(dsn=dsn),
            "hot": HotCacheResource(),
        }
        with dg.instance_for_test() as instance:
            ticks = [sensor(dg.build_sensor_context(instance=instance))]
            runs = [
                dg.materialize(
                    [raw_quotes, klines_daily],
                    partition_key=request.partition_key,
                    tags=request.tags,
                    instance=instance,
                    resources=resources,
                )
                for request in ticks[0].run_requests
            ]
            ticks.append(sensor(dg.build_sensor_context(instance=instance)))
        with ColdStore(dsn) as cold:
            raw = cold.read_table("raw_quotes", D1, D2)
            klines = cold.read_table("klines_daily", D1, D2)
            quarantine = cold.read_table("quarantine", D1, D2)
    return Result(corpus, ticks, runs, raw, klines, quarantine, folder)


def quarantined(result: Result, case: Case) -> pd.DataFrame:
    q = result.quarantine
    return q[q["payload"].str.contains(str(case.marker)[:-1], regex=False)]


def test_ticks_succeed_and_only_unparseable_files_are_rejected(ingested):
    first, last = ingested.ticks
    assert all(run.success for run in ingested.runs)
    by_file: dict[str, list[str]] = {}
    for r in first.run_requests:
        by_file.setdefault(r.tags[DROP_NAME_TAG], []).append(r.partition_key)
    assert {k: sorted(v) for k, v in by_file.items()} == {
        "desk_a.csv": [str(D1)],
        "desk_b.csv": [str(D1)],
        "two_days.csv": [str(D1), str(D2)],  # the Saturday row has no run of its own
        "dated.csv": [str(D1), str(D2)],
        "klines.csv": [str(D1)],
    }
    root = ingested.folder.root
    reasons = {
        p.name.removesuffix(".reason.txt"): p.read_text() for p in (root / REJECTED).glob("*.reason.txt")
    }
    assert set(reasons) == {"binary.csv", "header_only.csv", "holiday_only.csv", "missing_columns.csv"}
    assert "not UTF-8" in reasons["binary.csv"] and "no data rows" in reasons["header_only.csv"]
    assert "2024-10-01 is not a XSHG trading day" in reasons["holiday_only.csv"]
    assert "neither quotes" in reasons["missing_columns.csv"]
    # every run succeeded: the next tick archives every staged file
    assert not last.run_requests and len(list((root / ARCHIVE).glob("*.json"))) == 5
    assert not list((root / STAGED).iterdir()) and not [p for p in root.iterdir() if p.is_file()]
    manifest = next(Manifest.from_json(p.read_text()) for p in (root / ARCHIVE).glob("*two_days.csv.json"))
    assert manifest.outside_days == {str(SATURDAY): {"rows": 1, "quarantined_under": str(D2)}}


def test_every_good_row_and_no_bad_row_reaches_raw_quotes(ingested):
    good = pd.DataFrame(ingested.corpus.good, columns=["symbol", "ts", "price", "day"])
    raw = ingested.raw
    raw_keys = set(zip(raw["symbol"], raw["ts"], strict=True))
    good_keys = set(zip(good["symbol"], good["ts"], strict=True))
    pending = {CASE_SYMBOLS[c.name] for c in CASES if c.pending}
    missing = good_keys - raw_keys
    extra = {k for k in raw_keys - good_keys if k[0] not in pending}
    assert len(good_keys) == len(good) == 222
    assert not missing, f"{len(missing)} of {len(good_keys)} good rows lost: {sorted(missing)[:5]}"
    assert not extra, f"bad rows in raw_quotes: {sorted(extra)[:5]}"
    merged = good.merge(raw, on=["symbol", "ts"], suffixes=("", "_stored"))
    assert len(merged) == len(good) and (merged["price"] == merged["price_stored"]).all()


def test_klines_are_rolled_up_from_good_rows_only(ingested):
    good = pd.DataFrame(ingested.corpus.good, columns=["symbol", "ts", "price", "day"])
    last = good.sort_values("ts").groupby(["symbol", "day"]).tail(1)
    expected = {
        (s, pd.Timestamp(d)): p for s, d, p in zip(last["symbol"], last["day"], last["price"], strict=True)
    }
    pending = {CASE_SYMBOLS[c.name] for c in CASES if c.pending}
    k = ingested.klines[~ingested.klines["symbol"].isin(pending)]
    stored = {(s, d): c for s, d, c in zip(k["symbol"], k["trade_date"], k["close"], strict=True)}
    assert stored == expected
    assert (ingested.quarantine["table_name"] == "raw_quotes").all()  # no kline was quarantined


def test_no_good_row_is_quarantined(ingested):
    q = ingested.quarantine
    markers = [str(c.marker)[:-1] for c in CASES]
    unexplained = q[~q["payload"].apply(lambda p: any(m in p for m in markers))]
    assert unexplained.empty, unexplained[["symbol", "rule", "reason"]].to_string()


@pytest.mark.parametrize("case", [c for c in CASES if not c.pending], ids=lambda c: c.name)
def test_each_malformed_class_is_quarantined_with_its_rule(ingested, case):
    rows = quarantined(ingested, case)
    assert len(rows) == 1, rows[["symbol", "rule", "reason"]].to_string()
    assert rows["rule"].item() == case.rule, rows["reason"].item()
    assert rows["trade_date"].item() == pd.Timestamp(case.home)
    assert rows["table_name"].item() == "raw_quotes"


@pytest.mark.parametrize("case", [c for c in CASES if c.pending], ids=lambda c: c.name)
def test_out_of_range_crossed_and_conflicting_rows_are_kept_out(ingested, case):
    assert case.rule in RULES
    symbol = CASE_SYMBOLS[case.name]
    versions = max((len(v) for v in case.fields.values() if isinstance(v, list)), default=1)
    rows = quarantined(ingested, case)
    assert len(rows) == versions  # quarantined: every version of the row
    assert set(rows["rule"]) == {case.rule}, rows["reason"].tolist()
    assert symbol not in set(ingested.raw["symbol"])  # and not in raw_quotes
    assert symbol not in set(ingested.klines["symbol"])
