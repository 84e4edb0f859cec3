"""Classical forecasts on the same origins as the GRU's: seasonal naive, ETS and Theta (statsmodels)."""

from __future__ import annotations

import numpy as np


def seasonal_naive(y: np.ndarray, origins, *, horizon: int, season: int) -> np.ndarray:
    """ŷ_{o+k} = y_{o+k−m⌈k/m⌉} for k = 1 … h: (N, h)."""
    k = np.arange(1, horizon + 1)
    lag = season * np.ceil(k / season).astype(int)
    return np.stack([y[o + k - lag] for o in origins])


def ets_forecasts(y: np.ndarray, origins, *, fit_until: int, horizon: int, season: int) -> np.ndarray:
    """ETS (A, Ad, A/N) fitted on y[: fit_until + 1], run with those parameters to each origin: (N, h)."""
    import warnings

    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    spec = dict(error="add", trend="add", damped_trend=True,
                seasonal="add" if season > 1 else None, seasonal_periods=season if season > 1 else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter; the fit is used as it is
        params = ETSModel(y[: fit_until + 1], **spec).fit(disp=False).params
        return np.stack([ETSModel(y[: o + 1], **spec).smooth(params).forecast(horizon) for o in origins])


def theta_forecasts(y: np.ndarray, origins, *, horizon: int, season: int) -> np.ndarray:
    """The Theta method (Assimakopoulos & Nikolopoulos 2000, statsmodels' `ThetaModel`: θ = 2, the
    series deseasonalised multiplicatively with period m when m > 1 and the data are positive),
    fitted at each origin on y[: o + 1] alone: (N, h)."""
    import warnings

    from statsmodels.tsa.forecasting.theta import ThetaModel

    seasonal = season > 1 and bool((y > 0).all())
    forecasts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter; the fit is used as it is
        for o in origins:
            history = y[: o + 1]
            model = ThetaModel(history, period=season if seasonal else None,
                               deseasonalize=seasonal and len(history) >= 2 * season)
            forecasts.append(np.asarray(model.fit().forecast(horizon)))
    return np.stack(forecasts)
