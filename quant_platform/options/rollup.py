"""One row per option and trading day from the day's snapshots (OPTION_QUOTES -> OPTION_DAILY).

The row is the close slot's snapshot when it is good: no `snapshot_error`, not `delayed`, with a bid
and an ask. Otherwise it is the last good slot of the day, and `rollup_fallback` is set. A contract
with no good slot at all takes its last delayed snapshot that has prices (`delayed` and
`rollup_fallback` set); one with nothing usable has no row that day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_platform.core.schema import OPTION_DAILY


def daily_rollup(quotes: pd.DataFrame, contracts: pd.DataFrame, close_slot: str | None) -> pd.DataFrame:
    """OPTION_DAILY rows of one trading day; `contracts` gives kind, strike and expiry."""
    if quotes.empty or contracts.empty:
        return OPTION_DAILY.empty()
    q = quotes.copy()
    priced = q["bid"].notna() & q["ask"].notna() & (q["ask"] > 0) & q["snapshot_error"].eq("")
    good = priced & ~q["delayed"]
    q["_rank"] = np.select([good & q["slot"].eq(close_slot), good, priced], [0, 1, 2], 3)
    q = q[q["_rank"] < 3].sort_values(["symbol", "_rank", "ts"], ascending=[True, True, False])
    best = q.drop_duplicates("symbol", keep="first")
    terms = contracts[["symbol", "kind", "strike", "expiry"]].drop_duplicates("symbol")
    out = best.merge(terms, on="symbol", how="inner")
    out["mid"] = (out["bid"] + out["ask"]) / 2
    out["rollup_fallback"] = out["_rank"] > 0
    return OPTION_DAILY.conform(out.sort_values(["underlying", "symbol"]))
