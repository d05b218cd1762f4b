"""Options QA: per trading day and underlying, the numbers that say whether the chain can be trusted.

* `slot_coverage`: good snapshots (no error, not delayed, priced) / (contracts x slots);
* `delayed_share`, `error_share` of the snapshots;
* `rollup_fallback_rate`: daily rows not taken from a good close slot;
* `prev_day_oi_fill_rate`: rows of the previous session whose open interest arrived (T+1);
* `iv_outliers`: IVs far from their neighbours on the smile (`iv_outliers`), `greek_outliers`;
* `parity_breaks`, `quarantined_quotes`, `quarantined_greeks`, `atm_iv` (nearest expiry), `contracts`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from quant_platform.core.schema import OPTION_QA

TREND_METRICS = ["slot_coverage", "delayed_share", "rollup_fallback_rate", "prev_day_oi_fill_rate", "atm_iv"]


def iv_outliers(greeks: pd.DataFrame, window: int = 5, floor: float = 0.05, z: float = 5.0) -> np.ndarray:
    """IVs that differ from the median of their `window` neighbours on the same smile (underlying,
    expiry, kind, by strike) by more than max(floor, z x the smile's median absolute deviation)."""
    out = np.zeros(len(greeks), dtype=bool)
    if greeks.empty:
        return out
    g = greeks.reset_index(drop=True)
    for _, idx in g.groupby(["underlying", "expiry", "kind"]).groups.items():
        smile = g.loc[idx].sort_values("strike")
        iv = smile["iv"]
        med = iv.rolling(window, center=True, min_periods=2).median()
        resid = (iv - med).abs()
        mad = float(np.nanmedian(resid)) if resid.notna().any() else 0.0
        out[smile.index[(resid > max(floor, z * 1.4826 * mad)).to_numpy()]] = True
    return out


def day_metrics(
    day: dt.date,
    underlying: str,
    *,
    contracts: pd.DataFrame,
    quotes: pd.DataFrame,
    daily: pd.DataFrame,
    greeks: pd.DataFrame,
    prev_greeks: pd.DataFrame,
    slots: int,
    quarantined: dict[str, int],
) -> pd.DataFrame:
    """OPTION_QA rows of one day and underlying."""
    n_contracts = len(contracts)
    expected = n_contracts * slots
    ok = quotes["snapshot_error"].eq("") & ~quotes["delayed"] & quotes["bid"].notna() & quotes["ask"].notna()
    near = greeks[greeks["expiry"] == greeks["expiry"].min()] if len(greeks) else greeks
    atm = near.iloc[(near["strike"] - near["underlying_price"]).abs().argsort()[:2]] if len(near) else near
    delta_bad = greeks["delta"].abs() > 1 if len(greeks) else pd.Series(dtype=bool)
    metrics = {
        "contracts": n_contracts,
        "snapshots": len(quotes),
        "slot_coverage": ok.sum() / expected if expected else np.nan,
        "delayed_share": quotes["delayed"].mean() if len(quotes) else np.nan,
        "error_share": quotes["snapshot_error"].ne("").mean() if len(quotes) else np.nan,
        "rollup_fallback_rate": daily["rollup_fallback"].mean() if len(daily) else np.nan,
        "prev_day_oi_fill_rate": prev_greeks["open_interest"].notna().mean() if len(prev_greeks) else np.nan,
        "iv_outliers": int(iv_outliers(greeks).sum()),
        "greek_outliers": int(delta_bad.sum()) + int((greeks["gamma"] < 0).sum() if len(greeks) else 0),
        "parity_breaks": int(greeks["parity_break"].sum()) if len(greeks) else 0,
        "quarantined_quotes": quarantined.get("option_quotes", 0),
        "quarantined_greeks": quarantined.get("option_greeks", 0),
        "atm_iv": float(atm["iv"].mean()) if len(atm) else np.nan,
    }
    frame = pd.DataFrame(
        {
            "trade_date": pd.Timestamp(day),
            "underlying": underlying,
            "metric": list(metrics),
            "value": list(metrics.values()),
        }
    )
    return OPTION_QA.conform(frame.astype({"value": float}))


def trend(history: pd.DataFrame, underlying: str, metrics: list[str] = TREND_METRICS) -> pd.DataFrame:
    """One row per day, one column per metric, of `underlying` in an OPTION_QA history."""
    h = history[(history["underlying"] == underlying) & history["metric"].isin(metrics)]
    if h.empty:
        return pd.DataFrame(columns=["trade_date", *metrics])
    wide = h.pivot_table(index="trade_date", columns="metric", values="value", aggfunc="last")
    return wide.reindex(columns=[m for m in metrics if m in wide.columns]).reset_index()
