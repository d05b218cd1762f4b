"""Engine settings of a backtest: fills, sizing, fees and A-share trading rules.

Every setting is a keyword of `quant_platform.backtest.run` / `grid`; `BacktestSettings.from_kwargs`
validates them and rejects unknown names, so a typo (`comission=`) fails loudly instead of being
silently ignored. The full meaning of each setting, with formulas, is in docs/backtest.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from numbers import Real
from typing import Any

import numpy as np

FILL_MODES = ("next_open", "close")
SIZING_MODES = ("all_in_integer", "all_in_fractional")
DIRECTIONS = ("long_short", "long_only")

# Integer codes passed to the compiled kernels (see engine.py).
SIZING_INTEGER, SIZING_FRACTIONAL, SIZING_FIXED = 0, 1, 2


@dataclass(frozen=True)
class BacktestSettings:
    """How orders are filled, sized and charged.

    Attributes:
        cash: Starting cash (> 0).
        commission: Commission rate per side, a fraction of the traded notional (0.0003 = 3 bps).
            Charged on every fill, buys and sells alike.
        min_commission: Minimum commission per fill in cash (e.g. 5 CNY); the commission of a fill is
            ``max(commission * notional, min_commission)``.
        stamp_duty: Tax rate charged on sells only (closing a long or opening a short), a fraction of
            the sold notional (A-shares: 0.0005).
        slippage: Adverse price move per fill, a fraction of the price: buys fill at
            ``price * (1 + slippage)``, sells at ``price * (1 - slippage)``.
        fill: ``"next_open"`` (default): a decision taken on bar t's close fills at bar t+1's open.
            ``"close"``: it fills at bar t's close.
        sizing: ``"all_in_integer"`` (default): ``floor(equity / (price * (1 + commission)))`` units,
            rounded down to a multiple of ``lot_size``; ``"all_in_fractional"``: the same without
            rounding; or a positive number: that fixed quantity of units per position (rounded down
            to ``lot_size``; capped at what the equity can pay for).
        lot_size: Units are traded in multiples of this (A-shares: 100). Ignored by
            ``"all_in_fractional"``.
        direction: ``"long_short"`` (default): a short signal reverses a long into a short and vice
            versa. ``"long_only"``: a short signal only closes a long.
        t_plus_1: A-share T+1: a long bought on a trading day cannot be sold that same day; the sell is
            retried on the next bar.
        price_limit: A-share daily price limits. ``False`` (default): off. ``True``: use the data's
            ``limit_up`` / ``limit_down`` columns (required). A fraction such as ``0.1``: use those
            columns when present, else ``round(prev_close * (1 +/- price_limit), 2)``. No buy fills
            at or above limit-up and no sell fills at or below limit-down; a blocked order is retried
            on the next bar while the strategy still wants it.
        periods_per_year: Annualisation factor of volatility, Sharpe and Sortino (252 for daily bars).
    """

    cash: float = 10_000.0
    commission: float = 0.0
    min_commission: float = 0.0
    stamp_duty: float = 0.0
    slippage: float = 0.0
    fill: str = "next_open"
    sizing: str | float = "all_in_integer"
    lot_size: float = 1.0
    direction: str = "long_short"
    t_plus_1: bool = False
    price_limit: bool | float = False
    periods_per_year: float = 252.0

    def __post_init__(self) -> None:
        def _num(name: str, lo: float, hi: float = math.inf, *, lo_open: bool = False) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)):
                raise ValueError(f"setting {name!r} must be a finite number, got {v!r}")
            v = float(v)
            if (v <= lo if lo_open else v < lo) or v > hi:
                op = ">" if lo_open else ">="
                raise ValueError(f"setting {name!r} must be {op} {lo} and <= {hi}, got {v!r}")
            object.__setattr__(self, name, v)

        _num("cash", 0.0, lo_open=True)
        _num("commission", 0.0, 0.1)
        _num("min_commission", 0.0)
        _num("stamp_duty", 0.0, 0.1)
        _num("slippage", 0.0, 0.5)
        _num("lot_size", 0.0, lo_open=True)
        _num("periods_per_year", 0.0, lo_open=True)
        if self.fill not in FILL_MODES:
            raise ValueError(f"setting 'fill' must be one of {FILL_MODES}, got {self.fill!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"setting 'direction' must be one of {DIRECTIONS}, got {self.direction!r}")
        s = self.sizing
        if isinstance(s, str):
            if s not in SIZING_MODES:
                raise ValueError(
                    f"setting 'sizing' must be one of {SIZING_MODES} or a positive quantity, got {s!r}"
                )
        elif isinstance(s, bool) or not isinstance(s, Real) or not (math.isfinite(s) and s > 0):
            raise ValueError(f"setting 'sizing' as a fixed quantity must be a positive number, got {s!r}")
        else:
            object.__setattr__(self, "sizing", float(s))
        if not isinstance(self.t_plus_1, bool | np.bool_):
            raise ValueError(f"setting 't_plus_1' must be a bool, got {self.t_plus_1!r}")
        object.__setattr__(self, "t_plus_1", bool(self.t_plus_1))
        pl = self.price_limit
        if isinstance(pl, bool | np.bool_):
            object.__setattr__(self, "price_limit", bool(pl))
        elif isinstance(pl, Real) and math.isfinite(pl) and 0 < pl < 1:
            object.__setattr__(self, "price_limit", float(pl))
        else:
            raise ValueError(f"setting 'price_limit' must be a bool or a fraction in (0, 1), got {pl!r}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_kwargs(cls, settings: dict[str, Any] | None = None, /, **kwargs: Any) -> BacktestSettings:
        """Build from keyword settings, raising ValueError on unknown names."""
        merged = {**(settings or {}), **kwargs}
        unknown = sorted(set(merged) - set(cls.names()))
        if unknown:
            raise ValueError(f"unknown backtest setting(s) {unknown}; valid settings: {list(cls.names())}")
        return cls(**merged)

    @classmethod
    def a_share(cls, **overrides: Any) -> BacktestSettings:
        """Typical China A-share retail settings (override any of them).

        commission 0.025% per side with a 5 CNY minimum, stamp duty 0.05% on sells, lots of 100, T+1,
        long only, and the +/-10% main-board price limit.
        """
        base: dict[str, Any] = dict(
            commission=0.00025,
            min_commission=5.0,
            stamp_duty=0.0005,
            lot_size=100.0,
            t_plus_1=True,
            price_limit=0.1,
            direction="long_only",
        )
        base.update(overrides)
        return cls.from_kwargs(base)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ------------------------------------------------------------------ kernel packing
    @property
    def sizing_code(self) -> int:
        if self.sizing == "all_in_integer":
            return SIZING_INTEGER
        if self.sizing == "all_in_fractional":
            return SIZING_FRACTIONAL
        return SIZING_FIXED

    def kernel_params(self, use_limits: bool) -> tuple[np.ndarray, np.ndarray]:
        """(int64, float64) parameter vectors consumed by the compiled kernels."""
        ip = np.array(
            [
                1 if self.fill == "close" else 0,
                self.sizing_code,
                1 if self.direction == "long_only" else 0,
                1 if self.t_plus_1 else 0,
                1 if use_limits else 0,
            ],
            dtype=np.int64,
        )
        fixed = float(self.sizing) if self.sizing_code == SIZING_FIXED else 0.0
        fp = np.array(
            [
                self.cash,
                self.commission,
                self.min_commission,
                self.stamp_duty,
                self.slippage,
                fixed,
                self.lot_size,
            ],
            dtype=np.float64,
        )
        return ip, fp
