"""Implied vol and greeks against an independent implementation: scipy's normal distribution for the
BSM price, `brentq` for the implied vol, central finite differences for the greeks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from quant_platform.options import greeks, implied_vol, price, price_and_greeks


def ref_price(S, K, t, r, vol, q, kind):
    """Textbook BSM with a continuous dividend yield, on scipy.stats.norm."""
    d1 = (np.log(S / K) + (r - q + 0.5 * vol**2) * t) / (vol * np.sqrt(t))
    d2 = d1 - vol * np.sqrt(t)
    if kind == "call":
        return S * np.exp(-q * t) * norm.cdf(d1) - K * np.exp(-r * t) * norm.cdf(d2)
    return K * np.exp(-r * t) * norm.cdf(-d2) - S * np.exp(-q * t) * norm.cdf(-d1)


def ref_vega(S, K, t, r, vol, q):
    d1 = (np.log(S / K) + (r - q + 0.5 * vol**2) * t) / (vol * np.sqrt(t))
    return S * np.exp(-q * t) * norm.pdf(d1) * np.sqrt(t)


def ref_iv(p, S, K, t, r, q, kind):
    return brentq(lambda v: ref_price(S, K, t, r, v, q, kind) - p, 1e-4, 8.0, xtol=1e-15, rtol=1e-15)


MONEYNESS = [0.5, 0.7, 0.85, 0.95, 1.0, 1.05, 1.2, 1.5, 2.0]
EXPIRIES = [1 / 365, 7 / 365, 30 / 365, 0.25, 1.0, 3.0]
VOLS = [0.05, 0.15, 0.3, 0.6, 1.2]
RATES = [(-0.005, 0.0), (0.018, 0.0), (0.05, 0.03)]
GRID = list(itertools.product(MONEYNESS, EXPIRIES, VOLS, RATES, ("call", "put")))


def _grid_arrays():
    S = 2.5
    rows = [(S, S * m, t, r, v, q, kind) for m, t, v, (r, q), kind in GRID]
    cols = list(zip(*rows, strict=True))
    return [np.array(c, dtype=float) for c in cols[:6]] + [np.array(cols[6])]


def test_prices_match_the_reference_everywhere():
    S, K, t, r, v, q, kind = _grid_arrays()
    ours = price(S, K, t, r, v, q, kind)
    ref = np.array([ref_price(*row) for row in zip(S, K, t, r, v, q, kind, strict=True)])
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_implied_vol_recovers_the_vol_to_1e8_where_vega_is_not_negligible():
    S, K, t, r, v, q, kind = _grid_arrays()
    p = np.array([ref_price(*row) for row in zip(S, K, t, r, v, q, kind, strict=True)])
    iv = implied_vol(p, S, K, t, r, q, kind)
    vega = ref_vega(S, K, t, r, v, q)
    # the price's own rounding moves the vol by ~1e-16 * price / vega: only there is 1e-8 meaningful
    with np.errstate(divide="ignore", invalid="ignore"):
        meaningful = (vega > 1e-6 * S) & (p > 1e-10 * S) & (1e-16 * p / vega < 1e-10)
    assert meaningful.sum() > 0.7 * len(p)
    err = np.abs(iv - v)[meaningful]
    assert np.nanmax(err) < 1e-8, GRID[int(np.flatnonzero(meaningful)[np.nanargmax(err)])]
    # everywhere else the price round trip holds (the vol is then barely determined by the price)
    back = price(S, K, t, r, iv, q, kind)
    ok = np.isfinite(iv)
    assert ok.mean() > 0.97
    np.testing.assert_allclose(back[ok], p[ok], rtol=1e-9, atol=1e-13)


# brentq's own answer is defined to 1e-8 only where vega is not negligible
BRENTQ_ROWS = [
    row
    for row in GRID
    if row[0] in (0.7, 1.0, 1.5)
    and row[3] == (0.018, 0.0)
    and row[2] in (0.15, 0.6)
    and ref_vega(2.5, 2.5 * row[0], row[1], 0.018, row[2], 0.0) > 1e-6
]


@pytest.mark.parametrize("row", BRENTQ_ROWS)
def test_implied_vol_agrees_with_brentq(row):
    m, t, v, (r, q), kind = row
    S, K = 2.5, 2.5 * m
    p = ref_price(S, K, t, r, v, q, kind)
    assert implied_vol(p, S, K, t, r, q, kind) == pytest.approx(ref_iv(p, S, K, t, r, q, kind), abs=1e-8)


def test_no_vol_reproduces_the_price_gives_nan():
    S, K, t, r = 2.5, 2.0, 0.5, 0.02
    intrinsic = S - K * np.exp(-r * t)
    assert np.isnan(implied_vol(intrinsic * 0.99, S, K, t, r, kind="call"))  # below intrinsic
    assert implied_vol(intrinsic, S, K, t, r, kind="call") == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(implied_vol(S * 1.01, S, K, t, r, kind="call"))  # above the spot
    assert np.isnan(implied_vol(K * np.exp(-r * t) * 1.0001, S, K, t, r, kind="put"))  # above the put bound
    bad = implied_vol([0.1, -0.1, np.nan, 0.1, 0.1], [S, S, S, -S, S], K, [t, t, t, t, 0.0], r)
    assert np.isnan(bad).all()


def test_deep_otm_and_near_expiry_are_stable():
    S = 3.0
    for K, t, v, kind in [
        (4.5, 2 / 365, 0.6, "call"),
        (1.8, 1 / 365, 1.5, "put"),
        (3.0, 1 / (365 * 24), 0.2, "call"),  # one hour, at the money
        (3.6, 1 / 365, 0.4, "call"),  # far OTM, one day: price ~ 1e-30
        (0.3, 5.0, 0.35, "put"),
        (30.0, 5.0, 0.8, "call"),
    ]:
        p = ref_price(S, K, t, 0.02, v, 0.0, kind)
        iv = implied_vol(p, S, K, t, 0.02, 0.0, kind)
        assert iv == pytest.approx(v, rel=1e-7), (K, t, v, kind, p)
    # deep ITM: solved on the OTM twin, so the time value is not lost under the intrinsic value
    p = ref_price(S, 2.0, 0.1, 0.02, 0.3, 0.0, "call")
    assert implied_vol(p, S, 2.0, 0.1, 0.02, kind="call") == pytest.approx(0.3, rel=1e-5)


def test_put_call_parity():
    S, K, t, r, q, v = 2.7, np.linspace(2.0, 3.4, 15), 0.3, 0.02, 0.01, 0.25
    c = price(S, K, t, r, v, q, "call")
    p = price(S, K, t, r, v, q, "put")
    np.testing.assert_allclose(c - p, S * np.exp(-q * t) - K * np.exp(-r * t), atol=1e-14)
    np.testing.assert_allclose(implied_vol(c, S, K, t, r, q, "call"), implied_vol(p, S, K, t, r, q, "put"))


@pytest.mark.parametrize("kind", ["call", "put"])
def test_greeks_are_the_finite_difference_partials(kind):
    S, K, t, r, v, q = 2.6, np.array([2.2, 2.5, 2.6, 2.8, 3.1]), 0.4, 0.021, 0.27, 0.013
    g = greeks(S, K, t, r, v, q, kind)
    f = lambda **kw: ref_price(**{"S": S, "K": K, "t": t, "r": r, "vol": v, "q": q, "kind": kind, **kw})  # noqa: E731
    h = 1e-4
    np.testing.assert_allclose(g["delta"], (f(S=S + h) - f(S=S - h)) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(g["gamma"], (f(S=S + h) - 2 * f() + f(S=S - h)) / h**2, atol=1e-5)
    np.testing.assert_allclose(g["vega"], (f(vol=v + h) - f(vol=v - h)) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(g["theta"], -(f(t=t + h) - f(t=t - h)) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(g["rho"], (f(r=r + h) - f(r=r - h)) / (2 * h), atol=1e-8)


def test_broadcasting_kinds_and_scalars():
    out = price_and_greeks(2.5, [2.4, 2.6], 0.5, 0.02, [[0.2], [0.3]], kind=["call", "P"])
    assert out["price"].shape == (2, 2) and set(out) == {"price", "delta", "gamma", "vega", "theta", "rho"}
    assert out["delta"][0, 0] > 0 > out["delta"][0, 1]
    assert isinstance(implied_vol(0.1, 2.5, 2.5, 0.5, 0.02), float)
    with pytest.raises(ValueError, match="kind must be 'call' or 'put', got 'straddle'"):
        price(2.5, 2.5, 0.5, 0.02, 0.2, kind="straddle")
    assert np.isnan(greeks(2.5, 2.5, 0.0, 0.02, 0.2)["delta"])  # expired: no greeks
    assert greeks(2.5, 2.0, 0.5, 0.02, 0.0)["delta"] == 1.0  # vol 0: the limits
    assert price(2.5, 2.0, 0.5, 0.02, 0.0, kind="put") == 0.0


def test_random_round_trips():
    rng = np.random.default_rng(3)
    n = 200_000
    S = rng.uniform(1, 100, n)
    K = S * np.exp(rng.normal(0, 0.25, n))
    t = rng.uniform(1 / 365, 2, n)
    v = rng.uniform(0.05, 1.0, n)
    r = rng.uniform(-0.01, 0.06, n)
    q = rng.uniform(0, 0.04, n)
    kind = np.where(rng.random(n) < 0.5, "call", "put")
    g = price_and_greeks(S, K, t, r, v, q, kind)
    iv = implied_vol(g["price"], S, K, t, r, q, kind)
    with np.errstate(divide="ignore", invalid="ignore"):
        meaningful = (g["vega"] > 1e-4 * S) & (1e-16 * g["price"] / g["vega"] < 1e-10)
    assert meaningful.mean() > 0.9
    assert np.nanmax(np.abs(iv - v)[meaningful]) < 1e-8
