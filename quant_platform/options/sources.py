"""Where option chains and snapshots come from: the `OptionSource` interface and the synthetic chain.

`QP_OPTIONS_SOURCE=synthetic|ib` picks the implementation (`option_source_from_settings`); the
Interactive Brokers adapter is `quant_platform.options.ib`.

The synthetic source is deterministic: the same seed, underlying and day always give the same
chain and snapshots, so runs, tests and benchmarks are reproducible without a vendor. The synthetic
A-share market has no ETFs, so the underlying's path is generated here with the same conventions
(a daily lognormal path over the calendar's sessions, Brownian bridges inside the day).

* Chain: the SSE listing rules of `chain` (four expiries, strikes on the exchange's interval). An
  expiry's strikes cover every previous close since it was listed, four intervals either side, so
  strikes are added as the underlying moves and none disappears before expiry.
* Prices: BSM at a smile (ATM level following a mean-reverting daily path, a term slope, skew and
  curvature in standardised moneyness), quoted on the 0.0001 tick with a spread of ~1 % of the
  price and some noise around the model mid.
* Snapshots at fixed slots (every 30 minutes; the last is the close). About 3 % are delayed (they
  repeat the previous slot's prices) and 1.5 % fail (`snapshot_error`, prices NaN).
* Open interest at each session's close is published the next session (`prev_open_interest` of
  that day's chain): a contract listed today has none.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from quant_platform.core.calendar import get_calendar
from quant_platform.core.schema import OPTION_CONTRACTS, OPTION_QUOTES
from quant_platform.options import chain

TICK = 0.0001
SNAPSHOT_ERRORS = ("timeout", "no market data", "contract not found")
ANCHOR_DAY = dt.date(2024, 1, 2)  # the synthetic underlying is at its base price on this day


@runtime_checkable
class OptionSource(Protocol):
    """Option chains and snapshots of a set of underlyings.

    `fetch_contracts` returns OPTION_CONTRACTS rows (the day's chain, with the open interest the
    day publishes); `fetch_quotes` returns OPTION_QUOTES rows for those of `slots` it can serve (a
    live vendor: only the slot due now). Both return empty frames with the right columns when there
    is nothing, and raise on transport errors so the caller's retry policy can act.
    """

    name: str

    def underlyings(self) -> list[str]: ...

    def fetch_contracts(self, day: dt.date, underlying: str) -> pd.DataFrame: ...

    def fetch_quotes(
        self,
        day: dt.date,
        underlying: str,
        contracts: pd.DataFrame,
        slots: list[tuple[str, pd.Timestamp]],
    ) -> pd.DataFrame: ...

    def rates(self, day: dt.date, underlying: str) -> tuple[float, float]:
        """(risk-free rate, dividend yield), continuously compounded."""
        ...


def _key(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass(frozen=True)
class _UnderlyingPath:
    days: list[dt.date]
    index: dict[dt.date, int]
    close: np.ndarray  # (days,) closes
    base: float  # close before the first session
    atm_vol: np.ndarray  # (days,) ATM vol level of each day
    vol: float  # realised daily-path vol


@cache
def _path(seed: int, underlying: str, calendar: str) -> _UnderlyingPath:
    cal = get_calendar(calendar)
    days = cal.sessions(cal.first_session, cal.last_session)
    rng = np.random.default_rng([seed, _key(underlying)])
    base = round(2.0 + (_key(underlying) % 300) / 100.0, 3) if underlying != "510050.SH" else 2.6
    vol = 0.2
    shocks = rng.standard_normal(len(days)) * vol / np.sqrt(244) - 0.5 * vol**2 / 244
    walk = np.cumsum(shocks)
    anchor = min(int(np.searchsorted(days, ANCHOR_DAY)), len(days) - 1)  # the base price holds there
    close = np.round(base * np.exp(walk - walk[anchor]), 3)
    base = round(float(base * np.exp(-walk[anchor])), 3)
    level = np.empty(len(days))
    x = 0.0
    for i, z in enumerate(rng.standard_normal(len(days))):
        x = 0.94 * x + 0.012 * z
        level[i] = 0.21 + x
    return _UnderlyingPath(
        days, {d: i for i, d in enumerate(days)}, close, base, np.clip(level, 0.1, 0.6), vol
    )


def smile(atm: float, k: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Synthetic vol surface: ATM level with a term slope, skew and curvature in k = ln(K/F)/sqrt(t)."""
    level = atm + 0.02 * (np.sqrt(t) - 0.3)
    return np.clip(level * (1.0 - 0.12 * k + 0.18 * k * k), 0.05, 2.0)


@dataclass(frozen=True)
class SyntheticOptionSource:
    """Deterministic ETF option chains (see the module docstring).

    Example:
        >>> src = SyntheticOptionSource()
        >>> c = src.fetch_contracts(dt.date(2024, 10, 8), "510050.SH")
        >>> sorted(c["kind"].unique()), c["expiry"].nunique()
        (['call', 'put'], 4)
    """

    underlying_list: tuple[str, ...] = ("510050.SH",)
    seed: int = 11
    calendar: str = "XSHG"
    rate: float = 0.018
    dividend: float = 0.0
    delayed_share: float = 0.03
    error_share: float = 0.015
    multiplier: float = 10000.0
    name: str = field(default="synthetic")

    def underlyings(self) -> list[str]:
        return list(self.underlying_list)

    def rates(self, day: dt.date, underlying: str) -> tuple[float, float]:
        return self.rate, self.dividend

    # -- the chain --------------------------------------------------------------------------------
    def _prev_close(self, path: _UnderlyingPath, i: int) -> float:
        return float(path.close[i - 1]) if i > 0 else path.base

    def _chain(self, day: dt.date, underlying: str) -> pd.DataFrame:
        """(symbol, kind, strike, expiry, listed) of the contracts listed on `day`."""
        path = _path(self.seed, underlying, self.calendar)
        i = path.index[day]
        rows = []
        for expiry in chain.listed_expiries(day, self.calendar):
            first = path.days[max(0, int(np.searchsorted(path.days, expiry - dt.timedelta(days=210))))]
            j0 = min(path.index[first], i)  # listed today at the latest
            prevs = np.array([self._prev_close(path, j) for j in range(j0, i + 1)])
            step = chain.strike_step(prevs[0])
            listed_on = {}
            for j in range(j0, i + 1):  # the first day each strike was listed (for open interest)
                for k in chain.strike_grid(prevs[j - j0], prevs[j - j0], step):
                    listed_on.setdefault(float(k), path.days[j])
            for strike in sorted(listed_on):
                for kind in chain.KINDS:
                    rows.append(
                        (
                            chain.option_symbol(underlying, kind, expiry, strike),
                            kind,
                            strike,
                            expiry,
                            listed_on[strike],
                        )
                    )
        return pd.DataFrame(rows, columns=["symbol", "kind", "strike", "expiry", "listed"])

    def _open_interest(self, symbols: list[str], kinds, strikes, expiries, day: dt.date, spot: float):
        """Closing open interest of `day` per contract: largest near the money, growing with age."""
        out = np.empty(len(symbols))
        for n, (sym, strike, expiry) in enumerate(zip(symbols, strikes, expiries, strict=True)):
            rng = np.random.default_rng([self.seed, _key(sym), day.toordinal()])
            t = max((expiry - day).days, 1) / 365
            k = np.log(strike / spot) / np.sqrt(t)
            out[n] = np.round(20000 * np.exp(-2.0 * k * k) * rng.lognormal(0.0, 0.3) + 10)
        return out

    def fetch_contracts(self, day: dt.date, underlying: str) -> pd.DataFrame:
        day = pd.Timestamp(day).date()
        cal = get_calendar(self.calendar)
        if not cal.is_session(day) or underlying not in self.underlying_list:
            return OPTION_CONTRACTS.empty()
        path = _path(self.seed, underlying, self.calendar)
        i = path.index[day]
        c = self._chain(day, underlying)
        prev_oi = np.full(len(c), np.nan)
        if i > 0:
            prev_day = path.days[i - 1]
            old = (c["listed"] <= prev_day).to_numpy() & (c["expiry"] >= prev_day).to_numpy()
            if old.any():
                sub = c[old]
                prev_oi[old] = self._open_interest(
                    list(sub["symbol"]),
                    sub["kind"],
                    sub["strike"],
                    list(sub["expiry"]),
                    prev_day,
                    float(path.close[i - 1]),
                )
        exchange = underlying.partition(".")[2] or "SH"
        df = pd.DataFrame(
            {
                "trade_date": pd.Timestamp(day),
                "symbol": c["symbol"],
                "underlying": underlying,
                "kind": c["kind"],
                "strike": c["strike"],
                "expiry": pd.to_datetime(c["expiry"]),
                "multiplier": self.multiplier,
                "exchange": exchange,
                "currency": "CNY",
                "con_id": 0,
                "prev_open_interest": prev_oi,
            }
        )
        return OPTION_CONTRACTS.conform(df)

    # -- snapshots --------------------------------------------------------------------------------
    def underlying_prices(self, day: dt.date, times: list[pd.Timestamp], underlying: str) -> np.ndarray:
        """The underlying at `times` of `day`: a Brownian bridge from the previous close to the close."""
        path = _path(self.seed, underlying, self.calendar)
        i = path.index[day]
        session = get_calendar(self.calendar).session(day)
        total = sum((b - a).total_seconds() for a, b in session.intervals)

        def elapsed(ts: pd.Timestamp) -> float:
            return sum(
                max(0.0, min((ts - a).total_seconds(), (b - a).total_seconds())) for a, b in session.intervals
            )

        frac = np.array([elapsed(ts) / total for ts in times])
        rng = np.random.default_rng([self.seed, _key(underlying), day.toordinal(), 1])
        z = rng.standard_normal(len(frac))
        dfrac = np.diff(np.concatenate([[0.0], frac]))
        walk = np.cumsum(z * np.sqrt(np.maximum(dfrac, 0.0))) * path.vol / np.sqrt(244)
        bridge = walk - frac * (walk[-1] if len(walk) else 0.0)
        prev, close = self._prev_close(path, i), float(path.close[i])
        log_px = np.log(prev) + (np.log(close) - np.log(prev)) * frac + bridge
        out = np.round(np.exp(log_px), 3)
        if len(out) and frac[-1] >= 1.0:
            out[-1] = close
        return out

    def fetch_quotes(
        self,
        day: dt.date,
        underlying: str,
        contracts: pd.DataFrame,
        slots: list[tuple[str, pd.Timestamp]],
    ) -> pd.DataFrame:
        from quant_platform.options.bsm import price

        day = pd.Timestamp(day).date()
        contracts = contracts[contracts["underlying"] == underlying].sort_values("symbol")
        if contracts.empty or not slots:
            return OPTION_QUOTES.empty()
        path = _path(self.seed, underlying, self.calendar)
        atm = float(path.atm_vol[path.index[day]])
        all_slots = chain.slot_times(day, calendar=self.calendar)
        names = [s for s, _ in all_slots]
        spots = self.underlying_prices(day, [ts for _, ts in all_slots], underlying)
        n, m = len(contracts), len(all_slots)
        strike = contracts["strike"].to_numpy(float)
        kind = contracts["kind"].to_numpy()
        expiry = pd.to_datetime(contracts["expiry"])
        rng = np.random.default_rng([self.seed, _key(underlying), day.toordinal(), 2])
        noise = rng.standard_normal((n, m))
        last_noise = rng.standard_normal((n, m))
        state = rng.random((n, m))
        err_kind = rng.integers(0, len(SNAPSHOT_ERRORS), (n, m))
        daily_volume = rng.lognormal(5.0, 1.0, n)
        flow = rng.random((n, m)) + 0.2
        S = np.broadcast_to(spots[None, :], (n, m))
        t = np.stack(
            [chain.year_fraction(pd.Series([ts] * n), expiry.reset_index(drop=True)) for _, ts in all_slots],
            1,
        )
        t = np.maximum(np.asarray(t, float), 1e-6)
        F = S * np.exp((self.rate - self.dividend) * t)
        k = np.log(strike[:, None] / F) / np.sqrt(t)
        vol = smile(atm, k, t)
        kinds = np.broadcast_to(kind[:, None], (n, m))
        model = price(S, strike[:, None], t, self.rate, vol, self.dividend, kinds)
        intrinsic = np.maximum(
            np.where(kinds == "call", 1.0, -1.0)
            * (S * np.exp(-self.dividend * t) - strike[:, None] * np.exp(-self.rate * t)),
            0.0,
        )
        half = np.maximum(TICK, 0.005 * model + 0.0002)
        centre = np.maximum(model + 0.15 * half * noise, intrinsic + 0.5 * TICK)
        bid = np.maximum(np.floor((centre - half) / TICK) * TICK, 0.0)
        ask = np.maximum(np.ceil((centre + half) / TICK) * TICK, bid + TICK)
        moneyness_weight = np.exp(-0.5 * k[:, -1:] ** 2)
        traded = np.cumsum(flow, 1) / flow.sum(1, keepdims=True) * (daily_volume[:, None] * moneyness_weight)
        volume = np.floor(traded)
        last = np.where(
            volume > 0, np.maximum(np.round((model + 0.3 * half * last_noise) / TICK) * TICK, TICK), np.nan
        )
        bid, ask, last = np.round(bid, 4), np.round(ask, 4), np.round(last, 4)
        delayed = state < self.delayed_share
        errored = (state >= self.delayed_share) & (state < self.delayed_share + self.error_share)
        stale = np.concatenate([[0], np.arange(m - 1)])  # a delayed snapshot repeats the previous slot
        for a in (bid, ask, last, volume):
            a[delayed] = a[:, stale][delayed]
        for a in (bid, ask, last, volume):
            a[errored] = np.nan
        error = np.where(errored, np.asarray(SNAPSHOT_ERRORS, dtype=object)[err_kind], "")
        wanted = [names.index(s) for s, _ in slots if s in names]
        if not wanted:
            return OPTION_QUOTES.empty()
        cols = np.array(wanted)
        w = len(cols)
        df = pd.DataFrame(
            {
                "symbol": np.repeat(contracts["symbol"].to_numpy(), w),
                "trade_date": pd.Timestamp(day),
                "ts": pd.DatetimeIndex(np.tile(np.array([all_slots[j][1] for j in cols]), n)),
                "slot": np.tile(np.array([names[j] for j in cols], dtype=object), n),
                "underlying": underlying,
                "underlying_price": np.tile(spots[cols], n),
                "bid": bid[:, cols].ravel(),
                "ask": ask[:, cols].ravel(),
                "last": last[:, cols].ravel(),
                "volume": volume[:, cols].ravel(),
                "delayed": delayed[:, cols].ravel(),
                "snapshot_error": error[:, cols].ravel(),
            }
        )
        return OPTION_QUOTES.conform(df)


def parse_underlyings(text: str) -> tuple[str, ...]:
    return tuple(u.strip() for u in text.split(",") if u.strip())


def option_source_from_settings(current=None, *, client=None) -> OptionSource:
    """The source `QP_OPTIONS_SOURCE` names, for the underlyings of `QP_OPTIONS_UNDERLYINGS`."""
    from quant_platform.settings import settings

    current = current or settings()
    underlyings = tuple(current.options_underlyings)
    if current.options_source == "ib":
        from quant_platform.options.ib import IBOptionSource

        return IBOptionSource(
            underlyings,
            client=client,
            host=current.ib_host,
            port=current.ib_port,
            client_id=current.ib_client_id,
            calendar=current.calendar,
        )
    return SyntheticOptionSource(underlying_list=underlyings, calendar=current.calendar)
