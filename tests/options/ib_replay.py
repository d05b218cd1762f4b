"""A stand-in for `ib_async.IB` that answers from a recorded session (tests/options/fixtures/ib_*.json).

It sits at the adapter's boundary: the adapter calls the same methods with the same arguments as it
would on a connected `ib_async.IB`, and gets real `ib_async` objects (contracts, option chains,
tickers) built from the recording. Faults recorded under "faults" (call numbers of a method that
timed out) are replayed as `TimeoutError`, as ib_async raises them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import ib_async

FIXTURES = Path(__file__).parent / "fixtures"


class _Event:
    def __init__(self) -> None:
        self.handlers = []

    def __iadd__(self, handler):
        self.handlers.append(handler)
        return self

    def __isub__(self, handler):
        self.handlers.remove(handler)
        return self

    def emit(self, *args) -> None:
        for h in self.handlers:
            h(*args)


def _value(v):
    return math.nan if v is None else v


class ReplayIB:
    def __init__(self, name: str = "ib_spy_2024-10-08.json") -> None:
        self.record = json.loads((FIXTURES / name).read_text())
        self.errorEvent = _Event()
        self.calls: Counter[str] = Counter()
        self.contracts_asked: Counter[str] = Counter()
        self.cancelled: list[int] = []
        self.market_data_type = None
        self._faults = {k: list(v) for k, v in self.record.get("faults", {}).items()}
        self._by_con = {v["conId"]: k for k, v in self.record["qualified_options"].items()}

    def _count(self, method: str) -> int:
        self.calls[method] += 1
        if self.calls[method] in self._faults.get(method, []):
            raise TimeoutError(f"{method}: no answer within the timeout (recorded fault)")
        return self.calls[method]

    # -- the ib_async.IB methods the adapter uses ------------------------------------------------
    def reqMarketDataType(self, marketDataType: int) -> None:
        self.market_data_type = marketDataType

    def qualifyContracts(self, *contracts):
        self._count("qualifyContracts")
        self.contracts_asked["qualifyContracts"] += len(contracts)
        out = []
        und = self.record["underlying"]
        for c in contracts:
            if c.secType == "STK":
                if c.symbol != und["symbol"]:
                    out.append(None)
                    continue
                for k, v in und.items():
                    setattr(c, k, v)
                out.append(c)
                continue
            key = f"{c.lastTradeDateOrContractMonth}|{c.strike:g}|{c.right}"
            found = self.record["qualified_options"].get(key)
            if found is None:
                out.append(None)  # ib_async 2.x: None at the position of an unknown contract
                continue
            for k, v in found.items():
                setattr(c, k, v)
            out.append(c)
        return out

    def reqSecDefOptParams(self, underlyingSymbol, futFopExchange, underlyingSecType, underlyingConId):
        self._count("reqSecDefOptParams")
        assert underlyingConId == self.record["underlying"]["conId"]
        return [ib_async.OptionChain(**c) for c in self.record["sec_def_opt_params"]]

    def _ticker(self, contract, data: dict) -> ib_async.Ticker:
        ticker = ib_async.Ticker(contract=contract)  # its __post_init__ resets every field to "unset"
        for k, v in data.items():
            setattr(ticker, k, _value(v))
        return ticker

    def reqTickers(self, *contracts, regulatorySnapshot: bool = False):
        self._count("reqTickers")
        self.contracts_asked["reqTickers"] += len(contracts)
        out = []
        for c in contracts:
            if c.conId == self.record["underlying"]["conId"]:
                out.append(self._ticker(c, self.record["underlying_ticker"]))
                continue
            for err in self.record["errors"]:
                if err["conId"] == c.conId:
                    self.errorEvent.emit(err["reqId"], err["code"], err["message"], c)
            data = self.record["tickers"].get(str(c.conId))
            if data is not None:
                out.append(self._ticker(c, data))
        return out

    def reqMktData(self, contract, genericTickList="", snapshot=False, regulatorySnapshot=False, *_):
        self._count("reqMktData")
        assert genericTickList == "101" and not snapshot
        oi = _value(self.record["open_interest"].get(str(contract.conId)))
        right = self._by_con[contract.conId].rsplit("|", 1)[1]
        field = "callOpenInterest" if right == "C" else "putOpenInterest"
        return self._ticker(contract, {field: oi})

    def cancelMktData(self, contract) -> bool:
        self.cancelled.append(contract.conId)
        return True

    def sleep(self, seconds: float = 0) -> bool:
        self.calls["sleep"] += 1
        return True
