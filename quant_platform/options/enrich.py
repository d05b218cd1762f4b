"""Implied vol and greeks of the daily rows, put-call parity flags, and T+1 open interest.

Open interest at a session's close is published the next session (`option_contracts.
prev_open_interest` of that day). So `option_greeks` of day D gets its `open_interest` from the
contracts of the session after D, once they are stored. Both directions are pure functions of stored
rows, which makes any order of (re-)runs give the same table:

* materializing D fills D's open interest from D+1's contracts if D+1 is already there, and
* fills D-1's rows (already stored) from D's contracts.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from quant_platform.core.schema import OPTION_GREEKS
from quant_platform.options import chain

PARITY_TICKS = 2  # tolerance on top of the two half-spreads
TICK = 0.0001


def compute_greeks(
    daily: pd.DataFrame, rates: Mapping[str, tuple[float, float]], calendar: str = "XSHG"
) -> pd.DataFrame:
    """OPTION_GREEKS rows (open_interest NaN) from OPTION_DAILY rows; `rates`: underlying -> (r, q).

    Contracts in their last session (expiry == trade_date) are left out."""
    from quant_platform.options.bsm import implied_vol, price_and_greeks

    # Contracts expiring on the day have no meaningful IV left (minutes to expiry, the underlying's
    # and the option's snapshots out of step): they stay in option_daily, not in option_greeks.
    daily = daily[pd.to_datetime(daily["expiry"]) > pd.to_datetime(daily["trade_date"])]
    if daily.empty:
        return OPTION_GREEKS.empty()
    d = daily.reset_index(drop=True).copy()
    r = d["underlying"].map(lambda u: rates.get(u, (0.0, 0.0))[0]).to_numpy(float)
    q = d["underlying"].map(lambda u: rates.get(u, (0.0, 0.0))[1]).to_numpy(float)
    t = np.asarray(chain.year_fraction(d["ts"], d["expiry"], calendar), dtype=float)
    S, K, mid = d["underlying_price"].to_numpy(float), d["strike"].to_numpy(float), d["mid"].to_numpy(float)
    kind = d["kind"].to_numpy()
    iv = implied_vol(mid, S, K, t, r, q, kind)
    g = price_and_greeks(S, K, t, r, iv, q, kind)
    d = d.assign(
        t_years=t, rate=r, dividend=q, iv=iv, **{k: g[k] for k in ("delta", "gamma", "vega", "theta", "rho")}
    )
    d["parity_break"] = parity_breaks(d)
    d["open_interest"] = np.nan
    return OPTION_GREEKS.conform(d.sort_values(["underlying", "symbol"]))


def parity_breaks(d: pd.DataFrame) -> np.ndarray:
    """Whether each row's call/put pair (same underlying, expiry, strike, slot) breaks put-call parity:
    |C - P - (S e^-qt - K e^-rt)| beyond both half-spreads plus PARITY_TICKS ticks. Pairs taken at
    different slots (a fallback leg) are not compared."""
    keys = ["underlying", "expiry", "strike", "slot"]
    calls = d[d["kind"] == "call"]
    puts = d[d["kind"] == "put"]
    pair = calls.merge(puts, on=keys, suffixes=("_c", "_p"))
    if pair.empty:
        return np.zeros(len(d), dtype=bool)
    S, K, t = pair["underlying_price_c"], pair["strike"], pair["t_years_c"]
    forward_value = S * np.exp(-pair["dividend_c"] * t) - K * np.exp(-pair["rate_c"] * t)
    gap = (pair["mid_c"] - pair["mid_p"] - forward_value).abs()
    tol = (pair["ask_c"] - pair["bid_c"]) / 2 + (pair["ask_p"] - pair["bid_p"]) / 2 + PARITY_TICKS * TICK
    broken = set(pair.loc[gap > tol, "symbol_c"]) | set(pair.loc[gap > tol, "symbol_p"])
    return d["symbol"].isin(broken).to_numpy()


def fill_open_interest(greeks: pd.DataFrame, next_contracts: pd.DataFrame) -> pd.DataFrame:
    """`greeks` of one day with `open_interest` from the next session's `prev_open_interest`."""
    if greeks.empty:
        return greeks
    oi = next_contracts.drop_duplicates("symbol").set_index("symbol")["prev_open_interest"]
    out = greeks.copy()
    out["open_interest"] = out["symbol"].map(oi).astype(float)
    return OPTION_GREEKS.conform(out)
