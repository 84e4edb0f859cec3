"""Forecast metrics against values worked out by hand."""

import math

import numpy as np
import pytest

from grukit.errors import InputError
from grukit.forecasting import metrics


def test_point_errors_by_hand():
    actual = np.array([[10.0, 12.0], [8.0, 0.0]])
    forecast = np.array([[11.0, 9.0], [8.0, 0.0]])
    # errors 1, 3, 0, 0
    assert metrics.mae(actual, forecast) == pytest.approx(1.0)
    assert metrics.rmse(actual, forecast) == pytest.approx(math.sqrt(10 / 4))
    # sMAPE terms: 200·1/21, 200·3/21, 0, and 0 for the 0/0 step
    assert metrics.smape(actual, forecast) == pytest.approx((200 / 21 + 600 / 21) / 4)


def test_mase_scales_by_the_in_sample_seasonal_naive_error():
    history = np.array([1.0, 2.0, 4.0, 3.0, 5.0])  # m = 2: |4−1|, |3−2|, |5−4| → mean 5/3
    assert metrics.seasonal_scale(history, 2) == pytest.approx(5 / 3)
    assert metrics.mase(np.array([6.0, 7.0]), np.array([5.0, 9.0]), history=history, season=2) == pytest.approx(
        1.5 / (5 / 3))
    assert math.isnan(metrics.mase(np.array([1.0]), np.array([2.0]), history=np.ones(4), season=1))
    with pytest.raises(InputError, match="more than 4 training values"):
        metrics.seasonal_scale(history[:4], 4)


def test_pinball_and_coverage_by_hand():
    actual = np.array([10.0, 20.0])
    quantiles = np.array([[8.0, 10.0, 12.0], [21.0, 22.0, 25.0]])  # levels 0.1, 0.5, 0.9
    # y=10: τ=.1: .1·2=.2; τ=.5: 0; τ=.9: (.9−1)(−2)=.2 | y=20: .9·1=.9; .5·2=1; .1·5=.5
    expected = np.mean([(0.2 + 0.9) / 2, (0.0 + 1.0) / 2, (0.2 + 0.5) / 2])
    assert metrics.pinball(actual, quantiles, (0.1, 0.5, 0.9)) == pytest.approx(expected)
    assert metrics.coverage(actual, quantiles[:, 0], quantiles[:, 2]) == 0.5  # 10 inside, 20 below 21
    with pytest.raises(InputError, match="quantiles must be"):
        metrics.pinball(actual, quantiles[:, :2], (0.1, 0.5, 0.9))
