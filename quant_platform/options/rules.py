"""Row rules of the option tables: every input row ends up clean or in `quarantine`, with its rule.

Like the market-data rules (`core.quality.rules`), values are coerced one by one (text in a numeric
column quarantines that row only), every rule is evaluated on every row, and a row failing several
gets the first as `rule` and all reasons joined. A failed snapshot (`snapshot_error` set, prices
NaN) is not a bad row: it is kept, flagged, and the rollup skips it. Put-call parity breaks are
flagged on the greeks rows (`parity_break`, `enrich.parity_breaks`), not quarantined: both legs can be
right and the market crossed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from quant_platform.core.quality.gate import GateResult
from quant_platform.core.quality.quarantine import quarantine_frame
from quant_platform.core.schema import OPTION_CONTRACTS, OPTION_GREEKS, OPTION_QUOTES, QUARANTINE, TableSchema

RULES: dict[str, str] = {
    "bad_type": "a value that cannot be read as its column's type (text in a numeric column, an "
    "unreadable timestamp or flag)",
    "missing_value": "a required value is missing: symbol, underlying, slot, ts, the underlying's price; "
    "greeks: the mid",
    "non_finite": "a numeric value is +inf or -inf",
    "negative_price": "bid, ask, last or volume < 0, or the underlying's price <= 0",
    "crossed_quote": "bid > ask",
    "trade_date_mismatch": "trade_date differs from the partition's trading day",
    "unknown_contract": "the symbol is not in the day's option_contracts",
    "bad_terms": "contracts: kind not call/put, strike <= 0, or expiry before the trading day",
    "expired": "greeks: no time to expiry left at the row's slot",
    "no_implied_vol": "greeks: no volatility reproduces the mid (below intrinsic or above the bound)",
    "iv_out_of_range": "greeks: implied vol outside [MIN_IV, MAX_IV]",
    "greek_out_of_range": "greeks: |delta| > 1, a call's delta < 0 or a put's > 0, gamma or vega < 0",
    "duplicate": "another row has the same key (quotes: symbol + slot; contracts, greeks: symbol); the "
    "first is kept",
}
_ORDER = {name: i for i, name in enumerate(RULES)}
MIN_IV, MAX_IV = 0.01, 5.0
_NUMERIC = {
    OPTION_QUOTES.name: ("underlying_price", "bid", "ask", "last", "volume"),
    OPTION_CONTRACTS.name: ("strike", "multiplier", "prev_open_interest"),
    OPTION_GREEKS.name: (
        "underlying_price",
        "mid",
        "t_years",
        "iv",
        "delta",
        "gamma",
        "vega",
        "theta",
        "rho",
    ),
}


class _Flags:
    """Per-row rule hits: the first rule (by RULES order) and every reason."""

    def __init__(self, n: int) -> None:
        self.rule = np.full(n, len(RULES), dtype=np.int64)
        self.reasons: list[list[str]] = [[] for _ in range(n)]

    @property
    def bad(self) -> np.ndarray:
        return self.rule < len(RULES)

    def add(self, rule: str, mask, reason: Callable[[int], str]) -> None:
        mask = np.asarray(mask, dtype=bool)
        for i in np.flatnonzero(mask):
            self.rule[i] = min(self.rule[i], _ORDER[rule])
            self.reasons[i].append(reason(int(i)))


def _coerce(raw: pd.DataFrame, schema: TableSchema, flags: _Flags) -> pd.DataFrame:
    missing = [c for c in schema.names if c not in raw.columns]
    if missing:
        raise ValueError(f"{schema.name}: missing columns {missing}")
    work = raw[schema.names].reset_index(drop=True).copy()
    for col in _NUMERIC.get(schema.name, ()):
        values = pd.to_numeric(work[col], errors="coerce").astype("float64")
        bad = work[col].notna().to_numpy() & values.isna().to_numpy()
        flags.add("bad_type", bad, lambda i, col=col: f"{col} {raw[col].iloc[i]!r} is not a number")
        work[col] = values
    for col in [c.name for c in schema.columns if c.dtype.startswith("datetime64")]:
        utc = col == "ts" or "UTC" in schema.dtypes[col]
        values = pd.to_datetime(work[col], errors="coerce", utc=utc)
        bad = work[col].notna().to_numpy() & values.isna().to_numpy()
        flags.add("bad_type", bad, lambda i, col=col: f"{col} {raw[col].iloc[i]!r} is not a timestamp")
        work[col] = values if utc else values.dt.tz_localize(None) if values.dt.tz is not None else values
    for col in [c.name for c in schema.columns if c.dtype == "bool"]:
        mapped = work[col].map(
            lambda v: (
                v
                if isinstance(v, bool | np.bool_)
                else {"true": True, "false": False, "1": True, "0": False}.get(str(v).strip().lower())
            )
        )
        bad = mapped.isna().to_numpy()
        flags.add("bad_type", bad, lambda i, col=col: f"{col} {raw[col].iloc[i]!r} is not a flag")
        work[col] = mapped.fillna(False).astype(bool)
    for col in [c.name for c in schema.columns if c.dtype == "str"]:
        work[col] = work[col].map(
            lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
        )
    return work


def _text_missing(work: pd.DataFrame, cols: Iterable[str], flags: _Flags) -> None:
    for col in cols:
        flags.add(
            "missing_value", work[col].str.strip().eq("").to_numpy(), lambda i, col=col: f"{col} is empty"
        )


def _numbers(work: pd.DataFrame, cols: Iterable[str], flags: _Flags) -> None:
    for col in cols:
        x = work[col].to_numpy(float)
        flags.add("non_finite", np.isinf(x), lambda i, col=col, x=x: f"{col} is {x[i]}")


def _day_rule(work: pd.DataFrame, day: dt.date | None, flags: _Flags) -> None:
    if day is None:
        return
    days = pd.to_datetime(work["trade_date"], errors="coerce")
    off = days.notna().to_numpy() & (days.dt.date != day).to_numpy()
    flags.add("trade_date_mismatch", off, lambda i: f"trade_date {days.iloc[i].date()} is not {day}")


def _duplicates(work: pd.DataFrame, keys: list[str], flags: _Flags) -> None:
    clean = ~flags.bad
    dup = np.zeros(len(work), dtype=bool)
    dup[clean] = work[clean].duplicated(keys, keep="first").to_numpy()
    flags.add("duplicate", dup, lambda i: f"another row has the same {' + '.join(keys)}")


def _result(raw: pd.DataFrame, work: pd.DataFrame, flags: _Flags, schema: TableSchema, day) -> GateResult:
    bad = flags.bad
    names = list(RULES)
    by_rule: dict[str, int] = {}
    quarantine = QUARANTINE.empty()
    if bad.any():
        idx = np.flatnonzero(bad)
        rules = [names[flags.rule[i]] for i in idx]
        for r in rules:
            by_rule[r] = by_rule.get(r, 0) + 1
        rows = raw.reset_index(drop=True).iloc[idx]
        quarantine = quarantine_frame(
            schema.name,
            rows,
            rule=rules,
            reason=["; ".join(flags.reasons[i]) for i in idx],
            trade_date=day if day is not None else rows.get("trade_date"),
            symbol=rows.get("symbol"),
            ts=rows.get("ts"),
        )
    clean = schema.conform(work[~bad]) if (~bad).any() else schema.empty()
    return GateResult(clean=clean, quarantine=quarantine, rows_in=len(raw), by_rule=by_rule)


def split_option_quotes(
    raw: pd.DataFrame, *, trade_date: dt.date | None = None, contracts: Iterable[str] | None = None
) -> GateResult:
    """Clean OPTION_QUOTES rows and quarantined ones (RULES); `contracts`: the day's known symbols."""
    flags = _Flags(len(raw))
    if raw.empty:
        return GateResult(OPTION_QUOTES.empty(), QUARANTINE.empty())
    work = _coerce(raw, OPTION_QUOTES, flags)
    _text_missing(work, ("symbol", "underlying", "slot"), flags)
    flags.add(
        "missing_value", work["ts"].isna().to_numpy() & raw["ts"].isna().to_numpy(), lambda i: "ts is missing"
    )
    und = work["underlying_price"].to_numpy(float)
    flags.add(
        "missing_value",
        np.isnan(und) & raw["underlying_price"].isna().to_numpy(),
        lambda i: "underlying_price is missing",
    )
    _numbers(work, _NUMERIC[OPTION_QUOTES.name], flags)
    for col in ("bid", "ask", "last", "volume"):
        x = work[col].to_numpy(float)
        flags.add("negative_price", x < 0, lambda i, col=col, x=x: f"{col} {x[i]} < 0")
    flags.add("negative_price", und <= 0, lambda i: f"underlying_price {und[i]} <= 0")
    bid, ask = work["bid"].to_numpy(float), work["ask"].to_numpy(float)
    flags.add("crossed_quote", bid > ask, lambda i: f"bid {bid[i]} > ask {ask[i]}")
    _day_rule(work, trade_date, flags)
    if contracts is not None:
        known = set(contracts)
        unknown = ~work["symbol"].isin(known).to_numpy() & work["symbol"].ne("").to_numpy()
        flags.add(
            "unknown_contract", unknown, lambda i: f"{work['symbol'].iloc[i]} is not in the day's chain"
        )
    _duplicates(work, ["symbol", "slot"], flags)
    return _result(raw, work, flags, OPTION_QUOTES, trade_date)


def split_option_contracts(raw: pd.DataFrame, *, trade_date: dt.date | None = None) -> GateResult:
    """Clean OPTION_CONTRACTS rows and quarantined ones."""
    flags = _Flags(len(raw))
    if raw.empty:
        return GateResult(OPTION_CONTRACTS.empty(), QUARANTINE.empty())
    work = _coerce(raw, OPTION_CONTRACTS, flags)
    _text_missing(work, ("symbol", "underlying"), flags)
    strike = work["strike"].to_numpy(float)
    expiry = pd.to_datetime(work["expiry"])
    day = pd.Timestamp(trade_date) if trade_date is not None else pd.to_datetime(work["trade_date"])
    terms = ~work["kind"].isin(("call", "put")).to_numpy() | ~(strike > 0) | (expiry < day).to_numpy()
    flags.add(
        "bad_terms",
        terms,
        lambda i: f"kind {work['kind'].iloc[i]!r}, strike {strike[i]}, expiry {expiry.iloc[i]}",
    )
    _day_rule(work, trade_date, flags)
    _duplicates(work, ["symbol"], flags)
    return _result(raw, work, flags, OPTION_CONTRACTS, trade_date)


def split_option_greeks(raw: pd.DataFrame, *, trade_date: dt.date | None = None) -> GateResult:
    """Clean OPTION_GREEKS rows and quarantined ones: IV and greeks in sane ranges."""
    flags = _Flags(len(raw))
    if raw.empty:
        return GateResult(OPTION_GREEKS.empty(), QUARANTINE.empty())
    work = _coerce(raw, OPTION_GREEKS, flags)
    _text_missing(work, ("symbol", "underlying"), flags)
    for col in ("mid", "underlying_price"):
        x = work[col].to_numpy(float)
        flags.add("missing_value", np.isnan(x), lambda i, col=col: f"{col} is missing")
    _numbers(work, _NUMERIC[OPTION_GREEKS.name], flags)
    t = work["t_years"].to_numpy(float)
    flags.add("expired", ~(t > 0), lambda i: f"t_years {t[i]:.6f}: no time to expiry left")
    iv = work["iv"].to_numpy(float)
    has_mid = ~np.isnan(work["mid"].to_numpy(float))
    flags.add(
        "no_implied_vol",
        np.isnan(iv) & has_mid & (t > 0),
        lambda i: f"no vol reproduces mid {work['mid'].iloc[i]}",
    )
    flags.add(
        "iv_out_of_range",
        (iv < MIN_IV) | (iv > MAX_IV),
        lambda i: f"iv {iv[i]:.4f} outside [{MIN_IV}, {MAX_IV}]",
    )
    delta, gamma, vega = (work[c].to_numpy(float) for c in ("delta", "gamma", "vega"))
    call = work["kind"].eq("call").to_numpy()
    wrong = (
        (np.abs(delta) > 1 + 1e-9) | (call & (delta < 0)) | (~call & (delta > 0)) | (gamma < 0) | (vega < 0)
    )
    flags.add(
        "greek_out_of_range",
        wrong,
        lambda i: f"delta {delta[i]:.4f}, gamma {gamma[i]:.4f}, vega {vega[i]:.4f}",
    )
    _day_rule(work, trade_date, flags)
    _duplicates(work, ["symbol"], flags)
    return _result(raw, work, flags, OPTION_GREEKS, trade_date)


def gate_days(split, frames: dict[dt.date, pd.DataFrame], schema: TableSchema, **opts) -> GateResult:
    """`split` each day's frame; one GateResult over the days (clean rows conformed)."""
    clean, quarantined, by_rule, rows_in = [], [], {}, 0
    for day, frame in frames.items():
        if frame is None or frame.empty:
            continue
        extra = {k: (v(day) if callable(v) else v) for k, v in opts.items()}
        result = split(frame, trade_date=day, **extra)
        rows_in += result.rows_in
        clean.append(result.clean)
        quarantined.append(result.quarantine)
        for rule, n in result.by_rule.items():
            by_rule[rule] = by_rule.get(rule, 0) + n
    return GateResult(
        clean=schema.conform(pd.concat(clean, ignore_index=True)) if clean else schema.empty(),
        quarantine=QUARANTINE.conform(pd.concat(quarantined, ignore_index=True))
        if quarantined
        else QUARANTINE.empty(),
        rows_in=rows_in,
        by_rule=by_rule,
    )
