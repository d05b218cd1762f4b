"""A deterministic synthetic A-share market: the embedded default source.

Same seed, universe size and day always give identical snapshots, so every run, test and benchmark
is reproducible without a vendor. Prices follow a fat-tailed daily path clipped at the board's price
limit (so limit-up/limit-down days occur), intraday paths are Brownian bridges from the open to the
day's close inside the limits, volume follows the usual U-shaped intraday profile, and a small share
of symbols is suspended on any day (no snapshots at all).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from quant_platform.core.calendar import TradingCalendar, get_calendar
from quant_platform.core.markets import limit_prices, price_limit
from quant_platform.core.rollups import daily_klines
from quant_platform.core.schema import KLINES_DAILY, RAW_QUOTES

_BOARDS = ("SH",) * 6 + ("SZ",) * 3 + ("CHINEXT",)


def synthetic_symbols(n: int) -> list[str]:
    """`n` codes spread over boards so even a small universe has main-board and ChiNext names."""
    out = []
    for i in range(n):
        board = _BOARDS[i % len(_BOARDS)]
        if board == "SH":
            out.append(f"{600000 + i:06d}.SH")
        elif board == "SZ":
            out.append(f"{1 + i:06d}.SZ")
        else:
            out.append(f"{300001 + i:06d}.SZ")
    return out


@dataclass(frozen=True)
class SyntheticMarket:
    """Synthetic quotes for `n_symbols` on the trading days of `calendar`.

    Example:
        >>> m = SyntheticMarket(n_symbols=5)
        >>> q = m.fetch_quotes(dt.date(2024, 10, 8))
        >>> sorted(q.symbol.unique())[:2]
        ['000007.SZ', '000008.SZ']
    """

    n_symbols: int = 50
    seed: int = 7
    snapshot_seconds: int = 15
    calendar: str = "XSHG"
    suspension_rate: float = 0.005
    name: str = "synthetic"

    def __post_init__(self) -> None:
        if self.n_symbols < 1:
            raise ValueError("n_symbols must be >= 1")
        if not (
            1 <= self.snapshot_seconds <= 300
            and 60 % self.snapshot_seconds == 0
            or self.snapshot_seconds % 60 == 0
        ):
            raise ValueError("snapshot_seconds must divide a minute (1..60) or be a whole number of minutes")

    @property
    def _cal(self) -> TradingCalendar:
        return get_calendar(self.calendar)

    def universe(self, day: dt.date | None = None) -> list[str]:
        return synthetic_symbols(self.n_symbols)

    def fetch_quotes(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame:
        day = pd.Timestamp(day).date()
        cal = self._cal
        if not cal.is_session(day):
            return RAW_QUOTES.empty()
        path = _daily_path(self.seed, self.n_symbols, self.calendar, self.suspension_rate)
        i = path.day_index[day]
        active = ~path.suspended[i]
        if symbols is not None:
            wanted = set(symbols)
            active &= np.array([s in wanted for s in path.symbols])
        idx = np.flatnonzero(active)
        if idx.size == 0:
            return RAW_QUOTES.empty()
        times = _snapshot_times(cal, day, self.snapshot_seconds)
        n, m = len(idx), times.size
        # One generator per (seed, day, symbol): a symbol's day never depends on the universe size.
        z = np.empty((n, m))
        vol_noise = np.empty((n, m))
        gap = np.empty(n)
        for row, sym_i in enumerate(idx):
            rng = np.random.default_rng([self.seed, day.toordinal(), int(sym_i)])
            gap[row] = rng.normal(0.0, 0.004)
            z[row] = rng.standard_normal(m)
            vol_noise[row] = rng.lognormal(0.0, 0.6, m)

        prev_close = path.close[i - 1, idx] if i > 0 else path.base[idx]
        close = path.close[i, idx]
        lim_up, lim_down = limit_prices(prev_close, path.limits[idx])
        open_ = np.clip(np.round(prev_close * (1 + gap), 2), lim_down, lim_up)
        # Brownian bridge in log space from the open (t=0) to the close (t=m).
        sigma = path.sigma[idx, None] / np.sqrt(m)
        walk = np.cumsum(z, axis=1) * sigma
        t = np.arange(1, m + 1) / m
        bridge = walk - t[None, :] * walk[:, -1:]
        log_px = np.log(open_)[:, None] + (np.log(close) - np.log(open_))[:, None] * t[None, :] + bridge
        price = np.clip(np.round(np.exp(log_px), 2), lim_down[:, None], lim_up[:, None])
        price[:, -1] = close
        high = np.maximum.accumulate(np.maximum(price, open_[:, None]), axis=1)
        low = np.minimum.accumulate(np.minimum(price, open_[:, None]), axis=1)

        frac = (np.arange(m) + 0.5) / m
        profile = 1.0 + 3.0 * (2 * frac - 1) ** 2  # U-shape: busy open and close
        lots = np.round(path.daily_volume[idx, None] * profile / profile.sum() * vol_noise / 100.0)
        step_volume = lots.astype(np.int64) * 100
        volume = np.cumsum(step_volume, axis=1)
        amount = np.round(np.cumsum(step_volume * price, axis=1), 2)

        k = n
        syms = np.asarray(path.symbols, dtype=object)[idx]
        df = pd.DataFrame(
            {
                "symbol": np.repeat(syms, m),
                "trade_date": pd.Timestamp(day),
                "ts": pd.DatetimeIndex(np.tile(times, k)).tz_localize("UTC"),
                "price": price.ravel(),
                "open": np.repeat(open_, m),
                "high": high.ravel(),
                "low": low.ravel(),
                "prev_close": np.repeat(prev_close, m),
                "volume": volume.ravel(),
                "amount": amount.ravel(),
                "bid": np.maximum(np.round(price - 0.01, 2), 0.01).ravel(),
                "ask": np.round(price + 0.01, 2).ravel(),
            }
        )
        return RAW_QUOTES.conform(df)

    def fetch_daily_bars(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame:
        quotes = self.fetch_quotes(day, symbols)
        return daily_klines(quotes) if len(quotes) else KLINES_DAILY.empty()


@dataclass(frozen=True)
class _Path:
    symbols: list[str]
    day_index: dict[dt.date, int]
    base: np.ndarray  # price before the first session
    close: np.ndarray  # (days, n) daily closes, limit-clipped and rounded
    suspended: np.ndarray  # (days, n) bool
    limits: np.ndarray  # (n,)
    sigma: np.ndarray  # (n,) intraday volatility scale
    daily_volume: np.ndarray  # (n,) shares

    @property
    def n(self) -> int:
        return len(self.symbols)


@cache
def _daily_path(seed: int, n: int, calendar: str, suspension_rate: float) -> _Path:
    """Daily closes for every session of the calendar; computed once per process and configuration."""
    cal = get_calendar(calendar)
    days = cal.sessions(cal.first_session, cal.last_session)
    symbols = synthetic_symbols(n)
    limits = np.array([price_limit(s) for s in symbols])
    # One generator per (seed, symbol): growing the universe never changes existing symbols.
    base, drift, vol, daily_volume = (np.empty(n) for _ in range(4))
    shocks = np.empty((len(days), n))
    suspended = np.empty((len(days), n), dtype=bool)
    for j in range(n):
        rng = np.random.default_rng([seed, j])
        base[j], drift[j], vol[j], daily_volume[j] = (
            rng.normal(2.4, 0.6),
            rng.normal(0.0002, 0.0004),
            rng.uniform(0.012, 0.035),
            rng.normal(15.5, 1.0),
        )
        shocks[:, j] = rng.standard_t(4, len(days)) * vol[j] / np.sqrt(2.0) + drift[j]
        suspended[:, j] = rng.random(len(days)) < suspension_rate
    base = np.round(np.clip(np.exp(base), 2.0, 300.0), 2)
    closes = np.empty((len(days), n))
    prev = base
    for d in range(len(days)):
        up, down = limit_prices(prev, limits)
        c = np.clip(np.round(prev * np.exp(shocks[d]), 2), down, up)
        c = np.where(suspended[d], prev, np.maximum(c, 0.01))
        closes[d] = c
        prev = c
    return _Path(
        symbols=symbols,
        day_index={d: i for i, d in enumerate(days)},
        base=base,
        close=closes,
        suspended=suspended,
        limits=limits,
        sigma=vol * 0.8,
        daily_volume=np.exp(daily_volume),
    )


def _snapshot_times(cal: TradingCalendar, day: dt.date, every: int) -> np.ndarray:
    """Snapshot instants (naive UTC datetime64[ms]): every `every` seconds after each interval's start,
    up to the interval's end inclusive."""
    step = pd.Timedelta(seconds=every)
    parts = [
        pd.date_range(start + step, end, freq=step).tz_convert(None).as_unit("ms").values
        for start, end in cal.session(day).intervals
    ]
    return np.concatenate(parts)
