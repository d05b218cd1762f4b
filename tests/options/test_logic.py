"""The Dagster-free pieces: rollup fallback, parity flags, T+1 open interest, listing rules."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from quant_platform.options import chain, enrich
from quant_platform.options.rollup import daily_rollup
from quant_platform.options.sources import SyntheticOptionSource

DAY = dt.date(2024, 10, 8)


def _day():
    src = SyntheticOptionSource()
    contracts = src.fetch_contracts(DAY, "510050.SH")
    quotes = src.fetch_quotes(DAY, "510050.SH", contracts, chain.slot_times(DAY))
    return src, contracts, quotes


def test_rollup_takes_the_close_or_the_last_good_slot():
    _, contracts, quotes = _day()
    sym = contracts["symbol"].iloc[0]
    q = quotes.copy()
    close = (q["symbol"] == sym) & (q["slot"] == "15:00")
    q.loc[close, ["bid", "ask"]] = np.nan
    q.loc[close, "snapshot_error"] = "timeout"
    late = (q["symbol"] == sym) & (q["slot"] == "14:30")
    q.loc[late, "delayed"] = True
    daily = daily_rollup(q, contracts, "15:00").set_index("symbol")
    assert daily.loc[sym, "slot"] == "14:00" and daily.loc[sym, "rollup_fallback"]
    ok = daily.drop(index=sym)
    good_close = quotes[(quotes["slot"] == "15:00") & quotes["snapshot_error"].eq("") & ~quotes["delayed"]]
    assert set(ok.index[~ok["rollup_fallback"]]) == set(good_close["symbol"]) - {sym}
    assert ((daily["mid"] >= daily["bid"]) & (daily["mid"] <= daily["ask"])).all()


def test_greeks_parity_and_open_interest():
    src, contracts, quotes = _day()
    daily = daily_rollup(quotes, contracts, "15:00")
    greeks = enrich.compute_greeks(daily, {"510050.SH": src.rates(DAY, "510050.SH")})
    assert greeks["iv"].notna().all() and greeks["open_interest"].isna().all()
    assert greeks["parity_break"].mean() < 0.05
    broken = daily.copy()
    sym = broken[(broken["kind"] == "call") & ~broken["rollup_fallback"]]["symbol"].iloc[3]
    broken.loc[broken["symbol"] == sym, ["bid", "ask", "mid"]] += 0.05
    flagged = enrich.compute_greeks(broken, {"510050.SH": src.rates(DAY, "510050.SH")}).set_index("symbol")
    assert flagged.loc[sym, "parity_break"]
    nxt = src.fetch_contracts(dt.date(2024, 10, 9), "510050.SH")
    filled = enrich.fill_open_interest(greeks, nxt)
    assert filled["open_interest"].notna().all()
    assert enrich.fill_open_interest(filled, nxt).equals(filled)  # filling again changes nothing


def test_listing_rules():
    assert chain.listed_expiries(DAY) == [
        dt.date(2024, 10, 23), dt.date(2024, 11, 27), dt.date(2024, 12, 25), dt.date(2025, 3, 26)
    ]  # fmt: skip
    assert chain.listed_expiries(dt.date(2024, 10, 24))[0] == dt.date(2024, 11, 27)
    assert chain.option_symbol("510050.SH", "call", dt.date(2024, 10, 23), 2.5) == "510050C2410M02500.SH"
    assert chain.parse_symbol("510050P2410M02500.SH")["kind"] == "put"
    assert [s for s, _ in chain.slot_times(DAY)][-1] == "15:00" and len(chain.slot_times(DAY)) == 8
    a = SyntheticOptionSource().fetch_quotes(DAY, "510050.SH", _day()[1], chain.slot_times(DAY))
    pd.testing.assert_frame_equal(a, _day()[2])  # deterministic
