"""How likely a backtest winner is to be luck: the deflated Sharpe ratio and the probability of
backtest overfitting (plain numpy; formulas and references in docs/backtest.md).

* `deflated_sharpe` (Bailey and Lopez de Prado, 2014): the probability that the true Sharpe ratio of
  the selected strategy is above the Sharpe ratio the best of `n_trials` skill-less trials would
  reach by chance, corrected for the length, skewness and kurtosis of its returns.
* `probability_of_overfitting` (Bailey, Borwein, Lopez de Prado and Zhu, 2015): combinatorially
  symmetric cross-validation (CSCV) over a (periods x trials) matrix of returns; the share of the
  in-sample / out-of-sample splits in which the in-sample best trial ranks below the median out of
  sample.

Sharpe ratios here are per period (mean / standard deviation of the period returns, ddof=1), not
annualised.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pandas as pd

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def expected_max_sharpe(n_trials: int, trials_sharpe_std: float) -> float:
    """SR0: the expected maximum of `n_trials` Sharpe ratios of skill-less trials whose estimates
    have standard deviation `trials_sharpe_std` (False Strategy Theorem); 0 for a single trial."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if n_trials == 1:
        return 0.0
    g = EULER_GAMMA
    z1 = _N.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _N.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return float(trials_sharpe_std) * ((1.0 - g) * z1 + g * z2)


def deflated_sharpe_from_stats(
    sharpe: float, n_obs: int, skew: float, kurtosis: float, n_trials: int, trials_sharpe_std: float
) -> float:
    """DSR from the summary statistics: per-period `sharpe` over `n_obs` returns with `skew` and
    (non-excess, normal = 3) `kurtosis`, selected as the best of `n_trials` trials whose Sharpe ratios
    have standard deviation `trials_sharpe_std`."""
    if n_obs < 2:
        raise ValueError(f"the deflated Sharpe ratio needs at least 2 returns, got {n_obs}")
    sr0 = expected_max_sharpe(n_trials, trials_sharpe_std)
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not var > 0:
        return float("nan")
    z = (sharpe - sr0) * math.sqrt(n_obs - 1) / math.sqrt(var)
    return float(_N.cdf(z))


def _clean(returns: pd.Series | np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64).ravel()
    return r[np.isfinite(r)]


def sharpe_per_period(returns: pd.Series | np.ndarray) -> float:
    r = _clean(returns)
    if r.size < 2:
        return float("nan")
    sd = r.std(ddof=1)
    return float(r.mean() / sd) if sd > 0 else float("nan")


def deflated_sharpe(
    returns: pd.Series | np.ndarray, n_trials: int, trials_sharpe_std: float | None = None
) -> float:
    """Probability (0..1) that the strategy behind `returns` has a true Sharpe ratio above what the
    best of `n_trials` skill-less trials would show.

    Args:
        returns: the selected strategy's period returns (NaN dropped).
        n_trials: trials actually evaluated (combinations of a grid search).
        trials_sharpe_std: standard deviation of the trials' per-period Sharpe ratios; None uses the
            standard error of a zero Sharpe ratio, 1 / sqrt(T - 1).

    Returns NaN when the returns have no variance.
    """
    r = _clean(returns)
    if r.size < 3:
        raise ValueError(f"the deflated Sharpe ratio needs at least 3 returns, got {r.size}")
    sr = sharpe_per_period(r)
    if not math.isfinite(sr):
        return float("nan")
    d = r - r.mean()
    m2 = float((d**2).mean())
    skew = float((d**3).mean() / m2**1.5)
    kurt = float((d**4).mean() / m2**2)
    std = trials_sharpe_std if trials_sharpe_std is not None else 1.0 / math.sqrt(r.size - 1)
    return deflated_sharpe_from_stats(sr, r.size, skew, kurt, int(n_trials), float(std))


def cscv_logits(returns: pd.DataFrame | np.ndarray, n_splits: int = 16) -> np.ndarray:
    """The logit of the out-of-sample relative rank of the in-sample best trial, one per CSCV split.

    Rows (periods) are cut into `n_splits` blocks of equal length (the first T mod S rows are
    dropped); every choice of half the blocks is in-sample once, the other half out of sample.
    Performance is the per-period Sharpe ratio; a trial with no variance in a half scores -inf there.
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError("returns must be a (periods x trials) table with at least 2 trials")
    s = int(n_splits)
    if s < 2 or s % 2:
        raise ValueError(f"n_splits must be an even number >= 2, got {n_splits}")
    t, n = m.shape
    size = t // s
    if size < 2:
        raise ValueError(f"{t} periods are too few for {s} splits (at least 2 periods per split)")
    m = np.nan_to_num(m[t - size * s :], nan=0.0).reshape(s, size, n)
    sums, squares = m.sum(axis=1), (m**2).sum(axis=1)  # (S x N) per block
    combos = np.array(list(itertools.combinations(range(s), s // 2)))
    chosen = np.zeros((len(combos), s))
    chosen[np.arange(len(combos))[:, None], combos] = 1.0
    count = size * (s // 2)

    def sharpe(mask: np.ndarray) -> np.ndarray:
        total, sq = mask @ sums, mask @ squares
        mean = total / count
        var = (sq - count * mean**2) / (count - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = mean / np.sqrt(var)
        return np.where((var > 1e-300) & np.isfinite(out), out, -np.inf)

    is_perf, oos_perf = sharpe(chosen), sharpe(1.0 - chosen)
    best = np.argmax(is_perf, axis=1)
    rows = np.arange(len(combos))
    oos_best = oos_perf[rows, best][:, None]
    below = (oos_perf < oos_best).sum(axis=1)
    ties = (oos_perf == oos_best).sum(axis=1) - 1
    rank = below + 1 + ties / 2.0  # 1 = worst out of sample, N = best; ties share their mean rank
    omega = rank / (n + 1.0)
    return np.log(omega / (1.0 - omega))


def probability_of_overfitting(returns: pd.DataFrame | np.ndarray, n_splits: int = 16) -> float:
    """PBO by CSCV: the share of splits whose in-sample best trial is at or below the median out of
    sample (logit <= 0). Columns = trials (combinations), rows = periods. About 0.5 for pure noise,
    near 0 when one trial is genuinely better."""
    return float(np.mean(cscv_logits(returns, n_splits) <= 0.0))


__all__ = [
    "cscv_logits",
    "deflated_sharpe",
    "deflated_sharpe_from_stats",
    "expected_max_sharpe",
    "probability_of_overfitting",
    "sharpe_per_period",
]
