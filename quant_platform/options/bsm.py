"""Black-Scholes-Merton prices, greeks and implied volatility, vectorised (numba kernels).

European options on an underlying paying a continuous dividend yield `dividend` (q), with a
continuously compounded `rate` (r); `t` is the time to expiry in years, `vol` the annual volatility.
Every function broadcasts its array arguments like numpy does; `kind` is "call"/"put" (or "c"/"p",
any case), one string or an array of them. Scalars in give floats out.

Greeks are plain partial derivatives: `delta` = dV/dS, `gamma` = d2V/dS2, `vega` = dV/dvol (per 1.00
of volatility, not per point), `theta` = dV/d(calendar time) = -dV/dt (per year, not per day),
`rho` = dV/drate (per 1.00 of rate).

Implied volatility (`implied_vol`) is solved on the normalised out-of-the-money price (an
in-the-money price is turned into its out-of-the-money twin by put-call parity, so the intrinsic
value never swamps the time value), in the variable s = vol * sqrt(t):

* the inflection point s_c = sqrt(2 |ln(F/K)|) of the normalised price splits the problem in two;
* above it, Newton-Halley steps on the price itself, started at s_c (where the price is concave in
  s, so the iteration approaches the root from below without overshooting; at the money s_c = 0 and
  the first step is the Brenner-Subrahmanyam guess);
* below it (far out of the money), Newton steps on 1 / ln(price), which is nearly quadratic in s
  there (ln price ~ -ln(F/K)^2 / (2 s^2)), from the asymptotic guess;
* every step is safeguarded by a bracket that shrinks with each evaluation: a step leaving the
  bracket is replaced by bisection. Iterations stop when a step is below 1e-15 relative.

Where vega is not negligible the result agrees with an independent root finder to better than 1e-8
in vol (tests/options/test_bsm.py). A price at or below the intrinsic value (0 vol), or at or above
the no-arbitrage upper bound (S e^-qt for a call, K e^-rt for a put), or any non-finite or
non-positive input, gives NaN: no volatility reproduces it. (A price exactly at intrinsic gives 0.)

Example:
    >>> from quant_platform.options import greeks, implied_vol, price
    >>> p = price(spot=2.60, strike=2.55, t=0.25, rate=0.018, vol=0.22, kind="call")
    >>> round(p, 6)
    0.146068
    >>> round(implied_vol(p, spot=2.60, strike=2.55, t=0.25, rate=0.018, kind="call"), 12)
    0.22
    >>> g = greeks(2.60, 2.55, 0.25, 0.018, 0.22, kind="put")
    >>> sorted(g), round(g["delta"], 4)
    (['delta', 'gamma', 'rho', 'theta', 'vega'], -0.3926)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_MAX_ITER = 100
_REL_STEP = 1e-15

GREEKS = ("delta", "gamma", "vega", "theta", "rho")


# --------------------------------------------------------------------------------------- kernels


@njit(cache=True, inline="always")
def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


@njit(cache=True, inline="always")
def _npdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@njit(cache=True, inline="always")
def _b(x: float, s: float) -> float:
    """Normalised undiscounted call, C / (D sqrt(F K)), at log-moneyness x = ln(F/K) and s = vol sqrt(t)."""
    d1 = x / s + 0.5 * s
    return math.exp(0.5 * x) * _ncdf(d1) - math.exp(-0.5 * x) * _ncdf(d1 - s)


@njit(cache=True, inline="always")
def _b_s(x: float, s: float) -> float:
    """d b / d s (normalised vega)."""
    d1 = x / s + 0.5 * s
    return math.exp(0.5 * x) * _npdf(d1)


@njit(cache=True)
def _solve_s(beta: float, x: float) -> float:
    """s > 0 with b(x, s) = beta, for x <= 0 (out of the money) and 0 < beta < e^(x/2)."""
    s_c = math.sqrt(-2.0 * x)
    b_c = _b(x, s_c) if s_c > 0.0 else 0.0
    lo, hi = 0.0, math.inf
    lower = beta < b_c
    if lower:
        hi = s_c
        # ln b ~ -x^2/(2 s^2) + 3 ln s - 2 ln|x| - ln sqrt(2 pi):
        # two fixed-point rounds from s = |x| / sqrt(-2 ln beta)
        ln_beta = math.log(beta)
        s = -x / math.sqrt(-2.0 * ln_beta)
        for _ in range(2):
            rhs = 3.0 * math.log(s) - 2.0 * math.log(-x) - _LN_SQRT_2PI - ln_beta
            if rhs <= 0.0:
                break
            s = min(-x / math.sqrt(2.0 * rhs), s_c)
        target = 1.0 / ln_beta
    else:
        lo = s_c
        s = s_c
        target = beta
    for _ in range(_MAX_ITER):
        if s <= 0.0:
            # only in the upper region at the money: b(0) = 0, b'(0) = 1/sqrt(2 pi)
            new = beta / _INV_SQRT_2PI
        else:
            b = _b(x, s)
            vega = _b_s(x, s)
            if b > beta:
                hi = min(hi, s)
            elif b < beta:
                lo = max(lo, s)
            else:
                return s
            if vega <= 0.0 or not math.isfinite(vega):
                new = math.nan
            elif lower and 0.0 < b < 1.0:
                ln_b = math.log(b)
                f = 1.0 / ln_b - target
                fp = -vega / (b * ln_b * ln_b)
                new = s - f / fp
            else:
                f = b - beta
                fpp = vega * (x * x / (s * s * s) - 0.25 * s)
                step = f / vega
                halley = 1.0 - 0.5 * step * fpp / vega
                new = s - (step / halley if halley > 0.5 else step)
        if not (new > lo and new < hi) or not math.isfinite(new):
            new = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * max(lo, s, 1e-3)
        if abs(new - s) <= _REL_STEP * new:
            return new
        s = new
    return s


@njit(cache=True)
def _iv_kernel(price, spot, strike, t, rate, q, theta, out):
    for i in range(price.size):
        p, S, K, T, r, d, th = price[i], spot[i], strike[i], t[i], rate[i], q[i], theta[i]
        out[i] = math.nan
        if not (S > 0.0 and K > 0.0 and T > 0.0 and p >= 0.0 and math.isfinite(p + S + K + T + r + d)):
            continue
        forward = S * math.exp((r - d) * T)
        discount = math.exp(-r * T)
        root = math.sqrt(forward * K)
        x = math.log(forward / K)
        beta = p / (discount * root)
        upper = math.exp(0.5 * th * x)  # call: F/sqrt(FK), put: K/sqrt(FK)
        intrinsic = max(th * (math.exp(0.5 * x) - math.exp(-0.5 * x)), 0.0)
        if beta >= upper:
            continue
        otm = beta - intrinsic
        if otm < 0.0:
            # below intrinsic, except by what rounding of an exact intrinsic price can produce
            if otm < -4e-16 * max(upper, 1.0):
                continue
            otm = 0.0
        if otm == 0.0:
            out[i] = 0.0
            continue
        xo = -abs(x)  # the out-of-the-money twin: a call with x <= 0
        if otm >= math.exp(0.5 * xo):
            continue
        out[i] = _solve_s(otm, xo) / math.sqrt(T)


@njit(cache=True)
def _greeks_kernel(spot, strike, t, rate, vol, q, theta, value, delta, gamma, vega, theta_t, rho):
    for i in range(spot.size):
        S, K, T, r, v, d, th = spot[i], strike[i], t[i], rate[i], vol[i], q[i], theta[i]
        if not (S > 0.0 and K > 0.0 and T > 0.0 and v >= 0.0 and math.isfinite(S + K + T + r + v + d)):
            value[i] = delta[i] = gamma[i] = vega[i] = theta_t[i] = rho[i] = math.nan
            continue
        if v == 0.0:  # the limit: the discounted forward intrinsic value
            eq, er = math.exp(-d * T), math.exp(-r * T)
            itm = th * (S * eq - K * er) > 0.0
            value[i] = th * (S * eq - K * er) if itm else 0.0
            delta[i] = th * eq if itm else 0.0
            gamma[i] = vega[i] = 0.0
            theta_t[i] = th * (d * S * eq - r * K * er) if itm else 0.0
            rho[i] = th * K * T * er if itm else 0.0
            continue
        sq = math.sqrt(T)
        sd = v * sq
        d1 = (math.log(S / K) + (r - d + 0.5 * v * v) * T) / sd
        d2 = d1 - sd
        eq = math.exp(-d * T)
        er = math.exp(-r * T)
        n1 = _ncdf(th * d1)
        n2 = _ncdf(th * d2)
        pdf = _npdf(d1)
        value[i] = th * (S * eq * n1 - K * er * n2)
        delta[i] = th * eq * n1
        gamma[i] = eq * pdf / (S * sd)
        vega[i] = S * eq * pdf * sq
        theta_t[i] = -S * eq * pdf * v / (2.0 * sq) - th * r * K * er * n2 + th * d * S * eq * n1
        rho[i] = th * K * T * er * n2


# ------------------------------------------------------------------------------------ public API


def _kind_sign(kind, shape: tuple[int, ...]) -> np.ndarray:
    """+1.0 for calls, -1.0 for puts, broadcast to `shape`; ValueError names an unknown kind."""
    if isinstance(kind, str):
        k = kind.strip().lower()
        if k not in ("call", "c", "put", "p"):
            raise ValueError(f"kind must be 'call' or 'put', got {kind!r}")
        return np.full(shape, 1.0 if k in ("call", "c") else -1.0)
    arr = np.asarray(kind)
    calls = arr == "call"
    puts = arr == "put"
    if not (calls | puts).all():
        low = np.char.lower(np.char.strip(arr.astype(str)))
        calls = (low == "call") | (low == "c")
        puts = (low == "put") | (low == "p")
        bad = ~(calls | puts)
        if bad.any():
            raise ValueError(f"kind must be 'call' or 'put', got {arr[bad].ravel()[0]!r}")
    return np.broadcast_to(np.where(calls, 1.0, -1.0), shape)


def _prepare(*args, kind):
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args))
    shape = np.broadcast_shapes(arrays[0].shape, np.shape(kind) if not isinstance(kind, str) else ())
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape), dtype=np.float64).ravel() for a in arrays]
    sign = np.ascontiguousarray(_kind_sign(kind, shape), dtype=np.float64).ravel()
    return shape, flat, sign


def _out(values: np.ndarray, shape: tuple[int, ...]):
    return float(values[0]) if shape == () else values.reshape(shape)


def implied_vol(price, spot, strike, t, rate, dividend=0.0, kind="call"):
    """The annual volatility at which the BSM price equals `price`; NaN where none does.

    See the module docstring for the method and its accuracy. Arrays broadcast; scalars give a float.
    """
    shape, (p, s, k, tt, r, q), sign = _prepare(price, spot, strike, t, rate, dividend, kind=kind)
    out = np.empty(p.size)
    _iv_kernel(p, s, k, tt, r, q, sign, out)
    return _out(out, shape)


def _greeks_arrays(spot, strike, t, rate, vol, dividend, kind):
    shape, (s, k, tt, r, v, q), sign = _prepare(spot, strike, t, rate, vol, dividend, kind=kind)
    outs = [np.empty(s.size) for _ in range(6)]
    _greeks_kernel(s, k, tt, r, v, q, sign, *outs)
    return shape, outs


def price(spot, strike, t, rate, vol, dividend=0.0, kind="call"):
    """BSM price; NaN for non-positive spot, strike or t, or a negative vol (vol 0: the discounted
    forward intrinsic value)."""
    shape, outs = _greeks_arrays(spot, strike, t, rate, vol, dividend, kind)
    return _out(outs[0], shape)


def greeks(spot, strike, t, rate, vol, dividend=0.0, kind="call") -> dict:
    """{'delta', 'gamma', 'vega', 'theta', 'rho'}: plain partial derivatives (module docstring).

    NaN where spot, strike or t is non-positive, vol is negative, or an input is not finite; at vol 0
    the limits (gamma and vega 0).
    """
    shape, outs = _greeks_arrays(spot, strike, t, rate, vol, dividend, kind)
    return {name: _out(a, shape) for name, a in zip(GREEKS, outs[1:], strict=True)}


def price_and_greeks(spot, strike, t, rate, vol, dividend=0.0, kind="call") -> dict:
    """`greeks` plus 'price', computed in one pass."""
    shape, outs = _greeks_arrays(spot, strike, t, rate, vol, dividend, kind)
    return {name: _out(a, shape) for name, a in zip(("price", *GREEKS), outs, strict=True)}
