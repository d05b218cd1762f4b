"""Deflated Sharpe ratio and probability of backtest overfitting against hand-computed cases and the
published numerical example."""

import math

import numpy as np
import pandas as pd
import pytest

from quant_platform import backtest
from quant_platform.core.backtest.overfitting import (
    cscv_logits,
    deflated_sharpe_from_stats,
    expected_max_sharpe,
)


def test_published_example_of_the_deflated_sharpe_ratio():
    """Bailey and Lopez de Prado (2014), section 'A numerical example': annualised SR 2.5 over 5 years
    of daily returns (T = 1250), 100 trials whose annualised Sharpe ratios have variance 0.5,
    skewness -3, kurtosis 10: SR0 = 0.1132 per day and DSR = 0.9004."""
    sr0 = expected_max_sharpe(100, math.sqrt(0.5 / 250))
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_from_stats(2.5 / math.sqrt(250), 1250, -3.0, 10.0, 100, math.sqrt(0.5 / 250))
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_deflated_sharpe_by_hand():
    # r = [.02, -.01, .03, 0, .01]: mean .01, sd (ddof 1) sqrt(.001 / 4) = .0158114, SR = .632456,
    # skew 0, kurtosis (6.8e-8) / (2e-4)^2 = 1.7; one trial: SR0 = 0,
    # z = .632456 * sqrt(4) / sqrt(1 + (1.7 - 1) / 4 * .4) = 1.264911 / 1.034408 = 1.222835 -> 0.88931
    r = pd.Series([0.02, -0.01, 0.03, 0.0, 0.01])
    assert backtest.deflated_sharpe(r, n_trials=1) == pytest.approx(0.88931, abs=2e-5)
    # more trials only lower it; SR0 for 10 trials with std 0.2: 0.2 * (0.4228 * 1.2816 + 0.5772 * 1.7892)
    assert expected_max_sharpe(10, 0.2) == pytest.approx(0.2 * (0.42278 * 1.28155 + 0.57722 * 1.78924), 1e-4)
    assert backtest.deflated_sharpe(r, 10, trials_sharpe_std=0.2) < backtest.deflated_sharpe(r, 1)
    assert math.isnan(backtest.deflated_sharpe(pd.Series([0.01] * 5), 3))
    with pytest.raises(ValueError, match="at least 3"):
        backtest.deflated_sharpe(pd.Series([0.01, 0.02]), 3)


def test_pbo_by_hand():
    # Two trials, two splits of two periods. Sharpe (mean / sd): a = [1, 3 | -1, -3] -> 1.414 | -1.414,
    # b = [-1, -3 | 1, 3] -> -1.414 | 1.414: the in-sample winner is always the loser out of sample.
    a, b = [1.0, 3.0, -1.0, -3.0], [-1.0, -3.0, 1.0, 3.0]
    flips = pd.DataFrame({"a": a, "b": b})
    logits = cscv_logits(flips, n_splits=2)
    assert logits.tolist() == pytest.approx([math.log(0.5), math.log(0.5)])  # rank 1 of 2: w = 1/3
    assert backtest.probability_of_overfitting(flips, n_splits=2) == 1.0
    # c = [.1, .2 | .3, .4] beats a in both halves: never overfit (rank 2 of 2: w = 2/3, logit ln 2).
    steady = pd.DataFrame({"a": a, "c": [0.1, 0.2, 0.3, 0.4]})
    assert cscv_logits(steady, 2).tolist() == pytest.approx([math.log(2), math.log(2)])
    assert backtest.probability_of_overfitting(steady, n_splits=2) == 0.0


def test_pbo_is_about_one_half_on_noise_and_near_zero_with_real_skill():
    rng = np.random.default_rng(7)
    noise = pd.DataFrame(rng.normal(0.0, 0.01, (1000, 40)))
    assert 0.3 <= backtest.probability_of_overfitting(noise) <= 0.7
    skilled = noise.copy()
    skilled[0] += 0.004
    assert backtest.probability_of_overfitting(skilled) < 0.05
    with pytest.raises(ValueError, match="even"):
        backtest.probability_of_overfitting(noise, n_splits=5)
    with pytest.raises(ValueError, match="too few"):
        backtest.probability_of_overfitting(noise.head(20), n_splits=16)


def test_the_best_of_many_noise_trials_is_not_significant():
    rng = np.random.default_rng(11)
    trials = pd.DataFrame(rng.normal(0.0, 0.01, (500, 200)))
    sharpes = trials.mean() / trials.std()
    best = trials[sharpes.idxmax()]
    dsr = backtest.deflated_sharpe(best, n_trials=200, trials_sharpe_std=float(sharpes.std()))
    assert dsr < 0.95
    assert backtest.deflated_sharpe(best, n_trials=1) > dsr  # the naive (one-trial) view flatters it
