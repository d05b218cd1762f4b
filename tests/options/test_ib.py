"""The IB adapter on a recorded session: discovery, batched qualification, the contract cache, open
interest, snapshots with a timed-out batch retried, delayed data and errors kept as rows."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

pytest.importorskip("ib_async")

from ib_replay import ReplayIB  # noqa: E402

from quant_platform.core.schema import OPTION_CONTRACTS, OPTION_QUOTES  # noqa: E402
from quant_platform.options import chain  # noqa: E402
from quant_platform.options.ib import IBOptionSource  # noqa: E402

DAY = dt.date(2024, 10, 8)
NOW = pd.Timestamp("2024-10-08T14:31:05Z")


def _source(client, tmp_path, **kw):
    options = {
        "calendar": "XNYS",
        "max_expiries": 2,
        "strikes_around": 3,
        "batch_size": 10,
        "oi_wait": 0.0,
        "messages_per_second": 1e6,
        "cache_path": tmp_path / "ib_contracts.json",
        "clock": lambda: NOW,
        "sleep": lambda s: None,
    }
    return IBOptionSource(["SPY"], client=client, **{**options, **kw})


def test_contract_discovery_batches_qualification_and_caches(tmp_path):
    ib = ReplayIB()
    src = _source(ib, tmp_path)
    contracts = src.fetch_contracts(DAY, "SPY")
    assert list(contracts.columns) == OPTION_CONTRACTS.names
    # spot 572.32: strikes 569..575 (3 either side of 572), expiries from the day on: 20241009, 20241011
    assert sorted(contracts["expiry"].dt.strftime("%Y%m%d").unique()) == ["20241009", "20241011"]
    assert sorted(contracts["strike"].unique()) == [569.0, 570.0, 571.0, 572.0, 573.0, 574.0, 575.0]
    assert len(contracts) == 2 * 7 * 2
    row = contracts[contracts["symbol"] == "SPY241009C00572000"].iloc[0]
    assert row["kind"] == "call" and row["con_id"] > 0 and row["multiplier"] == 100.0
    assert ib.calls["qualifyContracts"] == 1 + 3  # the underlying, then 28 options in batches of 10
    assert ib.contracts_asked["qualifyContracts"] == 1 + 28
    assert contracts["prev_open_interest"].notna().sum() >= 27
    assert len(ib.cancelled) == 28  # every open-interest subscription is cancelled

    again = _source(ReplayIB(), tmp_path)  # a new process: the cache file answers
    assert again.fetch_contracts(DAY, "SPY").equals(contracts)
    assert again.client.calls["qualifyContracts"] == 1  # only the underlying


def test_unknown_strikes_are_left_out(tmp_path):
    ib = ReplayIB()
    src = _source(ib, tmp_path, strikes_around=6)  # reaches 567.5, not listed for 20241009
    contracts = src.fetch_contracts(DAY, "SPY")
    listed = contracts[contracts["expiry"] == pd.Timestamp("2024-10-09")]
    assert 567.5 not in set(listed["strike"])
    assert 567.5 in set(contracts[contracts["expiry"] == pd.Timestamp("2024-10-11")]["strike"])


def test_snapshot_of_the_due_slot_with_retry_delayed_and_errors(tmp_path):
    ib = ReplayIB()
    src = _source(ib, tmp_path, strikes_around=16)  # reaches the recorded oddities at 560-563
    contracts = src.fetch_contracts(DAY, "SPY")
    slots = chain.slot_times(DAY, calendar="XNYS")
    quotes = src.fetch_quotes(DAY, "SPY", contracts, slots)
    assert list(quotes.columns) == OPTION_QUOTES.names
    assert set(quotes["slot"]) == {"10:30"} and len(quotes) == len(contracts)
    assert (quotes["ts"] == pd.Timestamp("2024-10-08T14:30:00Z")).all()
    assert (quotes["underlying_price"] == 572.32).all()
    # the recorded timeout of the second reqTickers call was retried, so no batch failed
    assert not quotes["snapshot_error"].str.startswith("snapshot failed").any()
    errors = quotes[quotes["snapshot_error"] != ""]
    assert errors["snapshot_error"].str.contains("10091").sum() == 1  # IB's error for that request
    assert (errors["snapshot_error"] == "no ticker returned").sum() == 1
    assert errors[["bid", "ask"]].isna().all().all()
    assert quotes["delayed"].sum() == 3
    good = quotes[quotes["snapshot_error"] == ""]
    assert (good["bid"] <= good["ask"]).all() and good["bid"].notna().all()


def test_only_the_present_is_served(tmp_path):
    src = _source(ReplayIB(), tmp_path)
    contracts = src.fetch_contracts(DAY, "SPY")
    assert src.fetch_quotes(DAY - dt.timedelta(days=1), "SPY", contracts, []).empty
    early = _source(ReplayIB(), tmp_path)
    early._clock = lambda: pd.Timestamp("2024-10-08T13:00:00Z")  # before 10:00 New York
    assert early.fetch_quotes(DAY, "SPY", contracts, chain.slot_times(DAY, calendar="XNYS")).empty


def test_a_batch_that_keeps_timing_out_becomes_error_rows(tmp_path):
    ib = ReplayIB()
    src = _source(ib, tmp_path, attempts=2)
    contracts = src.fetch_contracts(DAY, "SPY")
    ib._faults["reqTickers"] = [3, 4]  # the first option batch, and its retry
    quotes = src.fetch_quotes(DAY, "SPY", contracts, chain.slot_times(DAY, calendar="XNYS"))
    failed = quotes[quotes["snapshot_error"].str.startswith("snapshot failed")]
    assert len(failed) == 10 and failed["bid"].isna().all()
    assert math.isclose(quotes["underlying_price"].iloc[0], 572.32)


def test_unknown_underlying_is_a_clear_error(tmp_path):
    src = IBOptionSource(["QQQX"], client=ReplayIB(), sleep=lambda s: None, messages_per_second=1e6)
    with pytest.raises(ValueError, match="IB does not know the underlying 'QQQX'"):
        src.fetch_contracts(DAY, "QQQX")
