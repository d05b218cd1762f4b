"""A good synthetic day with malformed rows mixed in, through the real `raw_quotes` asset.

Nothing bad gets in, nothing good is lost, nothing is left half-done: every good row reaches
`raw_quotes`, every bad row reaches `quarantine` under the partition day with the rule its class
must get, nothing else is quarantined, the run succeeds and bars and klines are built on top.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from decimal import Decimal

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from quant_platform.assets.bars import intraday_bars_assets
from quant_platform.assets.klines import klines_daily
from quant_platform.assets.market_data import raw_quotes
from quant_platform.core.quality.quarantine import quarantine_frame
from quant_platform.core.schema import RAW_QUOTES
from quant_platform.resources import ClickHouseResource, HotCacheResource, MarketDataResource
from quant_platform.sources.synthetic import SyntheticMarket
from quant_platform.storage.cold import ColdStore

DAY = dt.date(2024, 10, 8)
N_SYMBOLS = 8  # 600000.SH .. 600005.SH, 000007.SZ, 000008.SZ: all main board, 10% limit
MARKET = SyntheticMarket(n_symbols=N_SYMBOLS, snapshot_seconds=60)
HALF_MINUTE = pd.Timedelta(seconds=30)  # between two snapshots: a new key for every variant row
CORPUS: dict[dt.date, pd.DataFrame] = {}


def utc(local: str) -> pd.Timestamp:
    return pd.Timestamp(local, tz="Asia/Shanghai").tz_convert("UTC")


class Corpus:
    """Builds the day: good rows, good rows in unusual but readable form, and malformed rows, each
    with its class and the rule it must get."""

    def __init__(self) -> None:
        good = MARKET.fetch_quotes(DAY)
        self.good = good
        morning = good[(good["ts"] >= utc("2024-10-08 09:40")) & (good["ts"] <= utc("2024-10-08 11:20"))]
        # Variants are built from distinct snapshots whose open and price differ (an OHLC edit
        # must break exactly one rule), half a minute later: no variant shares a key with another row.
        self.bases = iter(morning.index[morning["open"] != morning["price"]].tolist())
        self.rows: list[dict] = []  # the corpus, as records
        self.kind: list[str] = []  # "good" or "bad"
        self.label: list[str] = []  # the class
        self.rule: list[str | None] = []  # the rule a bad row must get
        self.expected_good: list[dict] = []  # typed values expected in raw_quotes
        self.replaced: set[int] = set()  # good rows that are not good any more (conflicting versions)

    def base(self) -> tuple[int, dict]:
        i = next(self.bases)
        return i, self.good.loc[i].to_dict()

    def bad(self, label: str, rule: str, *, shift: bool = True, base: dict | None = None, **values) -> dict:
        row = dict(base if base is not None else self.base()[1])
        if shift:
            row["ts"] = row["ts"] + HALF_MINUTE
        row.update(values)
        self._add(row, "bad", label, rule)
        return row

    def variant(self, label: str, typed=lambda row: {}, form=lambda row: {}) -> None:
        """A good row: `typed(row)`: values it must be stored with, `form(stored)`: how the source
        writes them."""
        _, row = self.base()
        row["ts"] = row["ts"] + HALF_MINUTE
        stored = {**row, **typed(row)}
        self._add({**stored, **form(stored)}, "good", label, None)
        self.expected_good.append(stored)

    def _add(self, row: dict, kind: str, label: str, rule: str | None) -> None:
        self.rows.append(row)
        self.kind.append(kind)
        self.label.append(label)
        self.rule.append(rule)

    def frame(self, seed: int = 11) -> pd.DataFrame:
        good_rows = [r for i, r in enumerate(self.good.to_dict("records")) if i not in self.replaced]
        rows = good_rows + self.rows
        kind = ["good"] * len(good_rows) + self.kind
        label = ["good"] * len(good_rows) + self.label
        rule = [None] * len(good_rows) + self.rule
        df = pd.DataFrame(rows, columns=RAW_QUOTES.names)
        df["_kind"], df["_label"], df["_rule"] = kind, label, rule
        return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # any order


def build_corpus() -> Corpus:
    c = Corpus()
    # ---- numeric values that are not numbers
    c.bad("text price", "bad_type", price="abc")
    c.bad("NaN as text", "bad_type", price="NaN")
    c.bad("full-width digits price", "bad_type", price="１０.５")
    c.bad("True in price", "bad_type", price=True)
    c.bad("False in volume", "bad_type", volume=False)
    c.bad("bytes price", "bad_type", price=b"10.5")
    c.bad("list price", "bad_type", price=[10.5])
    c.bad("dict price", "bad_type", price={"last": 10.5})
    c.bad("Decimal NaN price", "bad_type", price=Decimal("NaN"))
    c.bad("complex price", "bad_type", price=complex(10.5, 1))
    c.bad("timestamp in price", "bad_type", price=pd.Timestamp("2024-10-08"))
    c.bad("text bid", "bad_type", bid="n/a")
    c.bad("fractional volume", "bad_type", volume=1234.5)
    c.bad("fractional volume as text", "bad_type", volume="12.5")
    # ---- missing
    c.bad("None price", "missing_value", price=None)
    c.bad("NaN price", "missing_value", price=np.nan)
    c.bad("pd.NA prev_close", "missing_value", prev_close=pd.NA)
    c.bad("None volume", "missing_value", volume=None)
    c.bad("NaN amount", "missing_value", amount=np.nan)
    # ---- infinities
    c.bad("+inf price", "non_finite", price=np.inf)
    c.bad("-inf price", "non_finite", price=-np.inf)
    c.bad("inf as text", "non_finite", high="inf")
    c.bad("inf volume", "non_finite", volume=np.inf)
    c.bad("+inf bid", "non_finite", bid=np.inf)
    c.bad("-inf ask", "non_finite", ask=-np.inf)
    # ---- too large to be real or to store
    c.bad("1e20 volume (beyond int64)", "out_of_range", volume=1e20)
    c.bad("1e20 volume as text", "out_of_range", volume="100000000000000000000")
    c.bad("2e15 volume (above plausible)", "out_of_range", volume=2 * 10**15)
    c.bad("1e19 amount", "out_of_range", amount=1e19)
    c.bad("2e7 price", "out_of_range", price=2e7, high=2e7)
    c.bad("400-digit price string", "out_of_range", price="9" * 400)
    c.bad("Decimal 1e400 price", "out_of_range", price=Decimal("1e400"))
    c.bad("10**400 int price", "out_of_range", price=10**400)
    # ---- signs
    c.bad("negative price", "non_positive_price", price=-5.0)
    c.bad("zero price", "non_positive_price", price=0.0)
    c.bad("zero prev_close", "non_positive_price", prev_close=0.0)
    c.bad("negative bid", "non_positive_price", bid=-1.0)
    c.bad("negative ask", "non_positive_price", ask=-0.01)
    c.bad("negative volume", "negative_volume", volume=-100)
    c.bad("negative amount", "negative_volume", amount=-1.0)
    # ---- OHLC and the book
    _, r = c.base()
    c.bad("high < low", "high_lt_low", base=r, high=r["low"] / 2)
    _, r = c.base()
    top = max(r["open"], r["price"])
    c.bad(
        "high < max(open, price)", "ohlc_inconsistent", base=r, high=top - 0.01, low=min(r["low"], top - 0.02)
    )
    _, r = c.base()
    bottom = min(r["open"], r["price"])
    c.bad(
        "low > min(open, price)",
        "ohlc_inconsistent",
        base=r,
        low=bottom + 0.01,
        high=max(r["high"], bottom + 0.01),
    )
    _, r = c.base()
    c.bad(
        "crossed book",
        "crossed_book",
        base=r,
        bid=round(r["price"] * 1.02, 2),
        ask=round(r["price"] * 0.98, 2),
    )
    # ---- symbols
    c.bad("unknown symbol", "unknown_symbol", symbol="688001.SH")
    c.bad("empty symbol", "missing_value", symbol="")
    c.bad("blank symbol", "missing_value", symbol="   ")
    c.bad("None symbol", "missing_value", symbol=None)
    c.bad("int symbol", "bad_type", symbol=600000)
    c.bad("bytes symbol", "bad_type", symbol=b"600000.SH")
    c.bad("list symbol", "bad_type", symbol=["600000.SH"])
    c.bad("full-width digits symbol", "unknown_symbol", symbol="６０００００.SH")
    c.bad("lower-case suffix symbol", "unknown_symbol", symbol="600000.sh")
    c.bad("trailing space symbol", "unknown_symbol", symbol="600000.SH ")
    c.bad("SQL text symbol", "unknown_symbol", symbol="600000.SH'; DROP TABLE quant.raw_quotes; --")
    # ---- trade_date
    c.bad("trade_date another trading day", "trade_date_mismatch", trade_date=pd.Timestamp("2024-10-09"))
    c.bad("trade_date not a trading day", "trade_date_mismatch", trade_date=pd.Timestamp("2024-10-05"))
    c.bad("trade_date null", "missing_value", trade_date=None)
    c.bad("trade_date unparseable", "bad_type", trade_date="2024-13-45")
    c.bad("trade_date with a time of day", "bad_type", trade_date=pd.Timestamp("2024-10-08 10:00"))
    c.bad("trade_date a list", "bad_type", trade_date=["2024-10-08"])
    # ---- ts
    c.bad("naive ts text", "bad_type", shift=False, ts="2024-10-08 10:00:30")
    c.bad("unparseable ts", "bad_type", shift=False, ts="ten past ten")
    c.bad("epoch number in ts", "bad_type", shift=False, ts=1728352830000)
    c.bad("null ts", "missing_value", shift=False, ts=None)
    c.bad("dict in ts", "bad_type", shift=False, ts={"t": "10:00"})
    c.bad("ts at night", "outside_session", shift=False, ts=utc("2024-10-08 20:00"))
    c.bad("ts in the lunch break", "outside_session", shift=False, ts=utc("2024-10-08 12:00:30"))
    c.bad("ts in the call auction", "outside_session", shift=False, ts=utc("2024-10-08 09:20"))
    c.bad("ts after the close", "outside_session", shift=False, ts=utc("2024-10-08 15:00:30"))
    c.bad("ts on another day", "outside_session", shift=False, ts=utc("2024-10-09 10:00:30"))
    # ---- price limits (prev_close x (1 +- 10%))
    _, r = c.base()
    up = round(r["prev_close"] * 1.15, 2)
    c.bad("price above limit-up", "price_limit", base=r, price=up, high=up)
    _, r = c.base()
    down = round(r["prev_close"] * 0.85, 2)
    c.bad("price below limit-down", "price_limit", base=r, price=down, low=down)
    # ---- sequences: duplicates and cumulative totals
    _, r = c.base()
    c.bad("exact duplicate", "duplicate", shift=False, base=r)
    i, r = c.base()
    c.replaced.add(int(c.good.index.get_loc(i)))  # neither version can be trusted: both quarantined
    c.bad("conflicting duplicate", "conflicting_duplicate", shift=False, base=r)
    c.bad("conflicting duplicate", "conflicting_duplicate", shift=False, base=r, bid=r["bid"] - 0.01)
    _, r = c.base()
    c.bad("cumulative volume decrease", "cumulative_decrease", base=r, volume=r["volume"] - 100)
    _, r = c.base()
    c.bad("cumulative amount decrease", "cumulative_decrease", base=r, amount=r["amount"] - 1.0)
    # ---- good rows in an unusual but readable form: kept, with their values
    c.variant("ask NaN (empty ask side)", typed=lambda r: {"ask": np.nan})
    c.variant("bid None (empty bid side)", typed=lambda r: {"bid": np.nan}, form=lambda r: {"bid": None})
    c.variant("bid 0", typed=lambda r: {"bid": 0.0})
    c.variant("locked book (bid == ask)", typed=lambda r: {"bid": r["price"], "ask": r["price"]})
    c.variant("price as text", form=lambda r: {"price": str(r["price"])})
    c.variant("price as Decimal", form=lambda r: {"price": Decimal(str(r["price"]))})
    c.variant("volume as numpy int", form=lambda r: {"volume": np.int64(r["volume"])})
    c.variant("ts as +08:00 text", form=lambda r: {"ts": r["ts"].tz_convert("Asia/Shanghai").isoformat()})
    c.variant("trade_date as text", form=lambda r: {"trade_date": "2024-10-08"})
    c.variant("trade_date as datetime.date", form=lambda r: {"trade_date": DAY})
    return c


class CorpusSource(SyntheticMarket):
    def fetch_quotes(self, day, symbols=None):
        return CORPUS[pd.Timestamp(day).date()].drop(columns=["_kind", "_label", "_rule"]).copy()


class CorpusMarket(MarketDataResource):
    def source(self):
        return CorpusSource(n_symbols=N_SYMBOLS, snapshot_seconds=60)


@pytest.fixture(scope="module")
def built() -> tuple[Corpus, pd.DataFrame]:
    c = build_corpus()
    return c, c.frame()


def expected_payloads(rows: pd.DataFrame) -> list[str]:
    """The payload the quarantine must hold for these rows: the row as it came, as JSON."""
    return quarantine_frame("raw_quotes", rows[RAW_QUOTES.names], rule="x", reason="x")["payload"].tolist()


def test_malformed_corpus_through_the_real_assets(chdb_dsn, built):
    build, corpus = built
    bad = corpus[corpus["_kind"] == "bad"]
    good = corpus[corpus["_kind"] == "good"]
    assert bad["_label"].nunique() >= 40
    CORPUS[DAY] = corpus
    resources = {
        "market": CorpusMarket(),
        "clickhouse": ClickHouseResource(dsn=chdb_dsn),
        "hot": HotCacheResource(),
    }
    result = dg.materialize(
        [raw_quotes, intraday_bars_assets, klines_daily], resources=resources, partition_key=DAY.isoformat()
    )
    assert result.success  # no day failed
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]

    with ColdStore(chdb_dsn) as cold:
        stored = cold.read_table("raw_quotes", DAY, DAY)
        quarantine = cold.read_table("quarantine")
        counts = {
            t: cold.count_by_day(t, [DAY])[DAY] for t in ("bars_1m", "bars_5m", "bars_15m", "klines_daily")
        }

    # Nothing good is lost, nothing bad gets in: raw_quotes holds exactly the good rows, values intact.
    typed_good = build.good.drop(index=build.good.index[sorted(build.replaced)])
    variants = pd.DataFrame(build.expected_good)[RAW_QUOTES.names]
    expected = RAW_QUOTES.conform(pd.concat([typed_good, variants], ignore_index=True))
    expected = expected.sort_values(["symbol", "ts"]).reset_index(drop=True)
    assert len(stored) == len(good) == len(expected)
    pd.testing.assert_frame_equal(stored, expected)

    # Every bad row is in quarantine, under the partition day, with its class's rule; nothing else.
    assert set(quarantine["table_name"]) == {"raw_quotes"}
    assert set(pd.DatetimeIndex(quarantine["trade_date"]).date) == {DAY}
    want = Counter(zip(expected_payloads(bad), bad["_rule"], strict=True))
    got = Counter(zip(quarantine["payload"], quarantine["rule"], strict=True))
    class_of = dict(zip(expected_payloads(bad), bad["_label"], strict=True))
    missing, unexpected = want - got, got - want
    assert not missing and not unexpected, (
        {class_of.get(p, "?"): r for p, r in missing},
        {class_of.get(p, json.loads(p).get("symbol")): r for p, r in unexpected},
    )
    per_class = quarantine.assign(label=quarantine["payload"].map(class_of)).groupby("label")["rule"].agg(set)
    wanted = bad.groupby("_label")["_rule"].agg(set)
    assert per_class.to_dict() == wanted.to_dict()
    assert quarantine["reason"].str.len().gt(0).all()

    meta = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey("raw_quotes")
    )
    assert meta["quarantined_rows"].value == len(bad)
    assert (meta["exact_duplicates"].value, meta["conflicting_duplicates"].value) == (1, 2)

    # Nothing is left half-done: bars and klines were built on the gated day.
    symbols = stored["symbol"].nunique()
    assert symbols == N_SYMBOLS
    minute_bars = int(stored.groupby("symbol")["ts"].agg(lambda ts: ts.dt.ceil("1min").nunique()).sum())
    assert minute_bars == 240 * symbols - 1  # the minute whose only snapshot had conflicting versions
    assert counts == {
        "bars_1m": minute_bars,
        "bars_5m": 48 * symbols,
        "bars_15m": 16 * symbols,
        "klines_daily": symbols,
    }
    print(
        f"\ncorpus: {bad['_label'].nunique()} malformed classes, {len(bad)} bad rows quarantined, "
        f"{len(good)} good rows kept ({(good['_label'] != 'good').sum()} in unusual readable forms)"
    )
