"""A-share market data from AKShare: daily klines per symbol and the whole-market realtime spot.

The AKShare module is injected as a `fetcher` (anything with `stock_zh_a_hist` and
`stock_zh_a_spot_em`); the default imports `akshare` lazily, so the package is only needed where
the source really runs (`pip install 'quant-platform[akshare]'`). Tests replay recorded frames.

- Klines are fetched incrementally: `known_klines(symbols, start, end)` (e.g. the cold tier's
  `klines_daily`) says which (symbol, day) rows exist, and only the missing runs of trading days are
  requested, one `stock_zh_a_hist` call per symbol and run. Fetched ranges are remembered for the
  life of the source, so days the vendor has no row for (suspensions) are not asked twice.
- One `stock_zh_a_spot_em` call serves a whole batch of symbols (and is reused for `spot_ttl` s).
- Every vendor call goes through a token bucket (`calls_per_second`) and is retried with
  exponential backoff and jitter on transport errors; exhaustion raises `SourceUnavailable`.
- Vendor columns are mapped in `vendor_columns`; unusable rows are returned as QUARANTINE-shaped
  frames (`fetch_*_checked`, or `take_rejected()` after the plain protocol calls).

`fetch_quotes(day)` is the live spot for today's session (stamped with the fetch instant, clipped
to the session) and, for past days, one close snapshot per symbol derived from the daily kline.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

import pandas as pd

from quant_platform.core.calendar import get_calendar, to_date
from quant_platform.core.schema import KLINES_DAILY, QUARANTINE, RAW_QUOTES
from quant_platform.sources.ratelimit import TokenBucket, call_with_retry
from quant_platform.sources.vendor_columns import (
    close_snapshots,
    concat_rejected,
    klines_from_akshare_hist,
    normalise_symbol,
    quotes_from_akshare_spot,
    vendor_code,
)

log = logging.getLogger(__name__)

ADJUSTMENTS = ("", "qfq", "hfq")

KlineLookup = Callable[[list[str], dt.date, dt.date], pd.DataFrame]
"""(symbols, start, end) -> the KLINES_DAILY rows already stored for them (at least symbol, trade_date)."""


class AkshareFetcher(Protocol):
    """The two AKShare calls the source uses, with AKShare's own signatures."""

    def stock_zh_a_hist(
        self, symbol: str, period: str, start_date: str, end_date: str, adjust: str
    ) -> pd.DataFrame: ...

    def stock_zh_a_spot_em(self) -> pd.DataFrame: ...


class LazyAkshare:
    """The real AKShare module, imported on first use."""

    def __init__(self) -> None:
        self._module: Any = None

    def _ak(self) -> Any:
        if self._module is None:
            try:
                import akshare
            except ImportError as exc:
                raise ImportError(
                    "the akshare market source needs the akshare package: "
                    "pip install 'quant-platform[akshare]'"
                ) from exc
            self._module = akshare
        return self._module

    def stock_zh_a_hist(
        self, symbol: str, period: str, start_date: str, end_date: str, adjust: str
    ) -> pd.DataFrame:
        return self._ak().stock_zh_a_hist(
            symbol=symbol, period=period, start_date=start_date, end_date=end_date, adjust=adjust
        )

    def stock_zh_a_spot_em(self) -> pd.DataFrame:
        return self._ak().stock_zh_a_spot_em()


class FetchResult(NamedTuple):
    """Rows conforming to the table's schema, plus QUARANTINE-shaped rows that could not be used."""

    data: pd.DataFrame
    rejected: pd.DataFrame


def missing_ranges(
    symbols: Iterable[str],
    sessions: list[dt.date],
    have: set[tuple[str, dt.date]],
) -> dict[str, list[tuple[dt.date, dt.date]]]:
    """Per symbol, the runs of consecutive sessions (from `sessions`, sorted) without a row in `have`.

    A run crossing a weekend or holiday is one range: the vendor returns trading days only.

    Example:
        >>> d = [dt.date(2024, 10, 8), dt.date(2024, 10, 9), dt.date(2024, 10, 10)]
        >>> runs = missing_ranges(["600000.SH"], d, {("600000.SH", d[1])})["600000.SH"]
        >>> [(a.isoformat(), b.isoformat()) for a, b in runs]
        [('2024-10-08', '2024-10-08'), ('2024-10-10', '2024-10-10')]
    """
    out: dict[str, list[tuple[dt.date, dt.date]]] = {}
    for sym in symbols:
        runs: list[tuple[dt.date, dt.date]] = []
        start = prev = None
        for day in sessions:
            if (sym, day) in have:
                if start is not None:
                    runs.append((start, prev))
                    start = None
                continue
            if start is None:
                start = day
            prev = day
        if start is not None:
            runs.append((start, prev))
        if runs:
            out[sym] = runs
    return out


class AkshareSource:
    """MarketSource over AKShare; see the module docstring.

    Example:
        >>> src = AkshareSource(fetcher=my_fake, calls_per_second=5)      # doctest: +SKIP
        >>> src.fetch_daily_range("2024-10-08", "2024-10-11", ["600000.SH"]).data
    """

    name = "akshare"

    def __init__(
        self,
        fetcher: AkshareFetcher | None = None,
        *,
        adjust: str = "",
        symbols: Iterable[str] | None = None,
        known_klines: KlineLookup | None = None,
        calls_per_second: float = 2.0,
        burst: int = 1,
        max_attempts: int = 4,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        spot_ttl: float = 3.0,
        calendar: str = "XSHG",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], pd.Timestamp] = lambda: pd.Timestamp.now(tz="UTC"),
    ) -> None:
        if adjust not in ADJUSTMENTS:
            raise ValueError(
                f"adjust must be one of {ADJUSTMENTS} ('' none, qfq forward, hfq backward), got {adjust!r}"
            )
        self.fetcher: AkshareFetcher = fetcher if fetcher is not None else LazyAkshare()
        self.adjust = adjust
        self.symbols = [normalise_symbol(s) for s in symbols] if symbols is not None else None
        self.known_klines = known_klines
        self.calendar = calendar
        self.max_attempts = max_attempts
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.spot_ttl = spot_ttl
        self.bucket = TokenBucket(calls_per_second, burst, clock=clock, sleep=sleep)
        self._clock, self._sleep, self._now = clock, sleep, now
        self._lock = threading.RLock()
        self._klines: dict[tuple[str, dt.date], dict] = {}  # fetched rows, by (symbol, day)
        self._covered: set[tuple[str, dt.date]] = set()  # (symbol, day) asked of the vendor already
        self._spot: tuple[float, pd.DataFrame] | None = None
        self._rejected: list[pd.DataFrame] = []
        self.calls: dict[str, int] = {"stock_zh_a_hist": 0, "stock_zh_a_spot_em": 0}

    # -- vendor calls ------------------------------------------------------------------------
    def _call(self, method: str, **kwargs: Any) -> pd.DataFrame:
        def once() -> pd.DataFrame:
            self.bucket.acquire()
            self.calls[method] += 1
            return getattr(self.fetcher, method)(**kwargs)

        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        return call_with_retry(
            once,
            what=f"akshare {method}({args})",
            attempts=self.max_attempts,
            initial=self.backoff_initial,
            max_wait=self.backoff_max,
            sleep=self._sleep,
        )

    def _spot_frame(self) -> pd.DataFrame:
        with self._lock:
            if self._spot is not None and self._clock() - self._spot[0] < self.spot_ttl:
                return self._spot[1]
            frame = self._call("stock_zh_a_spot_em")
            self._spot = (self._clock(), frame)
            return frame

    # -- rejected rows -----------------------------------------------------------------------
    def _reject(self, frame: pd.DataFrame) -> None:
        if len(frame):
            log.warning("akshare: %d rows rejected (%s)", len(frame), "; ".join(frame["reason"].unique()[:3]))
            with self._lock:
                self._rejected.append(frame)

    def take_rejected(self) -> pd.DataFrame:
        """QUARANTINE-shaped rows rejected since the last call (then forgotten)."""
        with self._lock:
            frames, self._rejected = self._rejected, []
        return concat_rejected(frames)

    # -- MarketSource ------------------------------------------------------------------------
    def universe(self, day: dt.date | None = None) -> list[str]:
        """Configured symbols, else every code of the current spot (today's listing)."""
        if self.symbols is not None:
            return list(self.symbols)
        spot = self._spot_frame()
        out = []
        for code in spot["代码"].tolist() if "代码" in spot.columns else []:
            try:
                out.append(normalise_symbol(code))
            except ValueError:
                continue
        return sorted(set(out))

    def fetch_quotes(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame:
        result = self.fetch_quotes_checked(day, symbols)
        self._reject(result.rejected)
        return result.data

    def fetch_daily_bars(self, day: dt.date, symbols: list[str] | None = None) -> pd.DataFrame:
        result = self.fetch_daily_range(day, day, symbols)
        self._reject(result.rejected)
        return result.data

    # -- checked variants --------------------------------------------------------------------
    def fetch_quotes_checked(self, day: dt.date | str, symbols: list[str] | None = None) -> FetchResult:
        """Live spot for today's session (one vendor call for all symbols), close snapshots for past days."""
        day = to_date(day)
        cal = get_calendar(self.calendar)
        if not cal.is_session(day):
            return FetchResult(RAW_QUOTES.empty(), QUARANTINE.empty())
        now = self._now()
        today = now.tz_convert(cal.tz).date()
        if day > today:
            return FetchResult(RAW_QUOTES.empty(), QUARANTINE.empty())
        if day == today:
            ts = _clip_to_session(cal.session(day).intervals, now)
            if ts is None:  # before the open: nothing traded yet
                return FetchResult(RAW_QUOTES.empty(), QUARANTINE.empty())
            quotes, rejected = quotes_from_akshare_spot(self._spot_frame(), ts=ts, trade_date=day)
            wanted = symbols if symbols is not None else self.symbols
            if wanted is not None:
                keep = {normalise_symbol(s) for s in wanted}
                quotes = quotes[quotes["symbol"].isin(keep)].reset_index(drop=True)
                rejected = rejected[rejected["symbol"].isin(keep)].reset_index(drop=True)
            return FetchResult(quotes, rejected)
        bars = self.fetch_daily_range(day, day, symbols)
        return FetchResult(close_snapshots(bars.data, self.calendar), bars.rejected)

    def fetch_daily_range(
        self, start: dt.date | str, end: dt.date | str, symbols: list[str] | None = None
    ) -> FetchResult:
        """KLINES_DAILY rows for trading days in [start, end]: stored rows plus only the missing ranges
        fetched from the vendor (one `stock_zh_a_hist` call per symbol and run of missing days)."""
        start, end = to_date(start), to_date(end)
        sessions = get_calendar(self.calendar).sessions(start, end)
        syms = [normalise_symbol(s) for s in (symbols if symbols is not None else self.universe(end))]
        if not sessions or not syms:
            return FetchResult(KLINES_DAILY.empty(), QUARANTINE.empty())
        stored = (
            self.known_klines(syms, start, end) if self.known_klines is not None else KLINES_DAILY.empty()
        )
        have = set()
        if len(stored):
            have = set(zip(stored["symbol"], pd.DatetimeIndex(stored["trade_date"]).date, strict=True))
        with self._lock:
            have |= self._covered
            todo = missing_ranges(syms, sessions, have)
        rejected = []
        for sym, runs in todo.items():
            for first, last in runs:
                raw = self._call(
                    "stock_zh_a_hist",
                    symbol=vendor_code(sym),
                    period="daily",
                    start_date=first.strftime("%Y%m%d"),
                    end_date=last.strftime("%Y%m%d"),
                    adjust=self.adjust,
                )
                klines, bad = klines_from_akshare_hist(raw, sym)
                rejected.append(bad)
                with self._lock:
                    for row in klines.to_dict(orient="records"):
                        self._klines[(sym, pd.Timestamp(row["trade_date"]).date())] = row
                    self._covered.update((sym, d) for d in sessions if first <= d <= last)
        wanted = set(syms)
        with self._lock:
            fetched = [r for (s, d), r in self._klines.items() if s in wanted and start <= d <= end]
        frames = [f for f in (stored, pd.DataFrame(fetched)) if len(f)]
        if not frames:
            return FetchResult(KLINES_DAILY.empty(), concat_rejected(rejected))
        data = KLINES_DAILY.conform(pd.concat([KLINES_DAILY.conform(f) for f in frames], ignore_index=True))
        data = data.drop_duplicates(["symbol", "trade_date"], keep="first")
        data = data.sort_values(["symbol", "trade_date"], kind="stable").reset_index(drop=True)
        return FetchResult(data, concat_rejected(rejected))


def _clip_to_session(intervals, now: pd.Timestamp) -> pd.Timestamp | None:
    """`now` if it is inside a trading interval, else the end of the last interval before it
    (lunch break, after the close); None before the open."""
    best = None
    for start, end in intervals:
        if start <= now <= end:
            return now
        if end < now:
            best = end
    return best


def cold_kline_lookup(dsn: str, database: str = "quant") -> KlineLookup:
    """A `known_klines` lookup against the cold tier's `klines_daily`, opening the store only for the
    query (the embedded engine allows one process per data path)."""

    def lookup(symbols: list[str], start: dt.date, end: dt.date) -> pd.DataFrame:
        from quant_platform.storage.cold import ColdStore

        with ColdStore(dsn, database) as cold:
            cold.ensure_schema([KLINES_DAILY])
            return cold.read_table("klines_daily", start=start, end=end, symbols=symbols)

    return lookup
