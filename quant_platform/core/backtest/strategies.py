"""Strategy templates and the strategy registry.

A strategy is a small function ``fn(data, params) -> array``:

* single-asset strategies get a `Bars` (numpy OHLCV arrays of one symbol) and return one value per
  bar; with ``output="signals"`` (default) +1 = go long, -1 = go short (long-only: exit), 0 = no
  action; with ``output="targets"`` the value is the wanted position: +1 long, -1 short, 0 flat, NaN
  = keep the previous target;
* portfolio strategies (``universe="multi"``) get a `Panel` (bars x symbols arrays) and return a
  (bars x symbols) array: on a rebalance bar 1 = hold that symbol, 0 = don't; a row of all NaN = no
  rebalance on that bar.

The value at bar t must only use data up to bar t's close; the engine acts on it at bar t+1's open
(or bar t's close with ``fill="close"``).

Register your own with `register_strategy(name, fn, param_spec)`; `validate_params` /
`expand_grid` check parameter sets against the registered spec (unknown names, types, ranges and
cross-parameter constraints such as ``slow > fast``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from . import indicators as ind
from .data import Bars, Panel

OUTPUTS = ("signals", "targets")
UNIVERSES = ("single", "multi")


@dataclass(frozen=True)
class Param:
    """One strategy parameter: its type (int, float or bool), default and inclusive bounds."""

    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    doc: str = ""

    def coerce(self, name: str, value: Any) -> Any:
        if self.type is bool:
            if not isinstance(value, bool | np.bool_):
                raise ValueError(f"parameter {name!r} must be a bool, got {value!r}")
            return bool(value)
        if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
            raise ValueError(f"parameter {name!r} must be a number, got {value!r}")
        if self.type is int:
            if not isinstance(value, Integral) and not float(value).is_integer():
                raise ValueError(f"parameter {name!r} must be an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not np.isfinite(value):
                raise ValueError(f"parameter {name!r} must be finite, got {value!r}")
        if self.min is not None and value < self.min:
            raise ValueError(f"parameter {name!r} must be >= {self.min}, got {value!r}")
        if self.max is not None and value > self.max:
            raise ValueError(f"parameter {name!r} must be <= {self.max}, got {value!r}")
        return value


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy: function, parameter spec, output kind and universe."""

    name: str
    fn: Callable[[Any, dict[str, Any]], Any]
    params: Mapping[str, Param] | None = None  # None: parameters are passed through unchecked
    check: Callable[[dict[str, Any]], str | None] | None = None
    output: str = "signals"
    universe: str = "single"
    doc: str = ""
    grid_kernel: str | None = field(default=None, repr=False)  # built-in fast path of `grid`
    warmup: Callable[[dict[str, Any]], int] | None = field(default=None, repr=False)

    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        """Bars the strategy needs before its first possible signal (0 when unknown)."""
        return int(self.warmup(dict(params))) if self.warmup is not None else 0

    def window_warning(self, params: Mapping[str, Any], bars: int) -> str | None:
        """A message when `bars` bars cannot produce a single signal with `params`, else None."""
        need = self.warmup_bars(params)
        if need and bars <= need:
            return (
                f"the window has {bars} bars but {self.name} {dict(params)} needs more than {need} bars "
                "of warm-up: no signal is possible, results show no trading (lengthen the window)"
            )
        return None

    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in (self.params or {}).items()}

    def check_names(self, names: Iterable[str]) -> None:
        if self.params is None:
            return
        unknown = sorted(set(names) - set(self.params))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for strategy {self.name!r}; "
                f"valid parameters: {sorted(self.params)}"
            )

    def validate(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults merged with `params`, coerced and checked; ValueError on any problem."""
        params = dict(params or {})
        if self.params is None:
            return params
        self.check_names(params)
        out = self.defaults()
        for k, v in params.items():
            out[k] = self.params[k].coerce(k, v)
        if self.check is not None:
            msg = self.check(out)
            if msg:
                raise ValueError(f"invalid parameters for strategy {self.name!r}: {msg} (got {out})")
        return out


STRATEGIES: dict[str, StrategySpec] = {}
"""The registry: name -> StrategySpec (read it to list or validate strategies)."""


def _as_param(name: str, value: Any) -> Param:
    if isinstance(value, Param):
        return value
    if isinstance(value, bool):
        return Param(bool, value)
    if isinstance(value, Integral):
        return Param(int, int(value))
    if isinstance(value, Real):
        return Param(float, float(value))
    raise ValueError(f"param_spec[{name!r}] must be a Param or a default number/bool, got {value!r}")


def register_strategy(
    name: str,
    fn: Callable[[Any, dict[str, Any]], Any],
    param_spec: Mapping[str, Param | int | float | bool] | None = None,
    *,
    check: Callable[[dict[str, Any]], str | None] | None = None,
    output: str = "signals",
    universe: str = "single",
    doc: str | None = None,
    replace: bool = False,
    warmup: Callable[[dict[str, Any]], int] | None = None,
) -> StrategySpec:
    """Register `fn` under `name`.

    `param_spec` maps parameter names to `Param(type, default, min, max)` (or just a default value,
    whose type is then inferred); `check(params)` returns an error message (or None) for
    cross-parameter constraints. ``output`` is "signals" or "targets", ``universe`` "single" or
    "multi" (see the module docstring); ``warmup(params)`` the bars needed before the first signal
    (runs on a shorter window carry a warning). Re-registering an existing name needs ``replace=True``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("strategy name must be a non-empty string")
    if name in STRATEGIES and not replace:
        raise ValueError(f"strategy {name!r} is already registered (pass replace=True to override)")
    if not callable(fn):
        raise ValueError(f"strategy {name!r}: fn must be callable")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if universe not in UNIVERSES:
        raise ValueError(f"universe must be one of {UNIVERSES}, got {universe!r}")
    params = None if param_spec is None else {k: _as_param(k, v) for k, v in param_spec.items()}
    spec = StrategySpec(
        name=name,
        fn=fn,
        params=params,
        check=check,
        output=output,
        universe=universe,
        doc=doc if doc is not None else (fn.__doc__ or "").strip(),
        warmup=warmup,
    )
    STRATEGIES[name] = spec
    return spec


def get_strategy(strategy: str | StrategySpec | Callable[..., Any]) -> StrategySpec:
    """Resolve a registered name, a StrategySpec, or an ad-hoc callable (single-asset signals)."""
    if isinstance(strategy, StrategySpec):
        return strategy
    if isinstance(strategy, str):
        try:
            return STRATEGIES[strategy]
        except KeyError:
            raise ValueError(
                f"unknown strategy {strategy!r}; registered strategies: {sorted(STRATEGIES)}"
            ) from None
    if callable(strategy):
        return StrategySpec(name=getattr(strategy, "__name__", "custom"), fn=strategy)
    raise ValueError(f"strategy must be a registered name or a callable, got {type(strategy).__name__}")


def validate_params(
    strategy: str | StrategySpec | Callable[..., Any], params: Mapping[str, Any] | None
) -> dict:
    """Full, checked parameter dict for `strategy` (ValueError on unknown/invalid parameters)."""
    return get_strategy(strategy).validate(params)


def expand_grid(
    strategy: str | StrategySpec | Callable[..., Any], grid: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Cartesian product of `grid` ({param: values}) -> (valid param dicts, skipped).

    Unknown parameter names raise ValueError (a broken spec); combinations that fail validation (a
    type, a range or a constraint such as ``slow <= fast``) are returned in `skipped` as
    ``{"params": {...}, "reason": "..."}``.
    """
    spec = get_strategy(strategy)
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid must be a mapping {{param: list of values}}, got {type(grid).__name__}")
    spec.check_names(grid)
    keys = list(grid)
    values = []
    for k in keys:
        v = grid[k]
        if isinstance(v, str | bytes) or not isinstance(v, Iterable):
            v = [v]
        v = list(v)
        if not v:
            raise ValueError(f"grid[{k!r}] has no values")
        values.append(v)
    valid: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for combo in itertools.product(*values):
        raw = dict(zip(keys, combo, strict=True))
        try:
            valid.append(spec.validate(raw))
        except ValueError as exc:
            skipped.append({"params": raw, "reason": str(exc)})
    return valid, skipped


# --------------------------------------------------------------------------------------------------
# Output conversion


def signals_to_want(sig: np.ndarray) -> np.ndarray:
    """+1 -> +1, -1 -> -1, 0/NaN -> NaN (no new decision)."""
    want = np.full(sig.shape[0], np.nan)
    want[sig > 0] = 1.0
    want[sig < 0] = -1.0
    return want


def to_want(out: Any, n: int, output: str, name: str) -> np.ndarray:
    """Strategy output -> the engine's want array (see engine.py)."""
    if isinstance(out, pd.DataFrame):
        raise ValueError(
            f"strategy {name!r} returned a DataFrame; a single-asset strategy returns 1 value per bar"
        )
    arr = out.to_numpy() if isinstance(out, pd.Series) else np.asarray(out)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"strategy {name!r} returned shape {arr.shape}; expected ({n},), one value per bar")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"strategy {name!r} returned non-numeric values (dtype {arr.dtype})")
    if output == "signals":
        return signals_to_want(arr)
    a = arr.astype(np.float64)
    return np.where(np.isnan(a), np.nan, np.sign(a))


def to_membership(out: Any, shape: tuple[int, int], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Portfolio strategy output -> (member bool (n x m), rebalance bool (n,))."""
    arr = out.to_numpy() if isinstance(out, pd.DataFrame) else np.asarray(out)
    if arr.shape != shape:
        raise ValueError(f"strategy {name!r} returned shape {arr.shape}; expected {shape} (bars x symbols)")
    a = arr.astype(np.float64)
    rebalance = ~np.isnan(a).all(axis=1)
    member = np.nan_to_num(a, nan=0.0) > 0
    return np.ascontiguousarray(member), np.ascontiguousarray(rebalance)


# --------------------------------------------------------------------------------------------------
# Templates


def sma_cross(bars: Bars, params: dict[str, Any]) -> np.ndarray:
    """Long when SMA(fast) crosses above SMA(slow), short (or exit) when it crosses below."""
    c = bars.close
    return ind.cross_signals(ind.sma(c, params["fast"]), ind.sma(c, params["slow"]))


def ema_cross(bars: Bars, params: dict[str, Any]) -> np.ndarray:
    """Long when EMA(fast) crosses above EMA(slow), short (or exit) when it crosses below."""
    c = bars.close
    return ind.cross_signals(ind.ema(c, params["fast"]), ind.ema(c, params["slow"]))


def rsi_reversion(bars: Bars, params: dict[str, Any]) -> np.ndarray:
    """Mean reversion: long while RSI(period) < lower (oversold), short (or exit) while RSI > upper."""
    r = ind.rsi(bars.close, params["period"])
    sig = np.zeros(r.shape[0], dtype=np.int8)
    sig[r < params["lower"]] = 1
    sig[r > params["upper"]] = -1
    return sig


def bollinger_breakout(bars: Bars, params: dict[str, Any]) -> np.ndarray:
    """Breakout: long when the close is above mean + k*std of the last `window` closes, short (or
    exit) when it is below mean - k*std (population std)."""
    c = bars.close
    mean, std = ind.rolling_mean_std(c, params["window"])
    k = params["k"]
    sig = np.zeros(c.shape[0], dtype=np.int8)
    sig[c > mean + k * std] = 1
    sig[c < mean - k * std] = -1
    return sig


def xs_momentum(panel: Panel, params: dict[str, Any]) -> np.ndarray:
    """Cross-sectional momentum: every `rebalance` bars (from bar `lookback` on) hold the `top_n`
    symbols with the highest return close[t-skip] / close[t-lookback] - 1 (ties: first symbol wins);
    only symbols with a bar at t and a defined score are eligible."""
    lb, top, step, skip = params["lookback"], params["top_n"], params["rebalance"], params["skip"]
    cf = panel.close_ffill
    n, m = cf.shape
    out = np.full((n, m), np.nan)
    for t in range(lb, n, step):
        with np.errstate(invalid="ignore", divide="ignore"):
            score = cf[t - skip] / cf[t - lb] - 1.0
        ok = np.isfinite(score) & ~np.isnan(panel.close[t])
        row = np.zeros(m)
        idx = np.flatnonzero(ok)
        if idx.size:
            order = idx[np.argsort(-score[idx], kind="stable")]
            row[order[:top]] = 1.0
        out[t] = row
    return out


def _cross_check(p: dict[str, Any]) -> str | None:
    return None if p["slow"] > p["fast"] else f"slow ({p['slow']}) must be > fast ({p['fast']})"


def _register_builtins() -> None:
    specs = [
        StrategySpec(
            "sma_cross",
            sma_cross,
            {
                "fast": Param(int, 10, 1, doc="fast SMA window"),
                "slow": Param(int, 20, 2, doc="slow SMA window"),
            },
            _cross_check,
            doc=sma_cross.__doc__ or "",
            grid_kernel="sma",
            warmup=lambda p: p["slow"],
        ),
        StrategySpec(
            "ema_cross",
            ema_cross,
            {"fast": Param(int, 12, 1, doc="fast EMA span"), "slow": Param(int, 26, 2, doc="slow EMA span")},
            _cross_check,
            doc=ema_cross.__doc__ or "",
            grid_kernel="ema",
            warmup=lambda p: p["slow"],
        ),
        StrategySpec(
            "rsi_reversion",
            rsi_reversion,
            {
                "period": Param(int, 14, 2, doc="RSI period"),
                "lower": Param(float, 30.0, 0.0, 100.0, doc="oversold level"),
                "upper": Param(float, 70.0, 0.0, 100.0, doc="overbought level"),
            },
            lambda p: None if p["lower"] < p["upper"] else "lower must be < upper",
            doc=rsi_reversion.__doc__ or "",
            warmup=lambda p: p["period"],
        ),
        StrategySpec(
            "bollinger_breakout",
            bollinger_breakout,
            {"window": Param(int, 20, 2, doc="band window"), "k": Param(float, 2.0, 0.0, doc="band width")},
            lambda p: None if p["k"] > 0 else "k must be > 0",
            doc=bollinger_breakout.__doc__ or "",
            warmup=lambda p: p["window"] - 1,
        ),
        StrategySpec(
            "xs_momentum",
            xs_momentum,
            {
                "lookback": Param(int, 60, 1, doc="return lookback in bars"),
                "top_n": Param(int, 5, 1, doc="symbols held"),
                "rebalance": Param(int, 20, 1, doc="bars between rebalances"),
                "skip": Param(int, 0, 0, doc="most recent bars skipped (e.g. 12-1 momentum)"),
            },
            lambda p: None if p["skip"] < p["lookback"] else "skip must be < lookback",
            output="targets",
            universe="multi",
            doc=xs_momentum.__doc__ or "",
            warmup=lambda p: p["lookback"],
        ),
    ]
    for s in specs:
        STRATEGIES[s.name] = s


_register_builtins()
