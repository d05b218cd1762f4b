"""The options assets materialized end to end on chdb in a temporary QP_HOME, with their checks."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from quant_platform.options.dagster import OPTIONS_ASSETS, OPTIONS_CHECKS, OptionSourceResource
from quant_platform.options.sources import SyntheticOptionSource
from quant_platform.resources import ClickHouseResource
from quant_platform.storage.cold import ColdStore

D1, D2, D3 = dt.date(2024, 9, 27), dt.date(2024, 9, 30), dt.date(2024, 10, 8)  # National Day between D2, D3
TABLES = ["option_contracts", "option_quotes", "option_daily", "option_greeks", "option_qa_metrics"]


def materialize(dsn, start, end, source=None, assets=OPTIONS_ASSETS, checks=OPTIONS_CHECKS):
    resources = {"clickhouse": ClickHouseResource(dsn=dsn), "options": source or OptionSourceResource()}
    tags = {ASSET_PARTITION_RANGE_START_TAG: str(start), ASSET_PARTITION_RANGE_END_TAG: str(end)}
    return dg.materialize([*assets, *checks], resources=resources, tags=tags, raise_on_error=False)


def read(dsn, table, start, end):
    with ColdStore(dsn) as cold:
        return cold.read_table(table, start, end)


def test_options_group_end_to_end(chdb_dsn):
    result = materialize(chdb_dsn, D2, D3)
    assert result.success
    checks = {e.asset_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()}
    gated = ["option_contracts", "option_quotes", "option_daily", "option_greeks"]
    assert checks == dict.fromkeys(gated, True)
    with ColdStore(chdb_dsn) as cold:
        counts = {t: cold.count_by_day(t, [D2, D3]) for t in TABLES}
    assert all(n > 0 for t in TABLES for n in counts[t].values())
    contracts = read(chdb_dsn, "option_contracts", D3, D3)
    assert counts["option_quotes"][D3] == 8 * len(contracts)  # eight 30-minute slots
    daily = read(chdb_dsn, "option_daily", D3, D3)
    assert 0 < daily["rollup_fallback"].sum() < len(daily)  # failed/delayed close slots fell back
    assert (daily.loc[~daily["rollup_fallback"], "slot"] == "15:00").all()
    greeks = read(chdb_dsn, "option_greeks", D2, D3)
    assert greeks["iv"].between(0.05, 2.0).all() and greeks["delta"].abs().le(1).all()
    # T+1: D2's open interest arrived with D3's chain; D3's waits for the next session
    assert greeks.loc[greeks["trade_date"] == pd.Timestamp(D2), "open_interest"].notna().mean() > 0.9
    assert greeks.loc[greeks["trade_date"] == pd.Timestamp(D3), "open_interest"].isna().all()
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    qa = mats["options_qa"]
    assert "iv_surface/510050.SH" in qa and qa["iv_surface/510050.SH"].value.startswith("![")
    assert "trend_plot/510050.SH" in qa and "slot_coverage" in qa["summary"].value
    metrics = read(chdb_dsn, "option_qa_metrics", D3, D3).set_index("metric")["value"]
    assert 0.9 < metrics["slot_coverage"] < 1.0 and 0 < metrics["delayed_share"] < 0.1
    assert metrics["prev_day_oi_fill_rate"] > 0.9


def test_t_plus_one_open_interest_is_idempotent_in_any_order(chdb_dsn):
    assert materialize(chdb_dsn, D1, D1).success
    first = read(chdb_dsn, "option_greeks", D1, D1)
    assert first["open_interest"].isna().all()  # D2 has not published it yet
    assert materialize(chdb_dsn, D2, D2).success
    filled = read(chdb_dsn, "option_greeks", D1, D2)
    d1 = filled[filled["trade_date"] == pd.Timestamp(D1)].reset_index(drop=True)
    assert d1["open_interest"].notna().mean() > 0.9  # filled by D2's run
    pd.testing.assert_frame_equal(d1.drop(columns="open_interest"), first.drop(columns="open_interest"))
    # what D2 published for D1 is what the source says D1's close was
    chain_d2 = SyntheticOptionSource().fetch_contracts(D2, "510050.SH")
    chain_d2 = chain_d2.set_index("symbol")["prev_open_interest"]
    np.testing.assert_array_equal(d1["open_interest"].to_numpy(), d1["symbol"].map(chain_d2).to_numpy())

    for start, end in [(D1, D1), (D2, D2), (D1, D2), (D2, D2)]:  # re-runs, singly and as a range
        assert materialize(chdb_dsn, start, end).success
        pd.testing.assert_frame_equal(read(chdb_dsn, "option_greeks", D1, D2), filled)


class CorpusSource:
    """The synthetic chain, with a corpus of malformed snapshots added to the day's good ones."""

    name = "corpus"

    def __init__(self) -> None:
        self.inner = SyntheticOptionSource()

    def underlyings(self):
        return self.inner.underlyings()

    def rates(self, day, underlying):
        return self.inner.rates(day, underlying)

    def fetch_contracts(self, day, underlying):
        return self.inner.fetch_contracts(day, underlying)

    def fetch_quotes(self, day, underlying, contracts, slots):
        good = self.inner.fetch_quotes(day, underlying, contracts, slots)
        base = good.iloc[0].to_dict()
        bad = []

        def row(case, **changes):
            bad.append({**base, "slot": "10:00", **changes, "_case": case})

        row("crossed_quote", symbol=good["symbol"].iloc[9], bid=0.25, ask=0.2)
        row("negative_price", symbol=good["symbol"].iloc[17], bid=-0.01)
        row("bad_type", symbol=good["symbol"].iloc[25], ask="n/a")
        row("missing_value", symbol=good["symbol"].iloc[33], underlying_price=None)
        row("missing_value", symbol="  ")
        row("non_finite", symbol=good["symbol"].iloc[41], last=float("inf"))
        row("trade_date_mismatch", symbol=good["symbol"].iloc[49], trade_date=pd.Timestamp("2024-10-09"))
        row("unknown_contract", symbol="510050C2410M09990.SH")
        row("bad_type", symbol=good["symbol"].iloc[57], delayed="maybe")
        row("duplicate")  # same symbol and slot as the first good row
        corpus = pd.DataFrame(bad)
        self.expected = list(corpus.pop("_case"))
        return pd.concat([good.astype(object), corpus], ignore_index=True)


class CorpusResource(OptionSourceResource):
    def source(self):
        return SOURCE


SOURCE = CorpusSource()


def test_malformed_rows_are_quarantined_with_their_rule(chdb_dsn):
    assets = [a for a in OPTIONS_ASSETS if a.key.to_user_string() in ("option_contracts", "option_quotes")]
    result = materialize(chdb_dsn, D3, D3, source=CorpusResource(), assets=assets, checks=[])
    assert result.success
    quarantine = read(chdb_dsn, "quarantine", D3, D3)
    quarantine = quarantine[quarantine["table_name"] == "option_quotes"]
    assert sorted(quarantine["rule"]) == sorted(SOURCE.expected)
    assert quarantine["reason"].str.len().gt(0).all()
    dup = quarantine[quarantine["rule"] == "duplicate"]
    assert "symbol + slot" in dup["reason"].iloc[0]
    quotes = read(chdb_dsn, "option_quotes", D3, D3)
    contracts = read(chdb_dsn, "option_contracts", D3, D3)
    assert len(quotes) == 8 * len(contracts)  # every good row kept, none of the bad ones
    assert not quotes.duplicated(["symbol", "slot"]).any()
    assert (quotes["bid"].dropna() <= quotes.loc[quotes["bid"].notna(), "ask"]).all()


def test_the_checks_block_on_a_bad_table(chdb_dsn, monkeypatch):
    monkeypatch.setenv("QP_QA_MAX_QUARANTINED_SHARE", "0.0")  # any quarantined row blocks
    result = materialize(chdb_dsn, D3, D3, source=CorpusResource())
    evaluations = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert not evaluations["option_quotes"].passed
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "option_daily" not in materialized  # blocked downstream
