"""The plain parts of walk-forward validation, against hand-computed cases: fold boundaries,
truncation of the data at a fold's end, and the stitched out-of-sample curve."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from quant_platform.core.backtest.data import prepare_universe
from quant_platform.grid.walkforward import Fold, make_folds, stitched, trading_days, truncate


def _days(n: int) -> list[dt.date]:
    return [d.date() for d in pd.bdate_range("2024-01-01", periods=n)]


def test_folds_are_anchored_and_their_out_of_sample_segments_follow_each_other():
    days = _days(10)  # 3 folds -> 4 segments of 3, 3, 2, 2 days
    folds = make_folds(days, 3)
    assert [(f.is_start, f.is_end, f.oos_start, f.oos_end) for f in folds] == [
        (days[0], days[2], days[3], days[5]),
        (days[0], days[5], days[6], days[7]),
        (days[0], days[7], days[8], days[9]),
    ]
    with pytest.raises(ValueError, match="cannot make 5 walk-forward folds"):
        make_folds(days[:11], 5)  # 10 days cannot make 6 segments of 2


def test_truncate_keeps_bars_up_to_a_day_and_drops_symbols_with_fewer_than_two():
    index = pd.bdate_range("2024-01-01", periods=6)
    frame = pd.DataFrame({"Open": 1.0, "High": 1.0, "Low": 1.0, "Close": np.arange(1.0, 7.0), "Volume": 1.0},
                         index=index)  # fmt: skip
    late = frame.iloc[3:]
    data = prepare_universe({"A": frame, "B": late})
    assert trading_days(data) == [d.date() for d in index]
    cut = truncate(data, index[3].date())
    assert list(cut) == ["A"] and cut["A"].close.tolist() == [1.0, 2.0, 3.0, 4.0] and len(cut["A"].index) == 4
    assert len(truncate(data, index[4].date())["B"]) == 2


def test_the_stitched_curve_chains_the_out_of_sample_returns():
    index = pd.bdate_range("2024-01-01", periods=6)
    d = [t.date() for t in index]
    first = pd.Series([100.0, 110.0, 121.0, 999.0, 999.0, 999.0], index=index)  # oos d[1]..d[2]: +21 %
    second = pd.Series([50.0, 50.0, 50.0, 40.0, 50.0, 999.0], index=index)  # oos d[3]..d[4]: -20 %, +25 %
    out = stitched(
        [(first, Fold(1, d[0], d[0], d[1], d[2])), (second, Fold(2, d[0], d[2], d[3], d[4]))], 252.0
    )
    assert out["bars"] == 4
    assert out["total_return"] == pytest.approx(1.1 * 1.1 * 0.8 * 1.25 - 1.0)
    assert out["max_drawdown"] == pytest.approx(-0.2)
    r = np.array([0.1, 0.1, -0.2, 0.25])
    assert out["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252.0))
