"""Grid-search requests: parse parameter specs, validate them against the strategy registry, and build
the canonical request body that is stored in the warm tier.

A parameter spec is ``name=values``:

* ``fast=5:50:5``: start:stop:step, both ends inclusive (``5, 10, ..., 50``); ``start:stop`` means step 1;
* ``slow=20,30,60``: an explicit list;
* ``k=2.5``: a single value (the parameter is fixed).

Values take the type of the registered parameter (int, float, bool), so ``fast=5.5`` is rejected for an
int window. Combinations that fail the strategy's own validation (e.g. ``slow <= fast`` for
``sma_cross``) are skipped when the grid runs; a grid where every combination is invalid is rejected
at submit time.

The body is canonical: values are expanded and typed, symbols sorted, defaults filled in. Equal
searches therefore have equal bodies, and so the same body hash. That hash is the idempotency key
used when the caller does not give one.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from quant_platform.core.limits import check_symbol_count, check_window
from quant_platform.settings import settings as settings_now

# Objective -> "max" (higher is better) or "min". max_drawdown is <= 0, so "max" prefers shallow ones.
OBJECTIVES: dict[str, str] = {
    "sharpe": "max",
    "sortino": "max",
    "total_return": "max",
    "cagr": "max",
    "calmar": "max",
    "max_drawdown": "max",
    "win_rate": "max",
    "profit_factor": "max",
    "annual_volatility": "min",
}

# Engine settings of a grid search unless the request overrides them: A-share retail rules, as in
# `backtest_runs`. `cash` is per symbol: every symbol is backtested on its own.
DEFAULT_SETTINGS: dict[str, Any] = {
    "cash": 1_000_000.0,
    "commission": 0.00025,
    "min_commission": 5.0,
    "stamp_duty": 0.0005,
    "lot_size": 100.0,
    "t_plus_1": True,
    "price_limit": True,
    "direction": "long_only",
}

# Bar frequencies a search can run on: klines_daily or the cold tier's intraday bars.
FREQUENCIES = ("1d", "5m", "15m")
# Fewest bars a trading day has at each frequency (A-share sessions are 4 hours, the shortest of the
# calendars), used to check at submit time that walk-forward folds hold the strategy's warm-up.
BARS_PER_DAY = {"1d": 1, "5m": 48, "15m": 16}
WALK_FORWARD_FOLDS = (2, 20)

MAX_VALUES_PER_PARAM = 10_000
MAX_COMBINATIONS = 200_000  # raw cartesian product; planning validates every combination once
ALL = "all"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


class GridSpecError(ValueError):
    """An invalid grid-search request; the message says what is wrong and what would be valid."""


# ------------------------------------------------------------------------------------------ parsing


def parse_param(text: str) -> tuple[str, str]:
    """``"fast=5:50:5"`` -> ``("fast", "5:50:5")``."""
    name, sep, values = str(text).partition("=")
    name, values = name.strip(), values.strip()
    if not sep or not name or not values:
        raise GridSpecError(f"--param must look like name=start:stop:step or name=v1,v2,...; got {text!r}")
    if not _NAME_RE.match(name):
        raise GridSpecError(f"invalid parameter name {name!r}")
    return name, values


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """Several ``name=values`` specs -> {name: values}; a parameter given twice is an error."""
    out: dict[str, str] = {}
    for item in items:
        name, values = parse_param(item)
        if name in out:
            raise GridSpecError(f"parameter {name!r} is given more than once")
        out[name] = values
    return out


def _number(name: str, token: str) -> Decimal:
    try:
        value = Decimal(token.strip())
    except InvalidOperation:
        raise GridSpecError(f"parameter {name!r}: {token.strip()!r} is not a number") from None
    if not value.is_finite():
        raise GridSpecError(f"parameter {name!r}: {token.strip()!r} is not a finite number")
    return value


def _range(name: str, text: str) -> list[Decimal]:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise GridSpecError(f"parameter {name!r}: a range is start:stop or start:stop:step, got {text!r}")
    start, stop = _number(name, parts[0]), _number(name, parts[1])
    step = _number(name, parts[2]) if len(parts) == 3 else Decimal(1)
    if step <= 0:
        raise GridSpecError(f"parameter {name!r}: step must be > 0, got {parts[2].strip()!r}")
    if stop < start:
        raise GridSpecError(f"parameter {name!r}: stop ({stop}) is below start ({start}) in {text!r}")
    count = int((stop - start) / step) + 1
    if count > MAX_VALUES_PER_PARAM:
        raise GridSpecError(
            f"parameter {name!r}: {text!r} has {count:,} values; at most {MAX_VALUES_PER_PARAM:,}"
        )
    return [start + i * step for i in range(count)]


def _raw_values(name: str, spec: Any) -> list[Any]:
    """Spec string or sequence -> list of raw values (Decimals for numbers parsed from text)."""
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise GridSpecError(f"parameter {name!r} has no values")
        if ":" in text:
            return _range(name, text)
        tokens = [t.strip() for t in text.split(",")]
        if any(not t for t in tokens):
            raise GridSpecError(f"parameter {name!r}: empty value in {text!r}")
        out: list[Any] = []
        for t in tokens:
            low = t.lower()
            out.append(True if low in _TRUE else False if low in _FALSE else _number(name, t))
        return out
    if isinstance(spec, bool) or not isinstance(spec, Sequence):
        return [spec]
    values = list(spec)
    if not values:
        raise GridSpecError(f"parameter {name!r} has no values")
    return values


def _coerce(name: str, value: Any, param: Any) -> Any:
    """Type one value by the registered parameter (or infer it for unchecked strategies)."""
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    if param is None:
        if isinstance(value, bool | int | float):
            return value
        raise GridSpecError(f"parameter {name!r}: {value!r} is not a number or a bool")
    if param.type is bool and isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        value = bool(value)
    if param.type is float and isinstance(value, float):
        value = float(round(value, 12))
    try:
        return param.coerce(name, value)
    except ValueError as exc:
        raise GridSpecError(str(exc)) from None


def parse_values(name: str, spec: Any, param: Any = None) -> list[Any]:
    """Values of one parameter, typed by its `Param` (None: infer), duplicates removed in order."""
    values = [_coerce(name, v, param) for v in _raw_values(name, spec)]
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    if len(out) > MAX_VALUES_PER_PARAM:
        raise GridSpecError(f"parameter {name!r} has {len(out):,} values; at most {MAX_VALUES_PER_PARAM:,}")
    return out


def parse_date(what: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise GridSpecError(f"{what} must be a date YYYY-MM-DD, got {value!r}") from None


def parse_symbols(symbols: str | Sequence[str] | None) -> list[str] | None:
    """``"600000.SH,600001.SH"`` or a list -> sorted unique symbols; None or ``"all"`` -> None."""
    if symbols is None:
        return None
    if isinstance(symbols, str):
        if symbols.strip().lower() == ALL:
            return None
        symbols = symbols.split(",")
    items = [str(s).strip() for s in symbols]
    bad = [s for s in items if not _SYMBOL_RE.match(s)]
    if bad:
        raise GridSpecError(f"invalid symbol(s) {bad[:5]}; expected codes such as 600000.SH")
    if not items:
        raise GridSpecError("no symbols given: pass --symbols A,B or --universe all")
    unique = sorted(set(items))
    try:
        check_symbol_count(len(unique))
    except ValueError as exc:
        raise GridSpecError(str(exc)) from None
    return unique


# ------------------------------------------------------------------------------------------ the spec


@dataclass(frozen=True)
class GridSpec:
    """A validated grid-search request. `body()` is what the warm tier stores."""

    strategy: str
    grid: dict[str, list[Any]]
    start: dt.date
    end: dt.date
    symbols: tuple[str, ...] | None = None  # None: every symbol with klines in the window
    objective: str = "sharpe"
    max_evals: int | None = None  # parameter combinations, each evaluated on every symbol
    time_budget: float | None = None  # seconds of evaluation, checked before each batch
    early_stop: int | None = None  # stop after this many batches without a better objective
    batch_size: int | None = None  # combinations per batch (default: about 16 batches)
    watch: bool = False  # re-run when new klines_daily land
    settings: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, Any] | None = None  # for re-runs of a watched search: what triggered them
    activate: str = "if-validated"  # if-validated | best | never: what happens to the winner
    holdout: tuple[dt.date, dt.date] | None = None  # out-of-sample window after `end`, never searched
    frequency: str = "1d"  # 1d: klines_daily; 5m / 15m: bars_5m / bars_15m
    walk_forward: int | None = None  # anchored folds inside [start, end], see grid.walkforward

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]

    @property
    def params(self) -> list[str]:
        return list(self.grid)

    @property
    def size(self) -> int:
        """Combinations in the cartesian product, valid or not."""
        return math.prod(len(v) for v in self.grid.values())

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "strategy": self.strategy,
            "grid": {k: list(v) for k, v in self.grid.items()},
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "universe": ALL if self.symbols is None else "symbols",
            "symbols": list(self.symbols) if self.symbols is not None else [],
            "objective": self.objective,
            "max_evals": self.max_evals,
            "time_budget": self.time_budget,
            "early_stop": self.early_stop,
            "batch_size": self.batch_size,
            "watch": self.watch,
            "settings": dict(self.settings),
        }
        if self.origin is not None:
            body["origin"] = dict(self.origin)
        if self.activate != "if-validated":  # the default stays out: older bodies keep their hash
            body["activate"] = self.activate
        if self.holdout is not None:
            body["holdout"] = [self.holdout[0].isoformat(), self.holdout[1].isoformat()]
        if self.frequency != "1d":  # defaults stay out of the body: older requests keep their hash
            body["frequency"] = self.frequency
        if self.walk_forward is not None:
            body["walk_forward"] = self.walk_forward
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> GridSpec:
        """Validate a stored body again (the registry may have changed since it was submitted)."""
        known = {
            "strategy", "grid", "start", "end", "universe", "symbols", "objective", "max_evals",
            "time_budget", "early_stop", "batch_size", "watch", "settings", "origin", "activate",
            "holdout", "frequency", "walk_forward",
        }  # fmt: skip
        unknown = sorted(set(body) - known)
        if unknown:
            raise GridSpecError(f"unknown field(s) {unknown} in grid request body")
        universe = body.get("universe", ALL)
        symbols = body.get("symbols") or []
        return build_spec(
            body.get("strategy", ""),
            body.get("grid") or {},
            symbols=symbols if universe != ALL else None,
            universe=ALL if universe == ALL else None,
            start=body.get("start"),
            end=body.get("end"),
            objective=body.get("objective", "sharpe"),
            max_evals=body.get("max_evals"),
            time_budget=body.get("time_budget"),
            early_stop=body.get("early_stop"),
            batch_size=body.get("batch_size"),
            watch=bool(body.get("watch", False)),
            settings=body.get("settings"),
            origin=body.get("origin"),
            activate=body.get("activate", "if-validated"),
            holdout=body.get("holdout"),
            frequency=body.get("frequency", "1d"),
            walk_forward=body.get("walk_forward"),
        )


def parse_holdout(holdout: str | Sequence[Any] | None, end: dt.date) -> tuple[dt.date, dt.date] | None:
    """``"2024-06-03..2024-08-30"`` or ``[start, end]`` -> the out-of-sample window, after `end`."""
    if holdout is None or (isinstance(holdout, str) and not holdout.strip()):
        return None
    parts = holdout.split("..") if isinstance(holdout, str) else list(holdout)
    if len(parts) != 2:
        raise GridSpecError(f"holdout must look like START..END, got {holdout!r}")
    h0, h1 = parse_date("holdout start", parts[0]), parse_date("holdout end", parts[1])
    if h0 <= end:
        raise GridSpecError(f"the holdout ({h0}..{h1}) must start after the search window's end ({end})")
    try:
        check_window(h0, h1, settings_now().calendar)
    except ValueError as exc:
        raise GridSpecError(f"holdout: {exc}") from None
    return h0, h1


def _positive_int(what: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 1:
        raise GridSpecError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    from quant_platform.core.backtest import BacktestSettings

    merged = {**DEFAULT_SETTINGS, **dict(settings or {})}
    try:
        BacktestSettings.from_kwargs(merged)
    except ValueError as exc:
        raise GridSpecError(str(exc)) from None
    return merged


def build_spec(
    strategy: str,
    params: Mapping[str, Any],
    *,
    start: Any,
    end: Any,
    symbols: str | Sequence[str] | None = None,
    universe: str | None = None,
    objective: str = "sharpe",
    max_evals: int | None = None,
    time_budget: float | None = None,
    early_stop: int | None = None,
    batch_size: int | None = None,
    watch: bool = False,
    settings: Mapping[str, Any] | None = None,
    origin: Mapping[str, Any] | None = None,
    activate: str = "if-validated",
    holdout: str | Sequence[Any] | None = None,
    frequency: str = "1d",
    walk_forward: int | None = None,
) -> GridSpec:
    """Validate a request and return its `GridSpec`; GridSpecError says what is wrong.

    `params` maps parameter names to spec strings (``"5:50:5"``, ``"20,30,60"``) or lists of values.
    Give either `symbols` (codes, or a comma-separated string) or ``universe="all"``.
    """
    from quant_platform.core.backtest import STRATEGIES, expand_grid

    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise GridSpecError(f"unknown strategy {strategy!r}; registered strategies: {sorted(STRATEGIES)}")
    spec = STRATEGIES[strategy]
    if not params:
        raise GridSpecError("empty grid: give at least one --param name=values")
    if spec.params is not None:
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            raise GridSpecError(
                f"unknown parameter(s) {unknown} for strategy {strategy!r}; valid: {sorted(spec.params)}"
            )
    grid = {
        str(k): parse_values(str(k), v, (spec.params or {}).get(k))
        for k, v in sorted(params.items(), key=lambda kv: str(kv[0]))
    }
    size = math.prod(len(v) for v in grid.values())
    if size > MAX_COMBINATIONS:
        raise GridSpecError(f"the grid has {size:,} combinations; at most {MAX_COMBINATIONS:,}")
    valid, skipped = expand_grid(spec, grid)
    if not valid:
        reason = skipped[0]["reason"] if skipped else "no combinations"
        raise GridSpecError(
            f"every one of the {size:,} combinations is invalid for {strategy!r} (e.g. {reason})"
        )

    if universe is not None and str(universe).strip().lower() != ALL:
        raise GridSpecError(f"universe must be {ALL!r} (or give symbols), got {universe!r}")
    if universe is not None and symbols:
        raise GridSpecError("give either symbols or universe 'all', not both")
    if universe is None and not symbols:
        raise GridSpecError("no symbols: pass --symbols A,B or --universe all")
    codes = None if universe is not None else parse_symbols(symbols)

    d0, d1 = parse_date("start", start), parse_date("end", end)
    try:
        check_window(d0, d1, settings_now().calendar)
    except ValueError as exc:
        raise GridSpecError(f"window: {exc}") from None
    if objective not in OBJECTIVES:
        raise GridSpecError(f"unknown objective {objective!r}; choose one of {sorted(OBJECTIVES)}")
    if time_budget is not None and (
        isinstance(time_budget, bool)
        or not isinstance(time_budget, int | float)
        or not math.isfinite(time_budget)
        or time_budget <= 0
    ):
        raise GridSpecError(f"time_budget must be > 0 seconds, got {time_budget!r}")
    if activate not in ("if-validated", "best", "never"):
        raise GridSpecError(f"activate must be one of if-validated, best, never; got {activate!r}")
    held = parse_holdout(holdout, d1)
    if frequency not in FREQUENCIES:
        raise GridSpecError(f"frequency must be one of {', '.join(FREQUENCIES)}; got {frequency!r}")
    folds = _walk_forward(walk_forward, held, spec, valid, d0, d1, frequency)
    return GridSpec(
        strategy=strategy,
        grid=grid,
        start=d0,
        end=d1,
        symbols=tuple(codes) if codes is not None else None,
        objective=objective,
        max_evals=_positive_int("max_evals", max_evals),
        time_budget=float(time_budget) if time_budget is not None else None,
        early_stop=_positive_int("early_stop", early_stop),
        batch_size=_positive_int("batch_size", batch_size),
        watch=bool(watch),
        settings=_settings(settings),
        origin=dict(origin) if origin is not None else None,
        activate=activate,
        holdout=held,
        frequency=frequency,
        walk_forward=folds,
    )


def _walk_forward(
    folds: Any,
    holdout: Any,
    strategy: Any,
    valid: list[dict[str, Any]],
    start: dt.date,
    end: dt.date,
    frequency: str,
) -> int | None:
    """The number of walk-forward folds, checked: 2..20, not with a holdout, and a window whose first
    in-sample part (1/(N+1) of it) holds the warm-up of the grid's shortest combination plus 2 bars."""
    if folds is None:
        return None
    lo, hi = WALK_FORWARD_FOLDS
    if isinstance(folds, bool) or not isinstance(folds, int) or not lo <= folds <= hi:
        raise GridSpecError(f"walk_forward must be a number of folds from {lo} to {hi}, got {folds!r}")
    if holdout is not None:
        raise GridSpecError("give either a holdout or walk-forward folds, not both")
    from quant_platform.core.calendar import get_calendar

    days = len(get_calendar(settings_now().calendar).sessions(start, end))
    segment = days // (folds + 1)
    warmup = min(strategy.warmup_bars(p) for p in valid)
    need = -(-(warmup + 2) // BARS_PER_DAY[frequency])  # days, rounded up
    if segment < max(need, 2):
        raise GridSpecError(
            f"walk-forward: {days} trading days make {folds + 1} segments of {segment} day(s), but each "
            f"needs at least {max(need, 2)} ({strategy.name} warms up over {warmup} bar(s) at {frequency}): "
            "use fewer folds or a longer window"
        )
    return folds
