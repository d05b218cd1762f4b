"""Interactive Brokers option chains and snapshots, on `ib_async` (`pip install 'quant-platform[options]'`).

`IBOptionSource` implements `OptionSource` against a TWS or IB Gateway (`QP_IB_HOST`, `QP_IB_PORT`,
`QP_IB_CLIENT_ID`). The client is injectable (`client=`: anything with the `ib_async.IB` methods used
below); by default one `ib_async.IB` is connected on first use. Tests replay recorded responses
through such a client (tests/options/fixtures/).

* **Contract discovery** (`fetch_contracts`): the underlying is qualified once (a stock or ETF on
  SMART), `reqSecDefOptParams` gives its chains; the chain on `exchange` (SMART) is cut to the first
  `max_expiries` expiries from the day on and `strikes_around` strikes either side of the
  underlying's price. Options are qualified in batches of `batch_size` (`qualifyContracts`);
  qualified contracts are kept in a contract cache (in memory, and in `cache_path` as JSON when
  given), so a later call of the day, or the next day, qualifies only new strikes. Options IB does
  not know are left out (logged).
* **Open interest**: IB's option open interest (generic tick 101) is the previous session's close,
  which is what `prev_open_interest` holds. It streams, so the contracts are subscribed in batches,
  given `oi_wait` seconds, and cancelled.
* **Snapshots** (`fetch_quotes`): IB has no history of snapshots, so only the slot due now (today,
  the latest slot not after the clock) is requested; other slots of the day keep what earlier runs
  stored. `reqTickers` is called in batches, each after a token of the rate limiter
  (`messages_per_second`, below IB's 50 messages/s) and retried on transport errors and timeouts
  with backoff (`attempts`). A batch that still fails gives rows with `snapshot_error`; a ticker
  without prices gives "no data" (or the error IB sent for its request); market data type 3/4
  (delayed, delayed-frozen) sets `delayed`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from quant_platform.core.calendar import get_calendar
from quant_platform.core.schema import OPTION_CONTRACTS, OPTION_QUOTES
from quant_platform.sources.ratelimit import SourceUnavailable, TokenBucket, call_with_retry

log = logging.getLogger(__name__)

DELAYED_TYPES = (3, 4)  # IB market data types: 1 live, 2 frozen, 3 delayed, 4 delayed frozen


def _ib():
    try:
        import ib_async
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "QP_OPTIONS_SOURCE=ib needs ib_async: pip install 'quant-platform[options]'"
        ) from exc
    return ib_async


def _num(value) -> float:
    """IB's "no value" (NaN, None, -1 for prices and sizes) as NaN."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) and x >= 0 else math.nan


def _symbol(contract) -> str:
    """Our code of an IB option: its local symbol without the OCC padding (SPY241018C00570000)."""
    local = (getattr(contract, "localSymbol", "") or "").replace(" ", "")
    if local:
        return local
    right = "C" if contract.right.upper().startswith("C") else "P"
    strike = int(round(contract.strike * 1000))
    return f"{contract.symbol}{contract.lastTradeDateOrContractMonth[2:]}{right}{strike:08d}"


def _batches(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), max(1, size)):
        yield items[i : i + size]


class IBOptionSource:
    """Option chains and snapshots from Interactive Brokers (module docstring)."""

    name = "ib"

    def __init__(
        self,
        underlyings: Iterable[str],
        *,
        client=None,
        host: str = "127.0.0.1",
        port: int = 7497,
        client_id: int = 17,
        exchange: str = "SMART",
        currency: str = "USD",
        calendar: str = "XNYS",
        max_expiries: int = 4,
        strikes_around: int = 8,
        batch_size: int = 50,
        messages_per_second: float = 40.0,
        attempts: int = 3,
        timeout: float = 20.0,
        oi_wait: float = 2.0,
        rate: float = 0.04,
        dividend: float = 0.0,
        market_data_type: int = 1,
        cache_path: str | Path | None = None,
        clock: Callable[[], pd.Timestamp] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._underlyings = list(underlyings)
        self._client = client
        self.host, self.port, self.client_id = host, int(port), int(client_id)
        self.exchange, self.currency, self.calendar = exchange, currency, calendar
        self.max_expiries, self.strikes_around, self.batch_size = max_expiries, strikes_around, batch_size
        self.attempts, self.timeout, self.oi_wait = attempts, timeout, oi_wait
        self.rate, self.dividend, self.market_data_type = rate, dividend, market_data_type
        self.cache_path = Path(cache_path) if cache_path else None
        self._clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self._sleep = sleep
        self._bucket = TokenBucket(
            messages_per_second, capacity=max(1.0, messages_per_second / 4), sleep=sleep
        )
        self._und: dict[str, object] = {}
        self._cache: dict[str, dict] = self._load_cache()
        self._errors: dict[int, str] = {}
        self.requests: dict[str, int] = {}  # calls made per IB method (for logs and tests)

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            ib = _ib().IB()
            ib.connect(self.host, self.port, clientId=self.client_id, timeout=self.timeout, readonly=True)
            self._client = ib
        if not getattr(self._client, "_qp_listening", False):
            self._client.errorEvent += self._on_error
            self._client.reqMarketDataType(self.market_data_type)
            self._client._qp_listening = True
        return self._client

    def close(self) -> None:
        if self._client is not None and hasattr(self._client, "disconnect"):
            self._client.disconnect()

    def _on_error(self, req_id, code, message, contract=None) -> None:
        con_id = getattr(contract, "conId", 0) if contract is not None else 0
        if con_id:
            self._errors[con_id] = f"{message} ({code})"

    def _call(self, method: str, *args, tokens: float = 1.0, **kwargs):
        """One IB call: a rate-limiter token per message, retries with backoff on transport errors."""

        def once():
            self._bucket.acquire(tokens)
            self.requests[method] = self.requests.get(method, 0) + 1
            return getattr(self.client, method)(*args, **kwargs)

        return call_with_retry(
            once, what=f"IB {method}", attempts=self.attempts, initial=0.5, sleep=self._sleep
        )

    def _load_cache(self) -> dict[str, dict]:
        if self.cache_path and self.cache_path.exists():
            try:
                return json.loads(self.cache_path.read_text())
            except (OSError, ValueError) as exc:
                log.warning("IB contract cache %s unreadable, starting empty: %s", self.cache_path, exc)
        return {}

    def _save_cache(self) -> None:
        if self.cache_path:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            self.cache_path.write_text(json.dumps(self._cache, sort_keys=True))

    # -- OptionSource ---------------------------------------------------------------------------
    def underlyings(self) -> list[str]:
        return list(self._underlyings)

    def rates(self, day: dt.date, underlying: str) -> tuple[float, float]:
        return self.rate, self.dividend

    def _underlying(self, symbol: str):
        if symbol not in self._und:
            stock = _ib().Stock(symbol, "SMART", self.currency)
            qualified = [c for c in self._call("qualifyContracts", stock) if c is not None]
            if not qualified:
                raise ValueError(f"IB does not know the underlying {symbol!r} (SMART, {self.currency})")
            self._und[symbol] = qualified[0]
        return self._und[symbol]

    def _spot(self, und) -> float:
        (ticker,) = self._call("reqTickers", und)
        value = _num(ticker.marketPrice())
        return value if math.isfinite(value) else _num(ticker.close)

    def fetch_contracts(self, day: dt.date, underlying: str) -> pd.DataFrame:
        day = pd.Timestamp(day).date()
        und = self._underlying(underlying)
        chains = self._call("reqSecDefOptParams", und.symbol, "", und.secType, und.conId)
        chosen = [c for c in chains if c.exchange == self.exchange]
        chosen = [c for c in chosen if c.tradingClass == und.symbol] or chosen
        if not chosen:
            log.warning("IB: no %s option chain for %s", self.exchange, underlying)
            return OPTION_CONTRACTS.empty()
        opt_chain = chosen[0]
        spot = self._spot(und)
        expiries = sorted(e for e in opt_chain.expirations if dt.datetime.strptime(e, "%Y%m%d").date() >= day)
        expiries = expiries[: self.max_expiries]
        strikes = np.array(sorted(opt_chain.strikes), dtype=float)
        if math.isfinite(spot) and len(strikes):
            atm = int(np.argmin(np.abs(strikes - spot)))
            strikes = strikes[max(0, atm - self.strikes_around) : atm + self.strikes_around + 1]
        wanted = [(e, float(k), r) for e in expiries for k in strikes for r in ("C", "P")]
        contracts = self._qualify(underlying, opt_chain, wanted)
        oi = self._open_interest(contracts)
        rows = [
            {
                "trade_date": pd.Timestamp(day),
                "symbol": c["symbol"],
                "underlying": underlying,
                "kind": "call" if c["right"] == "C" else "put",
                "strike": c["strike"],
                "expiry": pd.Timestamp(dt.datetime.strptime(c["expiry"], "%Y%m%d")),
                "multiplier": float(c["multiplier"] or 100),
                "exchange": c["exchange"],
                "currency": c["currency"],
                "con_id": int(c["con_id"]),
                "prev_open_interest": oi.get(c["con_id"], math.nan),
            }
            for c in contracts
        ]
        return OPTION_CONTRACTS.conform(pd.DataFrame(rows)) if rows else OPTION_CONTRACTS.empty()

    def _qualify(self, underlying: str, opt_chain, wanted: list[tuple[str, float, str]]) -> list[dict]:
        """Qualified contracts of `wanted` (expiry, strike, right), from the cache or IB in batches."""
        key = lambda e, k, r: f"{underlying}|{e}|{k:g}|{r}"  # noqa: E731
        missing = [w for w in wanted if key(*w) not in self._cache]
        ib = _ib()
        unknown = 0
        for batch in _batches(missing, self.batch_size):
            options = [
                ib.Option(
                    opt_chain.tradingClass or underlying,
                    e,
                    k,
                    r,
                    self.exchange,
                    multiplier=opt_chain.multiplier,
                    currency=self.currency,
                    tradingClass=opt_chain.tradingClass,
                )
                for e, k, r in batch
            ]
            qualified = self._call("qualifyContracts", *options, tokens=len(options))
            by_terms = {}
            for q in qualified:
                if q is None or isinstance(q, list) or not getattr(q, "conId", 0):
                    continue
                by_terms[(q.lastTradeDateOrContractMonth, float(q.strike), q.right[:1].upper())] = q
            for e, k, r in batch:
                q = by_terms.get((e, k, r))
                if q is None:
                    unknown += 1
                    continue
                self._cache[key(e, k, r)] = {
                    "symbol": _symbol(q),
                    "con_id": int(q.conId),
                    "expiry": e,
                    "strike": k,
                    "right": r,
                    "multiplier": q.multiplier or opt_chain.multiplier,
                    "exchange": q.exchange or self.exchange,
                    "currency": q.currency or self.currency,
                }
        if unknown:
            log.info(
                "IB: %d of %d %s options do not exist (not listed at those strikes)",
                unknown,
                len(wanted),
                underlying,
            )
        if missing:
            self._save_cache()
        return [self._cache[key(*w)] for w in wanted if key(*w) in self._cache]

    def _contract(self, con_id: int, exchange: str):
        return _ib().Contract(conId=int(con_id), exchange=exchange or self.exchange)

    def _open_interest(self, contracts: list[dict]) -> dict[int, float]:
        out: dict[int, float] = {}
        for batch in _batches(contracts, self.batch_size):
            subscribed = []
            for c in batch:
                contract = self._contract(c["con_id"], c["exchange"])
                subscribed.append((c, contract, self._call("reqMktData", contract, "101", False, False)))
            self.client.sleep(self.oi_wait)
            for c, contract, ticker in subscribed:
                value = ticker.callOpenInterest if c["right"] == "C" else ticker.putOpenInterest
                out[c["con_id"]] = _num(value)
                self.client.cancelMktData(contract)
        return out

    def due_slot(
        self, day: dt.date, slots: list[tuple[str, pd.Timestamp]]
    ) -> tuple[str, pd.Timestamp] | None:
        """The slot a snapshot taken now stands for: today's latest slot not after the clock."""
        now = self._clock()
        if now.tz_convert(get_calendar(self.calendar).tz).date() != day:
            return None
        due = [s for s in slots if s[1] <= now]
        return due[-1] if due else None

    def fetch_quotes(
        self,
        day: dt.date,
        underlying: str,
        contracts: pd.DataFrame,
        slots: list[tuple[str, pd.Timestamp]],
    ) -> pd.DataFrame:
        day = pd.Timestamp(day).date()
        slot = self.due_slot(day, slots)
        contracts = contracts[contracts["underlying"] == underlying]
        if slot is None or contracts.empty:
            if slot is None:
                log.info("IB: no slot of %s is due now (IB serves snapshots of the present only)", day)
            return OPTION_QUOTES.empty()
        spot = self._spot(self._underlying(underlying))
        rows = []
        records = contracts.to_dict("records")
        for batch in _batches(records, self.batch_size):
            ib_contracts = [self._contract(c["con_id"], c["exchange"]) for c in batch]
            try:
                tickers = self._call("reqTickers", *ib_contracts, tokens=len(ib_contracts))
                failure = ""
            except (SourceUnavailable, TimeoutError) as exc:
                tickers, failure = [], f"snapshot failed: {exc}"[:200]
            by_id = {getattr(t.contract, "conId", 0): t for t in tickers if t is not None}
            for c in batch:
                t = by_id.get(int(c["con_id"]))
                row = {
                    "symbol": c["symbol"],
                    "trade_date": pd.Timestamp(day),
                    "ts": slot[1],
                    "slot": slot[0],
                    "underlying": underlying,
                    "underlying_price": spot,
                    "bid": math.nan,
                    "ask": math.nan,
                    "last": math.nan,
                    "volume": math.nan,
                    "delayed": False,
                    "snapshot_error": failure,
                }
                if t is not None:
                    row.update(
                        bid=_num(t.bid),
                        ask=_num(t.ask),
                        last=_num(t.last),
                        volume=_num(t.volume),
                        delayed=int(getattr(t, "marketDataType", 1) or 1) in DELAYED_TYPES,
                    )
                    if not any(math.isfinite(row[k]) for k in ("bid", "ask", "last")):
                        row["snapshot_error"] = self._errors.get(int(c["con_id"]), "no data")
                elif not failure:
                    row["snapshot_error"] = self._errors.get(int(c["con_id"]), "no ticker returned")
                rows.append(row)
        return OPTION_QUOTES.conform(pd.DataFrame(rows))
