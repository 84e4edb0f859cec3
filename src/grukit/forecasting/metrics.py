"""Forecast accuracy: point errors, scale-free errors, quantile loss and interval coverage.

For forecasts ŷ (N, h) of actuals y (N, h) (N origins, h steps each):

    MAE    = mean |y − ŷ|
    RMSE   = √ mean (y − ŷ)²
    sMAPE  = mean 200 |y − ŷ| / (|y| + |ŷ|)        M4's definition, in 0 … 200 (a 0/0 term counts 0)
    MASE   = MAE / s,  s = mean_t |y_t − y_{t−m}|   over the training part of the series (in-sample
                                                  seasonal naive with season m; Hyndman & Koehler 2006)
    pinball(τ) = mean max(τ (y − q_τ), (τ − 1)(y − q_τ)),  reported as the mean over the quantiles τ
    coverage   = share of actuals inside [q_lo, q_hi]

MASE and sMAPE are scale-free, so they average across series in different units (the panel
aggregate is their mean over series); MAE and RMSE are in each series' own units.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from grukit.errors import InputError


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    from sklearn.metrics import mean_absolute_error

    _pair(actual, forecast)
    return float(mean_absolute_error(np.ravel(actual), np.ravel(forecast)))


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    from sklearn.metrics import root_mean_squared_error

    _pair(actual, forecast)
    return float(root_mean_squared_error(np.ravel(actual), np.ravel(forecast)))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """M4's sMAPE in percent (0 … 200); where y = ŷ = 0 the term is 0."""
    error = np.abs(_pair(actual, forecast))
    denominator = np.abs(np.asarray(actual, dtype=float)) + np.abs(np.asarray(forecast, dtype=float))
    terms = np.divide(200.0 * error, denominator, out=np.zeros_like(error), where=denominator > 0)
    return float(terms.mean())


def seasonal_scale(history: np.ndarray, season: int) -> float:
    """MASE's scale: the mean absolute m-step difference of the series' training part."""
    history = np.asarray(history, dtype=float)
    if season < 1 or len(history) <= season:
        raise InputError(f"MASE needs more than {season} training values for season {season}, got {len(history)}")
    return float(np.mean(np.abs(history[season:] - history[:-season])))


def mase(actual: np.ndarray, forecast: np.ndarray, *, history: np.ndarray, season: int) -> float:
    """MAE scaled by the in-sample seasonal-naive MAE of `history` (NaN for a flat history)."""
    scale = seasonal_scale(history, season)
    return mae(actual, forecast) / scale if scale > 0 else float("nan")


def pinball(actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]) -> float:
    """Mean pinball loss over the levels τ; quantiles (…, Q) with Q = len(levels), actual (…)."""
    actual, quantiles = np.asarray(actual, dtype=float), np.asarray(quantiles, dtype=float)
    if quantiles.shape != (*actual.shape, len(levels)):
        raise InputError(f"quantiles must be {(*actual.shape, len(levels))}, got {quantiles.shape}")
    from sklearn.metrics import mean_pinball_loss

    return float(np.mean([mean_pinball_loss(actual.ravel(), quantiles[..., k].ravel(), alpha=level)
                          for k, level in enumerate(levels)]))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals with lower ≤ y ≤ upper."""
    actual = np.asarray(actual, dtype=float)
    return float(np.mean((actual >= lower) & (actual <= upper)))


def point_metrics(actual: np.ndarray, forecast: np.ndarray, *, history: np.ndarray, season: int) -> dict[str, float]:
    """MASE, sMAPE, MAE and RMSE of one series' forecasts."""
    return {"mase": mase(actual, forecast, history=history, season=season), "smape": smape(actual, forecast),
            "mae": mae(actual, forecast), "rmse": rmse(actual, forecast)}


def scale_free_means(per_series: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """method → {mase, smape}: the mean over series (series → method → metrics) of the scale-free
    metrics, over the series where each is defined (MASE: a history that is not flat)."""
    methods = next(iter(per_series.values()))

    def mean(values: list[float]) -> float:
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    return {method: {key: mean([series[method][key] for series in per_series.values()]) for key in ("mase", "smape")}
            for method in methods}


def _pair(actual, forecast) -> np.ndarray:
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    if actual.shape != forecast.shape:
        raise InputError(f"actuals {actual.shape} and forecasts {forecast.shape} must have one shape")
    return actual - forecast
